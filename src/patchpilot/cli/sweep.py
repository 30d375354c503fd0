"""``patchpilot sweep``: is this vulnerability anywhere?"""

from __future__ import annotations

import sys
import time
from typing import Annotated

import orjson
import typer
from rich.table import Table

from patchpilot.cli.common import console, err, fail, open_engine, wide
from patchpilot.errors import PatchPilotError


def _sweep_counts(initial: dict[str, int]) -> str:
    return (f"[bold red]{initial['affected']:,} affected[/] · "
            f"[green]{initial['not_affected']:,} not affected[/] · "
            f"[yellow]{initial['unknown']:,} unknown[/]")


def _sweep_status(status: dict[str, int]) -> str:
    return " · ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in status.items() if v)


def sweep(
    vuln: Annotated[str | None, typer.Argument(
        help="A CVE, or an advisory id or alias (GHSA, PYSEC, ALSA, DSA, …).")] = None,
    package: Annotated[str | None, typer.Option(
        help="Sweep for this package (with --ecosystem and --range) instead of, or to "
             "name the packages of, the vulnerability.")] = None,
    ecosystem: Annotated[str | None, typer.Option(
        help="Ecosystem of --package: Debian (every release) or Debian:12, PyPI, npm, …")
    ] = None,
    range_: Annotated[str | None, typer.Option(
        "--range", help="Affected versions, e.g. '<5.6.2' or '>=5.6.0,<5.6.2'.")] = None,
    deadline: Annotated[int, typer.Option(
        help="Minutes agents and SSH targets have to confirm.")] = 60,
    wait: Annotated[bool, typer.Option(help="Follow the confirmations until done.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Emergency sweep: is this vulnerability anywhere?  Answers at once from the stored
    inventories, then asks every agent and SSH target to confirm before the deadline."""
    import getpass

    from patchpilot.scans.sweeps import SweepQuery, close_sweeps, get_sweep, start_sweep

    explicit = (package, ecosystem, range_)
    if any(explicit) and not all(explicit):
        fail(PatchPilotError("--package, --ecosystem and --range go together"))
    if not vuln and not all(explicit):
        fail(PatchPilotError("name a vulnerability (patchpilot sweep CVE-2024-3094) or "
                              "give --ecosystem, --package and --range"))
    try:
        engine = open_engine()
        started = start_sweep(engine, SweepQuery(vuln, ecosystem, package, range_),
                              created_by=f"cli:{getpass.getuser()}",
                              deadline_minutes=deadline)
    except PatchPilotError as exc:
        fail(exc)
        return
    if json_ and not wait:
        sys.stdout.write(orjson.dumps(started.to_dict(), option=orjson.OPT_INDENT_2).decode()
                         + "\n")
        return
    hits = [r for r in started.results if r.initial == "affected"]
    if json_:
        pass  # JSON only, once the sweep is done
    elif hits:
        t = Table(title=f"Affected: {started.query.label()}", header_style="bold")
        for col in ("Asset", "Package", "Installed", "Version", "Fixed in", "Vulnerabilities"):
            t.add_column(col)
        for r in hits:
            for p in r.packages:
                t.add_row(r.name, p["package"], ", ".join(p["installed"]), p["version"],
                          p["fixed"] or "[red]no fix yet[/]", " ".join(p["vulns"]))
        wide.print(t)
    # An alias or advisory id stands for its CVEs: name them.
    vulns = (f" → {', '.join(started.vulns)}"
             if started.vulns and list(started.vulns) != [started.query.vuln] else "")
    if not json_:
        console.print(f"sweep {started.id} {started.query.label()}{vulns}: "
                      f"{_sweep_counts(started.initial)} "
                      f"(of {sum(started.initial.values()):,} assets, from stored inventories)")
    if started.jobs and not json_:
        console.print(f"asked {started.jobs:,} agent(s)/SSH target(s) to confirm by "
                      f"{started.deadline:%Y-%m-%d %H:%M} UTC"
                      + ("" if wait else f"; follow with GET /api/sweeps/{started.id}"))
    if not wait:
        return
    last = None
    while True:
        close_sweeps(engine, sweep_id=started.id)
        with engine.connect() as conn:
            now = get_sweep(conn, started.id, results=False)
        assert now is not None
        line = _sweep_status(now.status)
        if line != last:
            err.print(f"{time.strftime('%H:%M:%S')} {line}")
            last = line
        if now.state == "done":
            break
        time.sleep(1.0)
    with engine.connect() as conn:
        final = get_sweep(conn, started.id)
    assert final is not None
    if json_:
        sys.stdout.write(orjson.dumps(final.to_dict(), option=orjson.OPT_INDENT_2).decode()
                         + "\n")
        return
    confirmed = [r for r in final.results if r.status in ("confirmed", "affected")]
    console.print(f"sweep {final.id} done: {_sweep_status(final.status)}")
    for r in confirmed:
        fixes = ", ".join(f"{p['package']} {p['version']} → {p['fixed'] or 'no fix yet'}"
                          for p in r.packages)
        console.print(f"  {r.status:9} {r.name}: {fixes}")
