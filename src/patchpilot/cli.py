"""The ``patchpilot`` command line.  Thin: parse, call one function of a stage, print."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from patchpilot import __version__
from patchpilot.config import load_settings
from patchpilot.errors import PatchPilotError

T = TypeVar("T")

app = typer.Typer(help="PatchPilot: find what is vulnerable, decide what to patch first.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="The vulnerability knowledge base (OSV, distributions, NVD, KEV, "
                          "EPSS).", no_args_is_help=True)
scan_app = typer.Typer(help="Scan a host or a file and print its findings.",
                       no_args_is_help=True)
inventory_app = typer.Typer(help="Inventories: what a host runs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(scan_app, name="scan")
app.add_typer(inventory_app, name="inventory")

console = Console()
# Piped or redirected, tables keep their columns instead of folding to 80 characters.
wide = console if console.is_terminal else Console(width=220)
# Errors are never wrapped: paths and commands in them must stay copyable.
err = Console(stderr=True, soft_wrap=True)


class OutputFormat(StrEnum):
    """Formats of ``patchpilot scan``."""

    table = "table"
    json = "json"
    csv = "csv"
    sarif = "sarif"


def _engine():  # type: ignore[no-untyped-def]
    from patchpilot.db import connect

    return connect(load_settings().database_url)


def _writable_engine():  # type: ignore[no-untyped-def]
    """The engine of a long-running command (server, up, worker): a database that
    refuses writes -- or a home where it cannot be created -- is a ConfigError (one line,
    exit 2) now, not a 500 per request or a traceback per second later."""
    from patchpilot.db.engine import require_writable

    engine = _engine()
    require_writable(engine)
    return engine


def _fail(exc: Exception, hint: str | None = None) -> NoReturn:
    err.print(f"[bold red]error:[/] {exc}")
    if hint:
        err.print(hint)
    raise typer.Exit(2)


def _in_db(work: Callable[[Any], T], *, write: bool = False) -> T:
    """``work(conn)`` on the configured database (one transaction when ``write``); a
    PatchPilotError ends the command with its message."""
    try:
        engine = _engine()
        with engine.begin() if write else engine.connect() as conn:
            return work(conn)
    except PatchPilotError as exc:
        _fail(exc)


def _print_json(value: Any) -> None:
    """Indented JSON on standard output (the --json of listing commands)."""
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())



@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"patchpilot {__version__}")


@db_app.command("update")
def db_update(
    from_: Annotated[list[Path] | None, typer.Option(
        "--from", help="Read feed files from this folder or file (offline); repeatable. "
                       "Default: $PATCHPILOT_FEEDS_DIR, else the official sources.")] = None,
    feed: Annotated[list[str] | None, typer.Option(
        help="Only this feed (osv, debian-tracker, alpine-secdb, nvd, cve5, kev, epss).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Reload sources whose files are unchanged.")
                     ] = False,
    rematch: Annotated[bool, typer.Option(
        help="Re-match every asset's latest inventory here and now, instead of queueing a "
             "re-match job for the workers.")] = False,
) -> None:
    """Load or refresh the knowledge base, incrementally.

    When something changed and assets are known, their stored inventories are re-matched
    (a ``rematch`` job, or here with --rematch): findings the update brings are marked
    new from the feed.
    """
    from patchpilot.knowledge.feeds.registry import FEEDS, feed_named
    from patchpilot.knowledge.update import update_from, update_online

    settings = load_settings()
    try:
        feeds = tuple(feed_named(n) for n in feed) if feed else FEEDS
    except KeyError as exc:
        _fail(exc)
        return
    roots = from_ or list(settings.feeds_dirs)
    try:
        engine = _engine()
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
        _fail(exc)
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
    if any(r.status == "loaded" and (r.written or r.removed) for r in results):
        _rematch_after_update(engine, inline=rematch)
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


def _rematch_after_update(engine, *, inline: bool) -> None:  # type: ignore[no-untyped-def]
    """Bring the estate's findings in line with a knowledge base that changed."""
    from sqlalchemy import select

    from patchpilot.db.tables import assets
    from patchpilot.queue import enqueue
    from patchpilot.scans.rematch import rematch_all

    with engine.connect() as conn:
        if conn.execute(select(assets.c.id).limit(1)).first() is None:
            return  # no inventories stored yet: nothing to re-match
    if inline:
        from patchpilot.scoring.apply import reprioritise

        done = rematch_all(engine)
        console.print(f"re-matched {done.assets:,} asset(s): {done.distinct:,} distinct "
                      f"package versions, {done.new:,} new finding(s) from this update, "
                      f"{done.fixed:,} fixed, in {done.seconds:.1f} s")
        if done.assets:
            started = time.perf_counter()
            with engine.begin() as conn:
                changed = reprioritise(conn)
            console.print(f"re-prioritised: {changed:,} finding(s) changed, in "
                          f"{time.perf_counter() - started:.1f} s")
        return
    with engine.begin() as conn:
        job_id = enqueue(conn, "rematch", {"changed_since": None})
    console.print(f"queued re-match job {job_id} for every asset's latest inventory "
                  "(a worker runs it; --rematch runs it here instead)")


