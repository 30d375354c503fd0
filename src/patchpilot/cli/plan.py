"""``patchpilot plan``: the patch plan, grouped by the upgrade that removes findings."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from patchpilot.cli.common import console, open_engine, wide


class PlanFormat(StrEnum):
    """Formats of ``patchpilot plan``."""

    table = "table"
    json = "json"
    csv = "csv"
    ansible = "ansible"


def plan(
    group: Annotated[str | None, typer.Option(help="Only the hosts of this asset group.")
                     ] = None,
    fmt: Annotated[PlanFormat, typer.Option("--format", help="Output format.")
                   ] = PlanFormat.table,
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Write here (a folder for ansible).")
                      ] = None,
) -> None:
    """The patch plan: open findings grouped by the upgrade that removes them."""
    from patchpilot.reports.ansible import export as ansible_export
    from patchpilot.scans.plan import build_plan, plan_csv

    with open_engine().connect() as conn:
        built = build_plan(conn, group=group)
    if fmt is PlanFormat.ansible:
        folder = output or Path("patchpilot-ansible")
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in ansible_export(built).items():
            (folder / name).write_text(text, encoding="utf-8")
        console.print(f"wrote playbook.yml, inventory.yml and inventory.ini to {folder}")
        return
    if fmt in (PlanFormat.json, PlanFormat.csv):
        text = (plan_csv(built) if fmt is PlanFormat.csv else orjson.dumps(
            built.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
        if output:
            output.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return
    table = Table(title="Patch plan (most risk removed first)")
    for column in ("#", "change", "command", "reboot", "next window"):
        table.add_column(column)
    for rank, item in enumerate(built.items, 1):
        windows = sorted({h.next_window or "any time" for h in item.pending})
        # Copies in named places (site-packages folders, projects): each one's command.
        command = ("\n".join(dict.fromkeys(i.command for h in item.pending
                                            for i in h.installations if i.command))
                   if item.located else item.command) or ""
        table.add_row(str(rank), item.summary, command,
                      "yes" if item.reboot else "no", ", ".join(windows[:2]))
    wide.print(table)
    for u in built.unfixed:
        wide.print(f"no fix yet: {u.package} ({u.ecosystem}) {len(u.vulns)} vulnerabilities "
                   f"on {len(u.hosts)} hosts" + (f"; workaround: {u.workaround}"
                                                 if u.workaround else ""))
