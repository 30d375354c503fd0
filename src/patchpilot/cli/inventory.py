"""``patchpilot inventory``: write this machine's Inventory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

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
    if output is None:
        sys.stdout.buffer.write(data + b"\n")
    else:
        output.write_bytes(data)
        err.print(f"wrote {len(inventory.packages)} packages to {output}")
