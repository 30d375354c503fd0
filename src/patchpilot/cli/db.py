"""``patchpilot db``: load and inspect the vulnerability knowledge base."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from patchpilot.cli.common import console, err, fail, open_engine, wide
from patchpilot.config import load_settings
from patchpilot.errors import PatchPilotError
from patchpilot.knowledge.coverage import MIN_ADVISORIES
from patchpilot.knowledge.feeds.registry import FEEDS_BY_NAME

# The --feed help names the feeds of the registry, so a new feed shows up without editing it.
FEED_HELP = f"Only this feed ({', '.join(FEEDS_BY_NAME)})."

db_app = typer.Typer(help="The vulnerability knowledge base (OSV, distributions, NVD, KEV, "
                          "EPSS).", no_args_is_help=True)


@db_app.command("update")
def db_update(
    from_: Annotated[list[Path] | None, typer.Option(
        "--from", help="Read feed files from this folder or file (offline); repeatable. "
                       "Default: $PATCHPILOT_FEEDS_DIR, else the official sources.")] = None,
    feed: Annotated[list[str] | None, typer.Option(help=FEED_HELP)] = None,
    force: Annotated[bool, typer.Option(help="Reload sources whose files are unchanged.")
                     ] = False,
    rematch: Annotated[bool, typer.Option(
        help="Re-match the stored inventories the update concerns here and now, instead "
             "of queueing a re-match job for the workers.")] = False,
) -> None:
    """Load or refresh the knowledge base, incrementally.

    When something changed and assets are known, the stored inventories it concerns are
    re-matched (``pipeline.after_feed_update``: a ``rematch`` job, or here with --rematch):
    findings the update brings are marked new from the feed.
    """
    from patchpilot.knowledge.feeds.registry import FEEDS, feed_named
    from patchpilot.knowledge.update import update_from, update_online
    from patchpilot.pipeline import after_feed_update

    settings = load_settings()
    try:
        feeds = tuple(feed_named(n) for n in feed) if feed else FEEDS
    except KeyError as exc:
        fail(exc)
        return
    roots = from_ or list(settings.feeds_dirs)
    try:
        engine = open_engine()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as progress:
            tasks: dict[str, TaskID] = {}

            def report(source: str, done: int, total: int) -> None:
                if source not in tasks:
                    tasks[source] = progress.add_task(source, total=total)
                progress.update(tasks[source], completed=done)

            if roots:
                results = update_from(engine, roots, feeds=feeds, force=force, progress=report)
            else:
                results = update_online(engine, settings.cache_dir, feeds=feeds, force=force,
                                        progress=report)
    except PatchPilotError as exc:
        fail(exc)
        return
    table = Table(title="Knowledge base update", header_style="bold")
    for col in ("Source", "Status", "Records", "Written", "Removed", "Seconds"):
        table.add_column(col, no_wrap=True,
                         justify="right" if col in ("Records", "Written", "Removed",
                                                    "Seconds") else "left")
    for r in results:
        status = {"loaded": "[green]loaded[/]", "unchanged": "[dim]unchanged[/]",
                  "failed": "[red]failed[/]"}[r.status]
        table.add_row(r.source, status, f"{r.records:,}", f"{r.written:,}", f"{r.removed:,}",
                      f"{r.seconds:.2f}")
    wide.print(table)
    _print_follow_up(after_feed_update(engine, results, inline=rematch))
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        err.print(f"[red]failed[/] {r.source}: {r.error}")
    if not results:
        err.print("[yellow]no feed files found[/]" + (f" in {', '.join(map(str, roots))}"
                                                      if roots else ""))
        raise typer.Exit(1)
    if failed:
        downloads = [r for r in failed if (r.error or "").startswith("download failed")]
        err.print(f"{len(failed)} source(s) failed and were left as they were; "
                  "the others were loaded.")
        if downloads:
            err.print("No network? Load the same feeds from files instead: "
                      "`patchpilot db update --from DIR` or PATCHPILOT_FEEDS_DIR=DIR[:DIR…] "
                      "(see the README, 'Offline / air-gapped').")
        if len(downloads) < len(failed):
            err.print("Fix or remove the files named above and rerun.")
        raise typer.Exit(1)


def _print_follow_up(follow) -> None:  # type: ignore[no-untyped-def]
    """Say what followed the update (``pipeline.after_feed_update``)."""
    which = ("every asset's latest inventory" if follow.changed_since is None
             else "the assets whose packages the updated advisories name")
    if follow.job_id is not None:
        console.print(f"queued re-match job {follow.job_id} for {which} "
                      "(a worker runs it; --rematch runs it here instead)")
    done = follow.rematch
    if done is None:
        return
    console.print(f"re-matched {done.assets:,} asset(s): {done.distinct:,} distinct "
                  f"package versions, {done.new:,} new finding(s) from this update, "
                  f"{done.fixed:,} fixed, in {done.seconds:.1f} s")
    if follow.reprioritised is not None:
        console.print(f"re-prioritised: {follow.reprioritised:,} finding(s) changed, in "
                      f"{follow.prioritise_seconds:.1f} s")


def _coverage_rows(known: list[dict[str, Any]], estate: dict[str, Any]
                   ) -> list[dict[str, Any]]:
    """The knowledge base's ecosystems and the estate's, side by side: advisories and
    affected rows loaded, the estate's packages and assets, covered or not -- the
    ecosystems the estate has but no advisory covers first."""
    rows = {r["ecosystem"]: {**r, "packages": 0, "assets": 0} for r in known}
    for eco, cov in estate.items():
        row = rows.setdefault(eco, {"ecosystem": eco, "advisories": 0, "affected": 0,
                                    "covered": cov.covered})
        row.update(packages=cov.packages, assets=cov.assets)
    return sorted(rows.values(), key=lambda r: (r["covered"], -r["packages"], r["ecosystem"]))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database's schema to this version's newest, once, and say from which.

    Every command and process migrates on start too; an upgrade runs this once, before
    the new processes start (docs/install.md, "Upgrading")."""
    import time

    from patchpilot.db import make_engine, upgrade_schema
    from patchpilot.db.backup import head_revision, schema_revision

    started = time.monotonic()
    try:
        engine = make_engine(load_settings().database_url)
        with engine.connect() as conn:
            before = schema_revision(conn)
        upgrade_schema(engine)
        with engine.connect() as conn:
            after = schema_revision(conn)
    except PatchPilotError as exc:
        fail(exc)
        return
    except Exception as exc:  # noqa: BLE001 - a connection or migration failure, one line
        fail(PatchPilotError(f"cannot migrate the database: {exc.__class__.__name__}: "
                             f"{str(exc).splitlines()[0]}"))
        return
    if before == after:
        console.print(f"the schema is current ({after}); nothing to migrate")
    else:
        console.print(f"migrated the schema from {before or 'empty'} to {after} "
                      f"(newest: {head_revision()}) in {time.monotonic() - started:.1f} s",
                      soft_wrap=True)


