"""``patchpilot priority`` and ``sla``: priorities P1-P4 and how fast they are met."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from patchpilot.cli.common import cli_actor, console, fail, open_engine, wide
from patchpilot.errors import PatchPilotError

priority_app = typer.Typer(help="Priority P1-P4: the matrix (or SSVC) and its reasons.",
                           no_args_is_help=True)


@priority_app.command("show")
def priority_show() -> None:
    """Print the priority configuration in force (YAML)."""
    from patchpilot.scoring.apply import active_config

    with open_engine().connect() as conn:
        sys.stdout.write(active_config(conn).to_yaml())


@priority_app.command("apply")
def priority_apply(
    config: Annotated[Path | None, typer.Option("--config", help="A priority YAML file "
                                                "(default: the one in force).")] = None,
) -> None:
    """Put a configuration in force and re-prioritise every open finding (one statement)."""

    from patchpilot.scoring.apply import reprioritise, save_config
    from patchpilot.scoring.priority import load_config

    try:
        loaded = load_config(config) if config else None
    except PatchPilotError as exc:
        fail(exc)
        return
    started = time.perf_counter()
    with open_engine().begin() as conn:
        changed = (save_config(conn, loaded, cli_actor()) if loaded
                   else reprioritise(conn))
    console.print(f"{changed} findings re-prioritised in {time.perf_counter() - started:.1f} s")


def sla(
    by: Annotated[str, typer.Option(help="group, service or priority.")] = "priority",
    group: Annotated[str | None, typer.Option(help="Only this asset group.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """SLA compliance and mean time to remediate, per group, service or priority."""
    from patchpilot.scoring.sla import sla_report

    try:
        with open_engine().connect() as conn:
            rows = sla_report(conn, by, group=group)
    except ValueError as exc:
        fail(exc)
        return
    if json_:
        sys.stdout.write(orjson.dumps([r.to_dict() for r in rows],
                                      option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table(title=f"SLA by {by}")
    for column in (by, "open", "overdue", "fixed", "in SLA", "compliance", "MTTR (days)"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.key, str(r.open), str(r.overdue), str(r.fixed), str(r.fixed_within_sla),
                      f"{r.compliance:.0%}" if r.compliance is not None else "-",
                      f"{r.mttr_days:.1f}" if r.mttr_days is not None else "-")
    wide.print(table)
