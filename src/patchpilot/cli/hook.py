"""``patchpilot hook``: inbound webhooks (``POST /api/hooks/{name}``) -- add, list, enable,
disable, remove.

The token ``add`` prints is shown this once (only its SHA-256 is stored): give it to the
IDS or SIEM that calls the hook.  Imports are deferred into the commands, as in the other
command modules, so that ``patchpilot --help`` does not load every stage.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from patchpilot.cli.common import cli_actor, console, in_db, print_json, wide

hook_app = typer.Typer(help="Inbound webhooks: events from an IDS, a SIEM or a script.",
                       no_args_is_help=True)


@hook_app.command("add")
def hook_add(
    name: Annotated[str, typer.Argument(help="The hook's name: its URL is /api/hooks/NAME.")],
    hmac_secret: Annotated[str | None, typer.Option(
        help="A stored secret (patchpilot secret set) whose HMAC-SHA256 of the body a "
             "caller may send (X-PatchPilot-Signature) instead of the token.")] = None,
) -> None:
    """Add a hook and print its token (shown this once)."""
    from patchpilot.automation.hooks import create_hook

    hook, token = in_db(lambda conn: create_hook(conn, cli_actor(), name,
                                                 hmac_secret=hmac_secret), write=True)
    console.print(f"hook {hook.name} added: POST {hook.to_dict()['url']}")
    console.print("token (shown once; send it as 'Authorization: Bearer <token>'):")
    print(token)


@hook_app.command("list")
def hook_list(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every hook (never a token)."""
    from patchpilot.automation.hooks import list_hooks

    found = [h.to_dict() for h in in_db(list_hooks)]
    if json_:
        print_json(found)
        return
    table = Table("name", "enabled", "hmac secret", "url", "last received (UTC)")
    for h in found:
        table.add_row(h["name"], "yes" if h["enabled"] else "no", h["hmac_secret"] or "-",
                      h["url"], h["last_received_at"] or "-")
    wide.print(table)


def _set(name: str, enabled: bool) -> None:
    from patchpilot.automation.hooks import set_hook_enabled

    in_db(lambda conn: set_hook_enabled(conn, cli_actor(), name, enabled), write=True)
    console.print(f"hook {name} {'enabled' if enabled else 'disabled'}")


@hook_app.command("enable")
def hook_enable(name: Annotated[str, typer.Argument(help="The hook's name.")]) -> None:
    """Enable a hook."""
    _set(name, True)


@hook_app.command("disable")
def hook_disable(name: Annotated[str, typer.Argument(help="The hook's name.")]) -> None:
    """Disable a hook (it refuses every call until enabled)."""
    _set(name, False)


@hook_app.command("remove")
def hook_remove(name: Annotated[str, typer.Argument(help="The hook's name.")]) -> None:
    """Remove a hook: its token stops working at once."""
    from patchpilot.automation.hooks import delete_hook

    in_db(lambda conn: delete_hook(conn, cli_actor(), name), write=True)
    console.print(f"hook {name} removed")