@db_app.command("status")
def db_status(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
              ) -> None:
    """Counts per source and ecosystem, and when each source was last updated."""
    from patchpilot.knowledge.status import knowledge_status

    try:
        st = knowledge_status(_engine())
    except PatchPilotError as exc:
        _fail(exc)
        return
    if json_:
        sys.stdout.write(orjson.dumps(st.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
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
    cves = ", ".join(f"{k} {v:,}" for k, v in sorted(st.cve_records.items())) or "none"
    console.print(f"advisories {st.advisories:,} · CVE records: {cves} · "
                  f"KEV {st.kev:,} · EPSS {st.epss:,}")
    if not st.sources:
        console.print("The knowledge base is empty: run [bold]patchpilot db update[/] "
                      "(or --from DIR offline).")


def _emit(result, fmt: OutputFormat, output: Path | None) -> None:  # type: ignore[no-untyped-def]
    from patchpilot.reports.scan import FORMATS
    from patchpilot.reports.scan.table_format import summary_line, table

    if fmt is OutputFormat.table and output is None:
        wide.print(table(result))
        wide.print(summary_line(result))
        for u in result.undetermined[:20]:
            wide.print(f"[yellow]undetermined[/] {u.package.name} {u.package.version}: "
                      f"{u.reason}")
        return
    text = FORMATS[fmt.value](result)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {len(result.findings)} findings to {output}")


def _scan_and_emit(inventory, fmt: OutputFormat, output: Path | None,  # type: ignore[no-untyped-def]
                   fail_on: str | None) -> None:
    from patchpilot.findings.scan import scan_inventory
    from patchpilot.scoring.cvss import SEVERITY_ORDER

    try:
        engine = _engine()
        result = scan_inventory(engine, inventory)
    except PatchPilotError as exc:
        _fail(exc)
        return
    from patchpilot.knowledge.status import knowledge_status

    if not result.findings and knowledge_status(engine).advisories == 0:
        err.print("[yellow]the knowledge base is empty[/]: run `patchpilot db update` first.")
    _emit(result, fmt, output)
    if fail_on:
        floor = SEVERITY_ORDER.get(fail_on.capitalize(), 99)
        if any(SEVERITY_ORDER.get(f.severity, -1) >= floor for f in result.findings):
            raise typer.Exit(3)


FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")]
FailOnOpt = Annotated[str | None, typer.Option(
    help="Exit with status 3 if a finding is at least this severe (critical, high, …).")]


@scan_app.command("local")
def scan_local(
    path: Annotated[list[Path] | None, typer.Option(
        "--path", help="Also scan this virtualenv or site-packages folder; repeatable.")] = None,
    changelogs: Annotated[bool, typer.Option(
        help="Ask apt's changelog server which CVEs pending updates fix (uses the network)."
    )] = False,
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Inventory this machine (OS and Python packages) and print its findings."""
    from patchpilot.inventory.transports.local import collect_local

    try:
        inventory = collect_local(python_paths=list(path or []), fetch_changelogs=changelogs)
    except PatchPilotError as exc:
        _fail(exc)
        return
    _scan_and_emit(inventory, fmt, output, fail_on)


@scan_app.command("file")
def scan_file(
    path: Annotated[Path, typer.Argument(
        help="A package database (dpkg status, rpm list, apk installed), a lock file, an "
             "SBOM, an Inventory JSON, or a folder to search for lock files and SBOMs.")],
    distro: Annotated[str | None, typer.Option(
        help="The distribution release OS packages come from, e.g. debian:12, when the "
             "file does not say.")] = None,
    type_: Annotated[str | None, typer.Option(
        "--type", help="Read the file as this kind instead of detecting it "
                       "(dpkg, rpm, apk, npm, pip, poetry, cyclonedx, spdx, …).")] = None,
    hostname: Annotated[str | None, typer.Option(
        help="The asset the file describes (a lock file does not say).")] = None,
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Scan a saved package list, lock file, SBOM or folder and print its findings."""
    from patchpilot.inventory.transports.file import read_inventory_file

    try:
        inventory = read_inventory_file(path, ecosystem=_distro_ecosystem(distro),
                                        hostname=hostname, source_type=type_)
    except PatchPilotError as exc:
        _fail(exc)
        return
    _scan_and_emit(inventory, fmt, output, fail_on)


def _distro_ecosystem(distro: str | None) -> str | None:
    if not distro:
        return None
    from patchpilot.knowledge.ecosystems import ecosystem_for_os
    from patchpilot.models import OsRelease

    os_id, _, release = distro.lower().partition(":")
    eco = ecosystem_for_os(OsRelease(id=os_id, version_id=release or None))
    if eco is None:
        _fail(ValueError(f"unknown distribution {distro!r}"),
              "Use e.g. debian:12, ubuntu:22.04, alpine:3.18, almalinux:9, rocky:9, rhel:9.")
    return eco


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
        _fail(exc)
        return
    data = inventory.to_json()
    if output is None:
        sys.stdout.buffer.write(data + b"\n")
    else:
        output.write_bytes(data)
        err.print(f"wrote {len(inventory.packages)} packages to {output}")


@scan_app.command("inventory")
def scan_inventory_file(
    path: Annotated[Path, typer.Argument(help="An Inventory JSON file.")],
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Match a saved Inventory and print its findings."""
    from patchpilot.inventory.model import Inventory

    try:
        inventory = Inventory.from_json(path.read_bytes())
    except OSError as exc:
        _fail(exc)
        return
    except PatchPilotError as exc:
        _fail(exc)
        return
    _scan_and_emit(inventory, fmt, output, fail_on)


SSH_HOSTS_FAILED = 4
"""Exit status of ``scan ssh`` when some hosts could not be scanned (it wins over 3)."""


@scan_app.command("ssh")
def scan_ssh(
    target: Annotated[list[str] | None, typer.Argument(
        help="Hosts to scan: user@host[:port] (IPv6 as user@[::1]:22).", show_default=False)
    ] = None,
    targets: Annotated[Path | None, typer.Option(
        "--targets", help="Also scan the targets of this file: one per line, # comments.")
    ] = None,
    identity: Annotated[list[Path] | None, typer.Option(
        "--identity", "-i", help="Private key file to log in with; repeatable. Default: the "
                                 "ssh-agent ($SSH_AUTH_SOCK) and ~/.ssh/id_*.")] = None,
    password_env: Annotated[str | None, typer.Option(
        "--password-env", help="Log in with the password held in this environment "
                               "variable (never on the command line).")] = None,
    sudo: Annotated[bool, typer.Option(
        "--sudo", help="Run the read commands via `sudo -n` (fails if a password is "
                       "needed).")] = False,
    known_hosts: Annotated[Path, typer.Option(
        "--known-hosts", help="The known_hosts file host keys are checked against.")
    ] = Path("~/.ssh/known_hosts"),
    trust_new_hosts: Annotated[bool, typer.Option(
        "--trust-new-hosts", help="Trust and record the key of a host not in known_hosts "
                                  "yet (a changed key is still refused).")] = False,
    command_timeout: Annotated[float, typer.Option(
        "--command-timeout", min=0.01, help="Seconds each remote command (and the "
                                            "connection) may take.")] = 60.0,
    host_timeout: Annotated[float, typer.Option(
        "--host-timeout", min=0.01, help="Seconds one host's whole scan may take.")] = 300.0,
    max_concurrent: Annotated[int, typer.Option(
        "--max-concurrent", min=1, help="Hosts scanned at the same time.")] = 10,
    python: Annotated[bool, typer.Option(
        "--python/--no-python", help="Also list the system Python's packages.")] = True,
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Inventory hosts over SSH (read-only, agentless) and print each one's findings.

    Exit status: 0 when every host was scanned, 3 as with --fail-on, 4 when some hosts
    could not be scanned (unreachable, auth failed, host key refused, timed out, failed).
    """
    import os

    from patchpilot.findings.scan import scan_inventory
    from patchpilot.inventory.transports.ssh import (
        HostStatus,
        SshOptions,
        SshTarget,
        read_targets_file,
        scan_hosts_sync,
    )
    from patchpilot.reports.scan import FORMATS
    from patchpilot.reports.scan.json_format import document
    from patchpilot.scoring.cvss import SEVERITY_ORDER

    if fmt not in (OutputFormat.table, OutputFormat.json):
        _fail(ValueError(f"--format {fmt.value}: scan ssh prints a table or JSON "
                         "(one document per host)"))
    password: str | None = None
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            _fail(ValueError(f"--password-env: the environment variable {password_env} is "
                             "not set or empty"))
    try:
        hosts = [SshTarget.parse(t, "target") for t in target or []]
        hosts += read_targets_file(targets) if targets else []
        if not hosts:
            _fail(ValueError("no target: name user@host[:port] or pass --targets FILE"))
        options = SshOptions(
            identities=tuple(identity or ()), password=password, known_hosts=known_hosts,
            trust_new_hosts=trust_new_hosts, sudo=sudo, command_timeout=command_timeout,
            host_timeout=host_timeout, max_concurrent=max_concurrent, python=python)
        results = scan_hosts_sync(hosts, options)
        engine = _engine()
        scans = {i: scan_inventory(engine, r.inventory) for i, r in enumerate(results)
                 if r.inventory is not None}
    except PatchPilotError as exc:
        _fail(exc)
        return
    from patchpilot.knowledge.status import knowledge_status

    if scans and not any(s.findings for s in scans.values()) \
            and knowledge_status(engine).advisories == 0:
        err.print("[yellow]the knowledge base is empty[/]: run `patchpilot db update` first.")
    if fmt is OutputFormat.json:
        documents = []
        for i, r in enumerate(results):
            ssh = {"target": str(r.target), "status": r.status.value, "error": r.error,
                   "seconds": round(r.seconds, 3)}
            documents.append({"ssh": ssh, **(document(scans[i]) if i in scans else {})})
        text = orjson.dumps(documents, option=orjson.OPT_INDENT_2).decode() + "\n"
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
    elif output is None:
        for i, scan in scans.items():
            wide.rule(f"{results[i].target} ({scan.inventory.asset.hostname})")
            _emit(scan, fmt, None)
    else:
        output.write_text("".join(FORMATS["table"](s) for s in scans.values()),
                          encoding="utf-8")
    # The summary goes where it cannot spoil machine-readable output.
    out = wide if fmt is OutputFormat.table and output is None else err
    summary = Table(title="SSH scan", header_style="bold")
    for col in ("Target", "Status", "Hostname", "Packages", "Findings", "Seconds"):
        summary.add_column(col, no_wrap=True, justify="right" if col in (
            "Packages", "Findings", "Seconds") else "left")
    for i, r in enumerate(results):
        colour = "green" if r.status is HostStatus.scanned else "red"
        inv = r.inventory
        summary.add_row(str(r.target), f"[{colour}]{r.status.value}[/]",
                        (inv.asset.hostname or "") if inv else "-",
                        f"{len(inv.packages):,}" if inv else "-",
                        f"{len(scans[i].findings):,}" if i in scans else "-",
                        f"{r.seconds:.2f}")
    out.print(summary)
    failed = [r for r in results if r.status is not HostStatus.scanned]
    for r in failed:
        err.print(f"[red]{r.status.value}[/] {r.target}: {r.error}")
    if failed:
        err.print(f"{len(failed)} of {len(results)} host(s) not scanned.")
        raise typer.Exit(SSH_HOSTS_FAILED)
    if fail_on:
        floor = SEVERITY_ORDER.get(fail_on.capitalize(), 99)
        if any(SEVERITY_ORDER.get(f.severity, -1) >= floor
               for s in scans.values() for f in s.findings):
            raise typer.Exit(3)


token_app = typer.Typer(help="API tokens (shown once, stored hashed).", no_args_is_help=True)
enrol_app = typer.Typer(help="Enrolment tokens for agents.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(enrol_app, name="enrol-token")
user_app = typer.Typer(help="Dashboard users (argon2 password hashes).", no_args_is_help=True)
app.add_typer(user_app, name="user")
# "agents", not "agent": `patchpilot agent --server URL --enrol TOKEN` runs the agent.
agents_app = typer.Typer(help="Enrolled agents; approve or reject one held because its host "
                              "is an asset another agent reports for.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")


@agents_app.command("list")
def agents_list(
    pending: Annotated[bool, typer.Option(help="Only agents held for approval.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every enrolled agent, the asset it reports for and the one it waits for."""
    from dataclasses import asdict

    from patchpilot.clock import iso
    from patchpilot.findings.agents import list_agents

    found = _in_db(lambda conn: list_agents(conn, pending_only=pending))
    if json_:
        _print_json([{**asdict(a), "pending_since": iso(a.pending_since),
                      "enrolled_at": iso(a.enrolled_at), "last_seen": iso(a.last_seen)}
                     for a in found])
        return
    table = Table("id", "name", "asset", "waits for", "since (UTC)", "last seen (UTC)",
                  "revoked")
    for a in found:
        table.add_row(str(a.id), a.name, f"{a.asset} ({a.asset_id})" if a.asset_id else "-",
                      f"{a.pending_asset} ({a.pending_asset_id})" if a.pending_asset_id
                      else "-", iso(a.pending_since) or "-", iso(a.last_seen) or "-",
                      "yes" if a.revoked else "no")
    wide.print(table)


@agents_app.command("approve")
def agents_approve(
    agent_id: Annotated[int, typer.Argument(help="The held agent's id (`agents list`).")],
) -> None:
    """Let a held agent report for the asset it asked for (the agent that did is unbound)."""
    from patchpilot.findings.agents import approve_agent

    asset_id = _in_db(lambda conn: approve_agent(conn, "cli", agent_id), write=True)
    console.print(f"agent {agent_id} now reports for asset {asset_id}")


@agents_app.command("reject")
def agents_reject(
    agent_id: Annotated[int, typer.Argument(help="The held agent's id (`agents list`).")],
    revoke: Annotated[bool, typer.Option(help="Also revoke the agent's credential.")
                      ] = False,
) -> None:
    """Refuse a held agent's request to report for an asset (and with --revoke, the agent)."""
    from patchpilot.findings.agents import reject_agent

    asset_id = _in_db(lambda conn: reject_agent(conn, "cli", agent_id, revoke=revoke),
                      write=True)
    console.print(f"agent {agent_id} may not report for asset {asset_id}"
                  + ("; its credential is revoked" if revoke else ""))


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, analyst or viewer.")] = "viewer",
    user: Annotated[str, typer.Option(
        help="The user the token belongs to (created with --role if new).")] = "admin",
    name: Annotated[str, typer.Option(help="A label for the token.")] = "cli",
    ttl_days: Annotated[int | None, typer.Option(help="Expire after this many days.")] = None,
) -> None:
    """Create an API token against the configured database and print it (once).

    The token acts with ``--role``; for an existing user that may not be above the user's
    own role (refused, naming both): making a token never changes a user's role.
    """
    from patchpilot.server.security import Role, create_api_token

    try:
        chosen = Role(role)
    except ValueError:
        _fail(ValueError(f"unknown role {role!r}"), "Use admin, analyst or viewer.")
        return
    try:
        token, token_id = create_api_token(_engine(), user=user, role=chosen, name=name,
                                           ttl_days=ttl_days)
    except PatchPilotError as exc:
        _fail(exc)
        return
    err.print(f"token {token_id} for {user} ({chosen.value}); it is shown only now:")
    print(token)


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    role: Annotated[str, typer.Option(help="admin, analyst or viewer.")] = "viewer",
    password_env: Annotated[str | None, typer.Option(
        help="Read the password from this environment variable (else it is prompted).")
    ] = None,
) -> None:
    """Create a dashboard user with a password (or reset an existing user's role and
    password)."""
    import os

    from patchpilot.server.security import Role, set_password

    try:
        chosen = Role(role)
    except ValueError:
        _fail(ValueError(f"unknown role {role!r}"), "Use admin, analyst or viewer.")
        return
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            _fail(ValueError(f"environment variable {password_env} is empty or unset"))
            return
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user_id = set_password(_engine(), name, chosen, password)
    except PatchPilotError as exc:
        _fail(exc)
        return
    console.print(f"user {user_id}: {name} ({chosen.value})")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (as `token create` printed).")],
) -> None:
    """Revoke an API token: it, and every dashboard session opened with it, stop at once."""
    from patchpilot.audit import audit
    from patchpilot.server.security import revoke_api_token

    def work(conn: Any) -> bool:
        done = revoke_api_token(conn, token_id)
        if done:
            audit(conn, _cli_actor(), "token.revoke", str(token_id))
        return done

    if not _in_db(work, write=True):
        _fail(ValueError(f"no active token {token_id}"))
    console.print(f"token {token_id} revoked")


def _user_change(name: str, change: Callable[[Any], int], action: str, said: str) -> None:
    """Apply ``change(conn)`` to user ``name`` with an audit row; print ``said``."""
    from patchpilot.audit import audit

    def work(conn: Any) -> int:
        user_id = change(conn)
        audit(conn, _cli_actor(), action, name)
        return user_id

    user_id = _in_db(work, write=True)
    console.print(f"user {user_id}: {name} {said}")


@user_app.command("role")
def user_role(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    role: Annotated[str, typer.Argument(help="admin, analyst or viewer.")],
) -> None:
    """Change a user's role; their dashboard sessions end (tokens act with the new role
    at most)."""
    from patchpilot.server.security import Role, set_user_role

    try:
        chosen = Role(role)
    except ValueError:
        _fail(ValueError(f"unknown role {role!r}"), "Use admin, analyst or viewer.")
    _user_change(name, lambda conn: set_user_role(conn, name, chosen), "user.role",
                 f"is now {chosen.value}")


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
) -> None:
    """Disable a user: their sessions end and their tokens stop working."""
    from patchpilot.server.security import set_user_disabled

    _user_change(name, lambda conn: set_user_disabled(conn, name, True), "user.disable",
                 "disabled")


@user_app.command("enable")
def user_enable(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
) -> None:
    """Enable a disabled user again (their old sessions stay ended)."""
    from patchpilot.server.security import set_user_disabled

    _user_change(name, lambda conn: set_user_disabled(conn, name, False), "user.enable",
                 "enabled")


@enrol_app.command("create")
def enrol_token_create(
    uses: Annotated[int | None, typer.Option(help="How many agents may enrol with it.")
                    ] = None,
    ttl_hours: Annotated[int, typer.Option(help="Valid for this many hours.")] = 24 * 7,
) -> None:
    """Create a token agents enrol with (`patchpilot agent --enrol TOKEN`)."""
    from patchpilot.server.security import create_enrolment_token

    try:
        token = create_enrolment_token(_engine(), created_by="cli", uses=uses,
                                       ttl_hours=ttl_hours)
    except PatchPilotError as exc:
        _fail(exc)
        return
    err.print("enrolment token (shown only now):")
    print(token)


@app.command()
def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(
        help="Job workers inside the server (0: run `patchpilot worker` separately).")] = 1,
) -> None:
    """Run the management server (API at /api, docs at /api/docs)."""
    from patchpilot.server.run import serve

    try:
        engine = _writable_engine()
    except PatchPilotError as exc:
        _fail(exc)
        return
    err.print(f"PatchPilot {__version__} listening on http://{host}:{port} "
              f"(API docs: http://{host}:{port}/api/docs)")
    serve(engine, host=host, port=port, workers=workers)


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """The main job: server with a worker and a local agent; scans this machine and prints
    the URL and a first admin token (`make run` runs this)."""
    from patchpilot.inventory.transports.local import collect_local
    from patchpilot.server.run import up as run_up

    settings = load_settings()
    try:
        engine = _writable_engine()
        # The local agent keeps its credential under the home: refuse now, not later.
        (settings.home / "agent").mkdir(parents=True, exist_ok=True)
    except PatchPilotError as exc:
        _fail(exc)
        return
    except OSError as exc:
        _fail(PatchPilotError(f"PATCHPILOT_HOME {settings.home} is not writable: "
                              f"{exc.strerror or exc.__class__.__name__}"
                              f"{f' ({exc.filename})' if exc.filename else ''}"))
        return

    def show_scan(_agent: object) -> None:
        console.rule("This machine")
        _scan_and_emit(collect_local(), OutputFormat.table, None, None)

    run_up(engine, settings.home, host=host, port=port,
           announce=lambda text: console.print(text, soft_wrap=True),
           show_scan=show_scan)


@app.command()
def worker(
    threads: Annotated[int, typer.Option(help="Jobs to run at once in this process.")] = 1,
) -> None:
    """Take jobs from the database and run them, until interrupted."""
    import signal
    import threading

    from patchpilot.scans.worker import run_forever

    try:
        engine = _writable_engine()
    except PatchPilotError as exc:
        _fail(exc)
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pool = [threading.Thread(target=run_forever, args=(engine, stop), daemon=True)
            for _ in range(threads)]
    for t in pool:
        t.start()
    err.print(f"worker running ({threads} thread(s)); Ctrl-C to stop")
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        stop.set()
    for t in pool:
        t.join(timeout=30)


@app.command()
def agent(
    server_url: Annotated[str, typer.Option("--server", help="The server's URL.")],
    enrol: Annotated[str | None, typer.Option(
        help="Enrolment token (first start only; the credential is kept afterwards).")] = None,
    state_dir: Annotated[Path | None, typer.Option(
        help="Where the credential and the spool live.")] = None,
    name: Annotated[str | None, typer.Option(help="This host's name for the server.")] = None,
    poll_wait: Annotated[float, typer.Option(help="Long-poll seconds.")] = 25.0,
    ca_file: Annotated[Path | None, typer.Option(help="CA bundle for the server's TLS.")
                       ] = None,
    once: Annotated[bool, typer.Option(help="Upload, take one poll, exit (for tests).")
                    ] = False,
) -> None:
    """Run the agent: enrol, upload this host's inventory, poll for jobs."""
    import logging
    import socket

    from patchpilot.agent.runtime import Agent, AgentConfig, default_state_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = AgentConfig(server=server_url, state_dir=state_dir or default_state_dir(),
                         enrol_token=enrol, name=name or socket.gethostname(),
                         poll_wait=poll_wait, verify=str(ca_file) if ca_file else True)
    runner = Agent(config)
    try:
        runner.run(once=once)
    except PatchPilotError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        runner.stop.set()


schedule_app = typer.Typer(help="Scan schedules of asset groups (cron or RRULE, in a time zone).",
                           no_args_is_help=True)
window_app = typer.Typer(help="Maintenance windows (scans only inside) and blackouts (never "
                              "during) of asset groups.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")
app.add_typer(window_app, name="window")


def _cli_actor() -> str:
    import getpass

    # The audit log names who changed a schedule; on the command line that is the OS user.
    return f"cli:{getpass.getuser()}"


@schedule_app.command("add")
def schedule_add(
    group: Annotated[str, typer.Option(help="The asset group's name.")],
    cron: Annotated[str | None, typer.Option(help='A cron expression, e.g. "0 2 * * 6".')
                    ] = None,
    rrule: Annotated[str | None, typer.Option(
        help='An RFC 5545 RRULE, e.g. "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0".')] = None,
    tz: Annotated[str, typer.Option(help="IANA time zone the expression is read in.")
                  ] = "UTC",
    disabled: Annotated[bool, typer.Option(help="Store it disabled.")] = False,
) -> None:
    """Add a scan schedule to a group; prints it with its first run."""
    from patchpilot.assets.groups import group_id_named
    from patchpilot.scans.groups import add_schedule

    if (cron is None) == (rrule is None):
        _fail(PatchPilotError("give exactly one of --cron and --rrule"))
    kind, expression = ("cron", cron) if cron is not None else ("rrule", rrule)
    stored = _in_db(lambda conn: add_schedule(conn, _cli_actor(), group_id_named(conn, group),
                                              kind, str(expression), tz,
                                              enabled=not disabled), write=True)
    console.print(f"schedule {stored['id']} for group {group}: {stored['kind']} "
                  f"{stored['expression']!r} ({stored['timezone']}); next run "
                  f"{stored['next_run_at']}")


@schedule_app.command("list")
def schedule_list(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every schedule with its group and next run."""
    from patchpilot.scans.groups import list_schedules

    found = _in_db(list_schedules)
    if json_:
        _print_json(found)
        return
    table = Table("id", "group", "kind", "expression", "time zone", "enabled", "next run (UTC)")
    for s in found:
        table.add_row(str(s["id"]), s["group"], s["kind"], s["expression"], s["timezone"],
                      "yes" if s["enabled"] else "no", s["next_run_at"] or "-")
    wide.print(table)


@schedule_app.command("remove")
def schedule_remove(schedule_id: Annotated[int, typer.Argument(help="The schedule's id.")]
                    ) -> None:
    """Remove a schedule."""
    from patchpilot.scans.groups import delete_schedule

    _in_db(lambda conn: delete_schedule(conn, _cli_actor(), schedule_id), write=True)
    console.print(f"schedule {schedule_id} removed")


@window_app.command("add")
def window_add(
    group: Annotated[str, typer.Option(help="The asset group's name.")],
    rrule: Annotated[str | None, typer.Option(
        help='Each start, e.g. "FREQ=WEEKLY;BYDAY=SA;BYHOUR=1" (with --duration).')] = None,
    duration: Annotated[str | None, typer.Option(help="How long each lasts: 4h, 90m, 1d.")
                        ] = None,
    start: Annotated[str | None, typer.Option(
        help="Or one absolute period: its start (ISO 8601 with an offset).")] = None,
    end: Annotated[str | None, typer.Option(help="… and its end.")] = None,
    tz: Annotated[str, typer.Option(help="IANA time zone the RRULE is read in.")] = "UTC",
    blackout: Annotated[bool, typer.Option(
        help="A blackout (never scan during) instead of a window.")] = False,
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
) -> None:
    """Add a maintenance window or blackout period to a group."""
    from datetime import datetime

    from patchpilot.assets.groups import group_id_named
    from patchpilot.scans.groups import add_window
    from patchpilot.scans.schedules import ScheduleError, parse_duration

    try:
        moments = []
        for name, text in (("--start", start), ("--end", end)):
            try:
                moment = datetime.fromisoformat(text) if text else None
            except ValueError as exc:
                raise ScheduleError(f"{name}: {text!r} is not an ISO 8601 time") from exc
            if moment is not None and moment.tzinfo is None:
                raise ScheduleError(f"{name}: give a UTC offset (…Z or …+09:00)")
            moments.append(moment)
        engine = _engine()
        with engine.begin() as conn:
            stored = add_window(conn, _cli_actor(), group_id_named(conn, group),
                                kind="blackout" if blackout else "window", rrule=rrule,
                                duration=parse_duration(duration) if duration else None,
                                starts_at=moments[0], ends_at=moments[1], timezone=tz,
                                description=description)
    except PatchPilotError as exc:
        _fail(exc)
        return
    console.print(f"{stored['kind']} {stored['id']} added to group {group}")


@window_app.command("list")
def window_list(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every maintenance window and blackout."""
    from patchpilot.scans.groups import list_windows

    found = _in_db(list_windows)
    if json_:
        _print_json(found)
        return
    table = Table("id", "group", "kind", "when", "time zone", "description")
    for w in found:
        when = (f"{w['rrule']} for {w['duration_minutes']} min" if w["rrule"]
                else f"{w['starts_at']} – {w['ends_at']}")
        table.add_row(str(w["id"]), str(w["group_id"]), w["kind"], when, w["timezone"],
                      w["description"] or "")
    wide.print(table)


def _sweep_counts(initial: dict[str, int]) -> str:
    return (f"[bold red]{initial['affected']:,} affected[/] · "
            f"[green]{initial['not_affected']:,} not affected[/] · "
            f"[yellow]{initial['unknown']:,} unknown[/]")


def _sweep_status(status: dict[str, int]) -> str:
    return " · ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in status.items() if v)


@app.command()
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
        _fail(PatchPilotError("--package, --ecosystem and --range go together"))
    if not vuln and not all(explicit):
        _fail(PatchPilotError("name a vulnerability (patchpilot sweep CVE-2024-3094) or "
                              "give --ecosystem, --package and --range"))
    try:
        engine = _engine()
        started = start_sweep(engine, SweepQuery(vuln, ecosystem, package, range_),
                              created_by=f"cli:{getpass.getuser()}",
                              deadline_minutes=deadline)
    except PatchPilotError as exc:
        _fail(exc)
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


assets_app = typer.Typer(help="Asset context from the CMDB: criticality, exposure, owners, "
                              "services, sites.", no_args_is_help=True)
app.add_typer(assets_app, name="assets")


def _print_apply(result, json_: bool) -> None:  # type: ignore[no-untyped-def]
    if json_:
        _print_json(result.to_dict())
        return
    table = Table("row", "result", "asset", "matched by / reason", "keys")
    for m in (*result.updated, *result.created):
        table.add_row(m.record.where, "created" if m.key == "created" else "updated",
                      str(m.asset_id), m.key + ("" if m.changed else " (unchanged)"),
                      m.record.identity())
    for a in result.ambiguous:
        table.add_row(a.record.where, "[yellow]ambiguous[/]",
                      ", ".join(map(str, a.asset_ids)), a.reason, a.record.identity())
    for r in result.unmatched:
        table.add_row(r.where, "[red]unmatched[/]", "-", "no asset has these keys",
                      r.identity())
    wide.print(table)
    console.print(f"{len(result.updated)} updated ({result.changed} changed), "
                  f"{len(result.created)} created, {len(result.unmatched)} unmatched, "
                  f"{len(result.ambiguous)} ambiguous; {result.defaulted} unknown assets "
                  "given the default criticality")


@assets_app.command("import")
def assets_import(
    file: Annotated[Path, typer.Argument(help="CMDB export: .csv, .json, .yaml (columns in "
                                              "docs/cmdb.md).")],
    create_missing: Annotated[bool, typer.Option(
        "--create-missing", help="Create placeholder assets for rows no asset matches.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Import criticality, exposure, owners and services; lists unmatched rows."""
    from patchpilot.assets.cmdb import parse_file
    from patchpilot.assets.context import apply_records

    try:
        records = parse_file(file)
        result = apply_records(_engine(), records, source="cmdb-import", actor=_cli_actor(),
                               create_missing=create_missing, label=file.name)
    except PatchPilotError as exc:
        _fail(exc, "nothing was stored; fix the rows above and run the import again")
        return
    _print_apply(result, json_)


@assets_app.command("unknown")
def assets_unknown(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Assets the scans found but the CMDB does not describe."""
    from patchpilot.assets.context import unknown_assets

    found = _in_db(unknown_assets)
    if json_:
        _print_json(found)
        return
    table = Table("id", "name", "fqdn", "ip addresses", "criticality", "last seen (UTC)")
    for a in found:
        table.add_row(str(a["id"]), a["name"], a["fqdn"] or "-", ", ".join(a["ip_addresses"]),
                      f"{a['criticality']} (default)" if a["defaulted"] else "-",
                      a["last_seen"] or "-")
    wide.print(table)
    console.print(f"{len(found)} unknown assets")


@assets_app.command("netbox-sync")
def assets_netbox_sync(
    url: Annotated[str, typer.Option(help="NetBox's base URL, e.g. https://netbox.example.")],
    token_env: Annotated[str, typer.Option(
        help="Environment variable holding the API token (never on the command line).")
    ] = "NETBOX_TOKEN",
    create_missing: Annotated[bool, typer.Option(
        "--create-missing", help="Create placeholder assets for devices no asset matches.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Sync asset context from NetBox devices and virtual machines (custom fields)."""
    import os

    from patchpilot.assets.netbox import sync

    token = os.environ.get(token_env)
    if not token:
        _fail(PatchPilotError(f"environment variable {token_env} is not set"),
              "export the NetBox API token in it, or name another with --token-env")
        return
    try:
        done = sync(_engine(), url, token, actor=_cli_actor(), create_missing=create_missing)
    except PatchPilotError as exc:
        _fail(exc)
        return
    if not json_:
        console.print(f"NetBox {done.netbox_version or '?'}: {done.devices} devices, "
                      f"{done.virtual_machines} virtual machines")
    _print_apply(done.result, json_)


priority_app = typer.Typer(help="Priority P1-P4: the matrix (or SSVC) and its reasons.",
                           no_args_is_help=True)
app.add_typer(priority_app, name="priority")


class PlanFormat(StrEnum):
    """Formats of ``patchpilot plan``."""

    table = "table"
    json = "json"
    csv = "csv"
    ansible = "ansible"


@app.command()
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

    with _engine().connect() as conn:
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
        table.add_row(str(rank), item.summary, item.command or "",
                      "yes" if item.reboot else "no", ", ".join(windows[:2]))
    wide.print(table)
    for u in built.unfixed:
        wide.print(f"no fix yet: {u.package} ({u.ecosystem}) {len(u.vulns)} vulnerabilities "
                   f"on {len(u.hosts)} hosts" + (f"; workaround: {u.workaround}"
                                                 if u.workaround else ""))


@priority_app.command("show")
def priority_show() -> None:
    """Print the priority configuration in force (YAML)."""
    from patchpilot.scoring.apply import active_config

    with _engine().connect() as conn:
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
        _fail(exc)
        return
    started = time.perf_counter()
    with _engine().begin() as conn:
        changed = (save_config(conn, loaded, _cli_actor()) if loaded
                   else reprioritise(conn))
    console.print(f"{changed} findings re-prioritised in {time.perf_counter() - started:.1f} s")


@app.command()
def sla(
    by: Annotated[str, typer.Option(help="group, service or priority.")] = "priority",
    group: Annotated[str | None, typer.Option(help="Only this asset group.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """SLA compliance and mean time to remediate, per group, service or priority."""
    from patchpilot.scoring.sla import sla_report

    try:
        with _engine().connect() as conn:
            rows = sla_report(conn, by, group=group)
    except ValueError as exc:
        _fail(exc)
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


group_app = typer.Typer(help="Asset groups (a plant, a site, a team's servers).",
                        no_args_is_help=True)
ssh_target_app = typer.Typer(help="Hosts without an agent, scanned over SSH by the workers.",
                             no_args_is_help=True)
app.add_typer(group_app, name="group")
app.add_typer(ssh_target_app, name="ssh-target")


@group_app.command("create")
def group_create(
    name: Annotated[str, typer.Argument(help="The group's name.")],
    description: Annotated[str | None, typer.Option(help="What the group is.")] = None,
    max_concurrent: Annotated[int, typer.Option(
        help="At most this many scans of the group's hosts at once.")] = 5,
) -> None:
    """Create an asset group (schedules and windows belong to groups)."""
    from patchpilot.assets.groups import create_group

    try:
        with _engine().begin() as conn:
            group_id = create_group(conn, _cli_actor(), name, description=description,
                                    max_concurrent_scans=max_concurrent)
    except (PatchPilotError, ValueError) as exc:
        _fail(exc)
        return
    console.print(f"group {group_id}: {name}")


@ssh_target_app.command("add")
def ssh_target_add(
    target: Annotated[str, typer.Argument(help="user@host[:port]")],
    group: Annotated[str | None, typer.Option(help="Put it in this asset group.")] = None,
    name: Annotated[str | None, typer.Option(help="Its name until the first scan.")] = None,
) -> None:
    """Add a host the workers scan over SSH (keys: PATCHPILOT_SSH_IDENTITY and
    PATCHPILOT_SSH_KNOWN_HOSTS in the worker's environment)."""
    from patchpilot.assets.groups import group_id_named
    from patchpilot.scans.groups import add_ssh_target

    try:
        with _engine().begin() as conn:
            group_id = group_id_named(conn, group) if group else None
            asset_id = add_ssh_target(conn, _cli_actor(), target, group_id=group_id,
                                      name=name)
    except (PatchPilotError, ValueError) as exc:
        _fail(exc)
        return
    console.print(f"asset {asset_id}: SSH target {target}"
                  + (f" in group {group}" if group else ""))


report_app = typer.Typer(help="Reports: executive (one page for management) and technical "
                              "(per group or service); PDF, HTML, CSV, XLSX; en or ja.",
                         no_args_is_help=True)
report_schedule_app = typer.Typer(help="Reports generated on a schedule and mailed.",
                                  no_args_is_help=True)
app.add_typer(report_app, name="report")
report_app.add_typer(report_schedule_app, name="schedule")


class ReportKind(StrEnum):
    """The reports of ``patchpilot report``."""

    executive = "executive"
    technical = "technical"


class ReportFormat(StrEnum):
    """Formats of ``patchpilot report``."""

    pdf = "pdf"
    html = "html"
    csv = "csv"
    xlsx = "xlsx"


class ReportLang(StrEnum):
    """Report languages."""

    en = "en"
    ja = "ja"


def _report_scope(group: str | None, service: str | None):  # type: ignore[no-untyped-def]
    from patchpilot.assets.groups import Scope

    if group and service:
        _fail(PatchPilotError("give --group or --service, not both"))
    return Scope(group=group, service=service)


def _write_report(kind: ReportKind, group: str | None, service: str | None,
                  fmt: ReportFormat, lang: ReportLang, output: Path | None) -> None:
    from patchpilot.reports.generate import generate

    scope = _report_scope(group, service)
    try:
        with _engine().connect() as conn:
            report = generate(conn, kind.value, fmt.value, lang.value, scope)
    except PatchPilotError as exc:
        _fail(exc)
        return
    target = output or Path(report.filename)
    target.write_bytes(report.content)
    console.print(f"wrote {target} ({len(report.content):,} bytes)")


_GROUP_OPT = typer.Option(help="Only the assets of this asset group.")
_SERVICE_OPT = typer.Option(help="Only the assets of this business service.")
_FORMAT_OPT = typer.Option("--format", help="pdf, html, csv or xlsx.")
_LANG_OPT = typer.Option("--lang", help="Report language.")
_OUT_OPT = typer.Option("-o", "--output", help="File to write (default: a dated name).")


@report_app.command("executive")
def report_executive(
    group: Annotated[str | None, _GROUP_OPT] = None,
    service: Annotated[str | None, _SERVICE_OPT] = None,
    fmt: Annotated[ReportFormat, _FORMAT_OPT] = ReportFormat.pdf,
    lang: Annotated[ReportLang, _LANG_OPT] = ReportLang.en,
    output: Annotated[Path | None, _OUT_OPT] = None,
) -> None:
    """The one-page risk posture for management (csv/xlsx: the assets)."""
    _write_report(ReportKind.executive, group, service, fmt, lang, output)


@report_app.command("technical")
def report_technical(
    group: Annotated[str | None, _GROUP_OPT] = None,
    service: Annotated[str | None, _SERVICE_OPT] = None,
    fmt: Annotated[ReportFormat, _FORMAT_OPT] = ReportFormat.pdf,
    lang: Annotated[ReportLang, _LANG_OPT] = ReportLang.en,
    output: Annotated[Path | None, _OUT_OPT] = None,
) -> None:
    """Every open finding with its eight report fields (csv/xlsx: the findings)."""
    _write_report(ReportKind.technical, group, service, fmt, lang, output)


@report_app.command("send-now")
def report_send_now(
    kind: Annotated[ReportKind, typer.Option(help="executive or technical.")],
    to: Annotated[list[str], typer.Option(help="A recipient (repeat for more).")],
    group: Annotated[str | None, _GROUP_OPT] = None,
    service: Annotated[str | None, _SERVICE_OPT] = None,
    fmt: Annotated[ReportFormat, _FORMAT_OPT] = ReportFormat.pdf,
    lang: Annotated[ReportLang, _LANG_OPT] = ReportLang.en,
) -> None:
    """Generate a report and mail it now (SMTP from PATCHPILOT_SMTP_* variables)."""
    from patchpilot.reports.mail import send_report

    scope = _report_scope(group, service)
    try:
        with _engine().connect() as conn:
            report = send_report(conn, kind=kind.value, fmt=fmt.value, lang=lang.value,
                                 scope=scope, recipients=to)
    except PatchPilotError as exc:
        _fail(exc)
        return
    console.print(f"mailed {report.filename} to {', '.join(to)}")


@report_schedule_app.command("add")
def report_schedule_add(
    cron: Annotated[str, typer.Option(help='A cron expression, e.g. "0 8 1 * *".')],
    to: Annotated[list[str], typer.Option(help="A recipient (repeat for more).")],
    kind: Annotated[ReportKind, typer.Option(help="executive or technical.")
                    ] = ReportKind.executive,
    tz: Annotated[str, typer.Option(help="IANA time zone the cron is read in.")] = "UTC",
    group: Annotated[str | None, _GROUP_OPT] = None,
    service: Annotated[str | None, _SERVICE_OPT] = None,
    fmt: Annotated[ReportFormat, _FORMAT_OPT] = ReportFormat.pdf,
    lang: Annotated[ReportLang, _LANG_OPT] = ReportLang.en,
) -> None:
    """Mail a report on a schedule; prints it with its first run."""
    from patchpilot.reports.mail import add_schedule

    stored = _in_db(lambda conn: add_schedule(
        conn, _cli_actor(), kind=kind.value, fmt=fmt.value, lang=lang.value, cron=cron,
        timezone=tz, recipients=to, group=group, service=service), write=True)
    console.print(f"report schedule {stored['id']}: {stored['kind']} ({stored['format']}, "
                  f"{stored['lang']}) {stored['cron']!r} ({stored['timezone']}) to "
                  f"{', '.join(stored['recipients'])}; next run {stored['next_run_at']}")


@report_schedule_app.command("list")
def report_schedule_list(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every report schedule with its next run."""
    from patchpilot.reports.mail import list_schedules

    found = _in_db(list_schedules)
    if json_:
        _print_json(found)
        return
    table = Table("id", "kind", "format", "lang", "scope", "cron", "time zone", "to",
                  "next run (UTC)")
    for s in found:
        table.add_row(str(s["id"]), s["kind"], s["format"], s["lang"],
                      s["group"] or s["service"] or "estate", s["cron"], s["timezone"],
                      ", ".join(s["recipients"]), s["next_run_at"] or "-")
    wide.print(table)


@report_schedule_app.command("remove")
def report_schedule_remove(
    schedule_id: Annotated[int, typer.Argument(help="The report schedule's id.")],
) -> None:
    """Remove a report schedule."""
    from patchpilot.reports.mail import delete_schedule

    _in_db(lambda conn: delete_schedule(conn, _cli_actor(), schedule_id), write=True)
    console.print(f"report schedule {schedule_id} removed")


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except PatchPilotError as exc:  # anything a stage raised that a command did not catch
        err.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
