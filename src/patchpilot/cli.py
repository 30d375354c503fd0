"""The ``patchpilot`` command line.  Thin: parse, call one function of a stage, print."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

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


def _fail(exc: Exception, hint: str | None = None) -> None:
    err.print(f"[bold red]error:[/] {exc}")
    if hint:
        err.print(hint)
    raise typer.Exit(2)


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
) -> None:
    """Load or refresh the knowledge base, incrementally."""
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
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Inventory this machine (OS and Python packages) and print its findings."""
    from patchpilot.inventory.transports.local import collect_local

    try:
        inventory = collect_local(python_paths=list(path or []))
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


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, analyst or viewer.")] = "viewer",
    user: Annotated[str, typer.Option(help="The user the token belongs to (created if new).")
                    ] = "admin",
    name: Annotated[str, typer.Option(help="A label for the token.")] = "cli",
    ttl_days: Annotated[int | None, typer.Option(help="Expire after this many days.")] = None,
) -> None:
    """Create an API token against the configured database and print it (once)."""
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
        engine = _engine()
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
        engine = _engine()
    except PatchPilotError as exc:
        _fail(exc)
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
        engine = _engine()
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


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except PatchPilotError as exc:  # anything a stage raised that a command did not catch
        err.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
