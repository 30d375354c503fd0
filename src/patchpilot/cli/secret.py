"""``patchpilot secret``: store, list, delete and re-encrypt the playbooks' action secrets.

A value is never taken from the command line (it would sit in the shell history and the
process list): ``set`` reads it from a file, from standard input when that is piped, or
from a prompt that does not echo.  What is shown back is only the mask (``…f3a9``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from patchpilot.automation.secrets import (
    delete_secret,
    key_of,
    list_secrets,
    rekey,
    set_secret,
)
from patchpilot.cli.common import cli_actor, console, fail, in_db, print_json, wide
from patchpilot.clock import iso
from patchpilot.config import load_settings

secret_app = typer.Typer(help="Action secrets (API tokens, chat webhook URLs, HMAC keys), "
                              "encrypted at rest.", no_args_is_help=True)


def _one_line(text: str) -> str:
    """A value as files and pipes hold it, without the one line end an editor or ``echo``
    adds (a value does not end with a line break)."""
    for end in ("\r\n", "\n"):
        if text.endswith(end):
            return text[:-len(end)]
    return text


def _read_value(from_file: Path | None) -> str:
    if from_file is not None:
        try:
            return _one_line(from_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            fail(exc)
    if not sys.stdin.isatty():
        return _one_line(sys.stdin.read())
    return str(typer.prompt("Value", hide_input=True, confirmation_prompt=True))


@secret_app.command("set")
def secret_set(
    name: Annotated[str, typer.Argument(help="The secret's name, as playbooks name it.")],
    from_file: Annotated[Path | None, typer.Option(
        "--from-file", help="Read the value from this file (else standard input when "
                            "piped, else a prompt that does not echo).")] = None,
) -> None:
    """Store (or replace) a secret, encrypted with the secrets key."""
    value = _read_value(from_file)
    key = key_of(load_settings())
    info = in_db(lambda conn: set_secret(conn, cli_actor(), name, value, key), write=True)
    console.print(f"secret {info.name} stored: {info.hint}", markup=False)


@secret_app.command("list")
def secret_list(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every stored secret, masked."""
    found = in_db(list_secrets)
    if json_:
        print_json([s.to_dict() for s in found])
        return
    table = Table("name", "value", "updated by", "updated (UTC)")
    for s in found:
        table.add_row(s.name, s.hint, s.updated_by, iso(s.updated_at) or "-")
    wide.print(table)


@secret_app.command("delete")
def secret_delete(
    name: Annotated[str, typer.Argument(help="The secret's name.")],
) -> None:
    """Forget a secret (the playbooks that name it fail their deliveries until it is set
    again)."""
    in_db(lambda conn: delete_secret(conn, cli_actor(), name), write=True)
    console.print(f"secret {name} deleted", markup=False)


@secret_app.command("rekey")
def secret_rekey(
    old_key_file: Annotated[Path, typer.Option(
        "--old-key-file", help="A file holding the key the secrets are encrypted with now "
                               "(the new one is PATCHPILOT_SECRETS_KEY, or the data "
                               "directory's secrets.key).")],
) -> None:
    """Encrypt every secret again under the current key (one transaction: all or none)."""
    try:
        old = old_key_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        fail(exc)
    new = key_of(load_settings())
    count = in_db(lambda conn: rekey(conn, cli_actor(), old, new), write=True)
    console.print(f"{count} {'secret' if count == 1 else 'secrets'} encrypted under the "
                  "current key")
