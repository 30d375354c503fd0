"""``patchpilot inventory``: write this machine's Inventory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from patchpilot.cli.common import err, fail
from patchpilot.cli.scan import OutputOpt
from patchpilot.errors import PatchPilotError

inventory_app = typer.Typer(help="Inventories: what a host runs.", no_args_is_help=True)


@inventory_app.command("collect")
def inventory_collect(
    output: OutputOpt = None,
    path: Annotated[list[Path] | None, typer.Option(
        "--path", help="Also inventory this virtualenv or site-packages folder.")] = None,
) -> None:
    """Write this machine's Inventory (JSON, schema 1)."""
    from patchpilot.inventory.transports.local import collect_local

    try:
        inventory = collect_local(python_paths=list(path or []))
    except PatchPilotError as exc:
        fail(exc)
        return
    data = inventory.to_json()
    if inventory.warnings:  # on stderr: stdout may be the document itself
        err.print(f"[yellow]{len(inventory.warnings)} inventory warning(s)[/] (also under "
                  '"warnings" in the document):')
        for warning in inventory.warnings:
            err.print(f"  ! {escape(warning)}", overflow="fold")
    if output is None:
        sys.stdout.buffer.write(data + b"\n")
    else:
        output.write_bytes(data)
        err.print(f"wrote {len(inventory.packages)} packages to {output}")