@db_app.command("status")
def db_status(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
              ) -> None:
    """Counts per source and ecosystem, and when each source was last updated."""
    from patchpilot.findings.coverage import estate_coverage
    from patchpilot.knowledge.status import knowledge_status

    try:
        engine = open_engine()
        st = knowledge_status(engine)
        with engine.connect() as conn:
            estate = {c.ecosystem: c for c in estate_coverage(conn)}
    except PatchPilotError as exc:
        fail(exc)
        return
    coverage = _coverage_rows(st.coverage, estate)
    if json_:
        doc = {**st.to_dict(), "coverage": coverage}
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    t = Table(title="Sources", header_style="bold")
    for col in ("Source", "Kind", "Records", "Updated (UTC)"):
        t.add_column(col, no_wrap=True, justify="right" if col == "Records" else "left")
    for s in st.sources:
        updated = (s["updated_at"] or "-")[:19].replace("T", " ")
        t.add_row(s["source"], s["kind"], f"{s['records']:,}", updated)
    wide.print(t)
    e = Table(title="Advisories per ecosystem", header_style="bold")
    for col in ("Feed", "Ecosystem", "Advisories"):
        e.add_column(col)
    for row in st.ecosystems:
        e.add_row(row["feed"], row["ecosystem"], f"{row['advisories']:,}")
    wide.print(e)
    c = Table(title="Coverage per ecosystem and release", header_style="bold")
    for col in ("Ecosystem", "Advisories", "Packages named", "Estate packages", "Assets",
                "Covered"):
        c.add_column(col, no_wrap=True, justify="left" if col in ("Ecosystem", "Covered")
                     else "right")
    for row in coverage:
        c.add_row(row["ecosystem"], f"{row['advisories']:,}", f"{row['affected']:,}",
                  f"{row['packages']:,}", f"{row['assets']:,}",
                  "yes" if row["covered"] else "[yellow]not covered[/]")
    wide.print(c)
    console.print(f"An ecosystem with fewer than {MIN_ADVISORIES} advisories loaded is not "
                  "covered: no finding there means nothing was checked.")
    cves = ", ".join(f"{k} {v:,}" for k, v in sorted(st.cve_records.items())) or "none"
    console.print(f"advisories {st.advisories:,} · CVE records: {cves} · "
                  f"KEV {st.kev:,} · EPSS {st.epss:,}")
    if not st.sources:
        console.print("The knowledge base is empty: run [bold]patchpilot db update[/] "
                      "(or --from DIR offline).")
