"""``patchpilot plan``: the patch plan, grouped by the upgrade that removes findings.

Read from the stored plan (``scans.plan_store``) as the dashboard is; a stale one is
rebuilt first, whatever the estate's size (the command's user wants today's answer).
CSV, JSON and Ansible are written an item at a time, so a plan of 10,000 hosts is never
held whole.  ``windows-kbs`` (CSV) and ``powershell`` (a .ps1 script) list the KBs each
Windows host is to install (``reports.windows_updates``).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

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
    windows_kbs = "windows-kbs"  # CSV: host, kb, title, restart
    powershell = "powershell"  # the .ps1 installing each Windows host's KBs


def plan(
    group: Annotated[str | None, typer.Option(help="Only the hosts of this asset group.")
                     ] = None,
    service: Annotated[str | None, typer.Option(help="Only the hosts of this business "
                                                     "service.")] = None,
    kev: Annotated[bool, typer.Option("--kev", help="Only changes that fix a known-"
                                                    "exploited vulnerability.")] = False,
    fmt: Annotated[PlanFormat, typer.Option("--format", help="Output format.")
                   ] = PlanFormat.table,
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Write here (a folder for ansible).")
                      ] = None,
) -> None:
    """The patch plan: open findings grouped by the upgrade that removes them."""
    from patchpilot.cells import csv_chunks
    from patchpilot.clock import now_utc
    from patchpilot.reports.ansible import FILES, write_files
    from patchpilot.reports.windows_updates import kb_csv, powershell
    from patchpilot.scans import plan_store
    from patchpilot.scans.plan import PLAN_COLUMNS, WINDOWS_UPDATE

    engine = open_engine()
    state = plan_store.ensure_current(engine)
    if state.stale:
        state = plan_store.rebuild(engine)
    with engine.connect() as conn:
        query = plan_store.query_for(conn, group=group, service=service, kev=kev)
        items = plan_store.iter_items(conn, state, query)
        if fmt is PlanFormat.ansible:
            folder = output or Path("patchpilot-ansible")
            folder.mkdir(parents=True, exist_ok=True)
            handles = {name: (folder / name).open("w", encoding="utf-8") for name in FILES}
            try:
                write_files(items, state.generated_at or now_utc(), handles)  # type: ignore[arg-type]
            finally:
                for handle in handles.values():
                    handle.close()
            console.print(f"wrote playbook.yml, inventory.yml and inventory.ini to {folder}")
            return
        if fmt in (PlanFormat.windows_kbs, PlanFormat.powershell):
            kb_items = plan_store.iter_items(conn, state, query, manager=WINDOWS_UPDATE)
            text = (kb_csv(kb_items) if fmt is PlanFormat.windows_kbs
                    else powershell(kb_items, state.generated_at or now_utc()))
            if output:
                output.write_text(text, encoding="utf-8")
                console.print(f"wrote {output}")
            else:
                sys.stdout.write(text)
            return
        if fmt in (PlanFormat.json, PlanFormat.csv):
            out: TextIO = output.open("w", encoding="utf-8") if output else sys.stdout
            try:
                if fmt is PlanFormat.csv:
                    for chunk in csv_chunks(plan_store.csv_rows(conn, state, query),
                                            PLAN_COLUMNS):
                        out.write(chunk.decode("utf-8"))
                else:
                    # One JSON document, written an item at a time.
                    out.write('{"generated_at": ' + orjson.dumps(
                        state.generated_at.isoformat() if state.generated_at else None
                    ).decode() + ', "items": [')
                    for n, item in enumerate(items):
                        out.write(("," if n else "") + "\n" + orjson.dumps(
                            item.to_dict()).decode())
                    out.write("\n]}\n")
            finally:
                if output:
                    out.close()
            return
        page = plan_store.read_page(conn, state, query, limit=10_000, first_hosts=0)
        unfixed = plan_store.read_page(conn, state, query, kind=plan_store.UNFIXED,
                                       limit=10_000, first_hosts=0)
    table = Table(title="Patch plan (most risk removed first)")
    for column in ("#", "change", "command", "reboot", "next window"):
        table.add_column(column)
    for rank, view in enumerate(page.items, 1):
        windows = [w["window"] or "any time" for w in view.hosts_by_window]
        table.add_row(str(rank), view.summary, view.command or "",
                      "yes" if view.reboot else "no", ", ".join(windows[:2]))
    wide.print(table)
    for u in unfixed.items:
        wide.print(f"no fix yet: {u.package} ({u.ecosystem}) {len(u.vulns)} vulnerabilities "
                   f"on {u.pending} hosts" + (f"; workaround: {u.workaround}"
                                              if u.workaround else ""))
