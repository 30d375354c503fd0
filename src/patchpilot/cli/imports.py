"""``patchpilot import``: third-party scanner reports into PatchPilot's findings."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from patchpilot.cli.common import cli_actor, console, err, fail, open_engine, print_json, wide
from patchpilot.errors import PatchPilotError


def _formats_table() -> None:
    from patchpilot.importers.registry import FORMATS

    table = Table("format", "scanner (producer)", "what", "files")
    for f in sorted(FORMATS, key=lambda f: f.name):
        table.add_row(f.name, f.producer, f.title, " ".join(f.extensions) or "-")
    wide.print(table)
    console.print(f"{len(FORMATS)} formats; the generic CSV/JSON templates are in "
                  "docs/importers.md")


def _skipped(summary: dict[str, Any]) -> str:
    return "; ".join(f"{n} {reason}" for reason, n in summary["skipped"].items()) or "-"


def _print(summaries: list[dict[str, Any]], dry_run: bool) -> None:
    table = Table("file", "format", "producer", "assets (new)", "findings", "new", "reopened",
                  "fixed", "unchanged", "informational", "skipped", "seconds")
    for s in summaries:
        if s.get("duplicate"):
            table.add_row(s["file"], s["format"], s["producer"], "-", "-", "-", "-", "-", "-",
                          "-", "already imported (same content): nothing changed",
                          f"{s['seconds']:.2f}")
            continue
        table.add_row(s["file"], s["format"], s["producer"],
                      f"{s['assets']} ({len(s['assets_created'])})", str(s["findings"]),
                      str(s["new"]), str(s["reopened"]), str(s["fixed"]), str(s["unchanged"]),
                      str(s["informational"]), _skipped(s), f"{s['seconds']:.2f}")
    wide.print(table)
    created = [name for s in summaries for name in s["assets_created"]]
    if created:
        shown = ", ".join(created[:10]) + (f" and {len(created) - 10} more"
                                          if len(created) > 10 else "")
        console.print(f"{len(created)} assets created: {shown} -- `patchpilot assets unknown` "
                      "lists the assets the CMDB does not describe")
    if dry_run:
        console.print("[yellow]dry run: nothing was stored[/]")


def import_(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Scanner reports: .nessus, Tenable/Qualys/OpenVAS CSV, Trivy/Grype/Snyk JSON, "
             "SARIF, CycloneDX VEX, … (`--formats` lists them).", show_default=False)] = None,
    format: Annotated[str | None, typer.Option(
        "--format", "-f", help="The report's format (default: recognised from its content).")
    ] = None,
    scope: Annotated[str | None, typer.Option(
        help="A name for this scan's scope (e.g. 'dmz-weekly'): a re-import closes only "
             "the findings of the same scanner and scope.")] = None,
    asset: Annotated[str | None, typer.Option(
        help="The asset for reports that name none (npm audit, pip-audit…); default: the "
             "file's name.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what the import would change; store nothing.")] = False,
    watch: Annotated[Path | None, typer.Option(
        help="Keep importing what appears in this folder (moved to done/ or failed/).")
    ] = None,
    interval: Annotated[float, typer.Option(
        help="Seconds between looks into the --watch folder.", min=1.0)] = 30.0,
    formats: Annotated[bool, typer.Option(
        "--formats", help="List the report formats and exit.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Import scanner reports (Nessus, Qualys, OpenVAS, Trivy, …) into the findings.

    Hosts by name, FQDN, IP or image; a new one is listed by `patchpilot assets unknown`.

    A later report of the same scanner closes what it no longer lists.

    The same file twice changes nothing.
    """
    if formats:
        _formats_table()
        return
    if watch is not None:
        _watch(watch, scope, interval, json_)
        return
    if not files:
        fail(PatchPilotError("no report given"),
             "name one or more files, or --watch DIR; `patchpilot import --formats` lists "
             "what can be read")
        return
    from patchpilot.importers.apply import import_file

    engine = open_engine()
    summaries: list[dict[str, Any]] = []
    for path in files:
        if not path.is_file():
            fail(PatchPilotError(f"{path}: no such file"))
            return
        try:
            with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                          TimeRemainingColumn(), console=err, transient=True,
                          disable=json_) as bar:
                task = bar.add_task(f"reading {path.name}", total=path.stat().st_size)

                def advance(done: int, _total: int, task: TaskID = task,
                            bar: Progress = bar) -> None:
                    bar.update(task, completed=done)

                summary = import_file(
                    engine, path, format=format, scope=scope, asset=asset, dry_run=dry_run,
                    actor=cli_actor(), progress=advance)
        except PatchPilotError as exc:
            if summaries and not json_:
                _print(summaries, dry_run)
            fail(exc, "nothing of this file was stored; fix it or give --format, then run "
                      "the import again")
            return
        summaries.append(summary.to_dict())
    if json_:
        print_json(summaries)
        return
    _print(summaries, dry_run)


def _watch(folder: Path, scope: str | None, interval: float, json_: bool) -> None:
    from patchpilot.importers.jobs import scan_folder

    engine = open_engine()
    if not json_:
        console.print(f"watching {folder} every {interval:g} s (Ctrl-C to stop); imported "
                      "files go to done/, refused ones to failed/ with the reason beside them")
    try:
        while True:
            try:
                results = scan_folder(engine, folder, scope=scope, actor=cli_actor())
            except PatchPilotError as exc:
                fail(exc)
                return
            for r in results:
                if json_:
                    print_json({"file": r.file, "error": r.error,
                                "summary": r.summary.to_dict() if r.summary else None})
                elif r.summary is not None:
                    _print([r.summary.to_dict()], False)
                else:
                    err.print(f"[red]{r.file}: {r.error}[/] (moved to failed/)")
            time.sleep(interval)
    except KeyboardInterrupt:
        return
