"""What every command module shares: the consoles, the engine, failing with one line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import orjson
import typer
from rich.console import Console

from patchpilot.config import load_settings
from patchpilot.errors import PatchPilotError

T = TypeVar("T")

console = Console()
# Piped or redirected, tables keep their columns instead of folding to 80 characters.
wide = console if console.is_terminal else Console(width=220)
# Errors are never wrapped: paths and commands in them must stay copyable.
err = Console(stderr=True, soft_wrap=True)


def open_engine():  # type: ignore[no-untyped-def]
    """The engine of the configured database (``PATCHPILOT_DATABASE_URL``)."""
    from patchpilot.db import connect

    return connect(load_settings().database_url)


def writable_engine():  # type: ignore[no-untyped-def]
    """The engine of a long-running command (server, up, worker): a database that
    refuses writes -- or a home where it cannot be created -- is a ConfigError (one line,
    exit 2) now, not a 500 per request or a traceback per second later."""
    from patchpilot.db.engine import require_writable

    engine = open_engine()
    require_writable(engine)
    return engine


def fail(exc: Exception, hint: str | None = None) -> NoReturn:
    """Print ``exc`` (and a hint) on standard error and end the command with status 2."""
    err.print(f"[bold red]error:[/] {exc}")
    if hint:
        err.print(hint)
    raise typer.Exit(2)


def in_db(work: Callable[[Any], T], *, write: bool = False) -> T:
    """``work(conn)`` on the configured database (one transaction when ``write``); a
    PatchPilotError ends the command with its message."""
    try:
        engine = open_engine()
        with engine.begin() if write else engine.connect() as conn:
            return work(conn)
    except PatchPilotError as exc:
        fail(exc)


def print_json(value: Any) -> None:
    """Indented JSON on standard output (the --json of listing commands)."""
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def cli_actor() -> str:
    """Who the audit log names for a change made on the command line: the OS user."""
    import getpass

    return f"cli:{getpass.getuser()}"
