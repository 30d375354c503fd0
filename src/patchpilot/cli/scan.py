"""``patchpilot scan``: scan a host, a file or an Inventory and print its findings."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from patchpilot.cli.common import err, fail, open_engine, wide
from patchpilot.config import named_variable
from patchpilot.errors import InventoryFormatError, PatchPilotError

if TYPE_CHECKING:
    from patchpilot.findings.scan import ScanResult
    from patchpilot.inventory.model import Inventory

scan_app = typer.Typer(help="Scan a host or a file and print its findings.",
                       no_args_is_help=True)


class OutputFormat(StrEnum):
    """Formats of ``patchpilot scan``."""

    table = "table"
    json = "json"
    csv = "csv"
    sarif = "sarif"


def _emit(result, fmt: OutputFormat, output: Path | None) -> None:  # type: ignore[no-untyped-def]
    from patchpilot.reports.scan import FORMATS
    from patchpilot.reports.scan.table_format import (
        coverage_lines,
        set_aside_lines,
        show,
        summary_line,
        table,
        warning_lines,
    )

    if fmt is OutputFormat.table and output is None:
        show(wide, table(result))
        wide.print(summary_line(result))
        for line in coverage_lines(result):
            wide.print(f"[yellow]{escape(line)}[/]")
        for line in set_aside_lines(result):
            wide.print(line, markup=False, highlight=False, soft_wrap=True)
        for u in result.undetermined[:20]:
            wide.print(f"[yellow]undetermined[/] {u.package.name} {u.package.version}: "
                      f"{u.reason}")
        for line in result.windows_warnings():
            wide.print(f"[yellow]{escape(line)}[/]", overflow="fold")
        for line in warning_lines(result):
            wide.print(line, overflow="fold")
        return
    text = FORMATS[fmt.value](result)
    for line in result.windows_warnings():
        err.print(f"[yellow]{escape(line)}[/]")
    if result.inventory.warnings and fmt is not OutputFormat.table:
        where = {"json": '"warnings"', "sarif": "the run's toolExecutionNotifications"}.get(
            fmt.value, "--format json or table")
        err.print(f"[yellow]{len(result.inventory.warnings)} inventory warning(s)[/]: "
                  f"see {where}")
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {len(result.findings)} findings to {output}")


def scan_and_emit(inventory, fmt: OutputFormat, output: Path | None,  # type: ignore[no-untyped-def]
                   fail_on: str | None) -> None:
    from patchpilot.findings.scan import scan_inventory
    from patchpilot.knowledge.cvss import SEVERITY_ORDER

    try:
        engine = open_engine()
        result = scan_inventory(engine, inventory)
    except PatchPilotError as exc:
        fail(exc)
        return
    from patchpilot.knowledge.status import knowledge_status

    if not result.findings and knowledge_status(engine).advisories == 0 \
            and result.inventory.windows is None:  # Windows: MSRC's own note says
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
        fail(exc)
        return
    scan_and_emit(inventory, fmt, output, fail_on)


@scan_app.command("file")
def scan_file(
    paths: Annotated[list[Path], typer.Argument(
        metavar="PATH...",
        help="A package database (dpkg status, rpm list, apk installed), a lock file, an "
             "SBOM, an Inventory JSON, a folder to search for lock files and SBOMs, or a "
             "Windows host's saved systeminfo, wmic qfe list, Get-HotFix JSON or update "
             "history (several files of one Windows host are read together).")],
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
    """Scan a saved package list, lock file, SBOM, folder or Windows files and print its
    findings."""
    try:
        inventory = (_read_windows(paths, hostname) if type_ is None else None) or \
            _read_one(paths, distro, type_, hostname)
    except PatchPilotError as exc:
        fail(exc)
        return
    # The Windows facts before the findings: on stdout above the table, else on stderr
    # (stdout is then the document).
    console = wide if fmt is OutputFormat.table and output is None else err
    for line in windows_lines(inventory):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    scan_and_emit(inventory, fmt, output, fail_on)


def _read_one(paths: list[Path], distro: str | None, type_: str | None,
              hostname: str | None) -> Inventory:
    from patchpilot.inventory.transports.file import read_inventory_file

    if len(paths) > 1:
        raise InventoryFormatError(paths[1], "only files saved on one Windows host are read "
                                             "together; scan other files one at a time")
    return read_inventory_file(paths[0], ecosystem=_distro_ecosystem(distro),
                               hostname=hostname, source_type=type_)


def _read_windows(paths: list[Path], hostname: str | None) -> Inventory | None:
    """The Inventory of Windows files (merged when several), or None when the first path
    is no Windows file (a folder, a package list, …)."""
    from patchpilot.inventory.windows.files import is_windows_file, windows_inventory
    from patchpilot.inventory.windows.text import NOT_WINDOWS

    if not paths[0].is_file():
        return None
    files: list[tuple[bytes, str]] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InventoryFormatError(path, f"cannot read: {exc.strerror or exc}") from exc
        if not is_windows_file(data):
            if not files:
                return None
            raise InventoryFormatError(path, f"{NOT_WINDOWS}; only files saved on one "
                                             "Windows host are read together")
        files.append((data, str(path)))
    return windows_inventory(files, hostname)


def windows_lines(inventory: Inventory) -> list[str]:
    """What the Windows facts of ``inventory`` say, for a person: host, product, build,
    KBs (``scan file`` prints them before the findings; its warnings come with those)."""
    win = inventory.windows
    if win is None:
        return []
    host = inventory.asset.hostname or "host not named"
    if win.family is None:
        product = "product unknown (no systeminfo output among the files)"
    else:
        release = f" {win.release}" if win.release else ""
        product = f"{win.product_name or win.family} ({win.family}{release})"
    lines = [f"Windows: {host}: {product}"]
    if win.build is not None:
        version = inventory.os.version_id if inventory.os and inventory.os.version_id else \
            str(win.build)
        ubr = f".{win.ubr}" if win.ubr is not None else " (UBR unknown — from systeminfo)"
        arch = f", {win.architecture}" if win.architecture else ""
        lines.append(f"  build {version}{ubr}{arch}")
    complete = "" if win.kbs_complete else " (the list is cut short: at least these)"
    lines.append(f"  {len(win.kbs)} KBs installed{complete}")
    return lines


def _distro_ecosystem(distro: str | None) -> str | None:
    if not distro:
        return None
    from patchpilot.knowledge.ecosystems import ecosystem_for_os
    from patchpilot.models import OsRelease

    os_id, _, release = distro.lower().partition(":")
    eco = ecosystem_for_os(OsRelease(id=os_id, version_id=release or None))
    if eco is None:
        fail(ValueError(f"unknown distribution {distro!r}"),
              "Use e.g. debian:12, ubuntu:22.04, alpine:3.18, almalinux:9, rocky:9, rhel:9.")
    return eco


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
        fail(exc)
        return
    except PatchPilotError as exc:
        fail(exc)
        return
    scan_and_emit(inventory, fmt, output, fail_on)


SSH_HOSTS_FAILED = 4
"""Exit status of ``scan ssh`` when some hosts could not be scanned (it wins over 3)."""


def _password(password_env: str | None) -> str | None:
    """The password held in the environment variable ``--password-env`` names."""
    if not password_env:
        return None
    password = named_variable(password_env)
    if not password:
        fail(ValueError(f"--password-env: the environment variable {password_env} is "
                         "not set or empty"))
    return password


def _write_documents(documents: list[dict[str, Any]], output: Path | None) -> None:
    """One JSON document per host, to ``output`` or standard output."""
    text = orjson.dumps(documents, option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def _exit_for_hosts(failed: list[tuple[str, str, str | None]], total: int,
                    scans: dict[int, ScanResult], fail_on: str | None) -> None:
    """Name each host not scanned (target, status, error) and exit 4 if any; else exit 3
    when a finding reaches ``--fail-on``."""
    from patchpilot.knowledge.cvss import SEVERITY_ORDER

    for target, status, error in failed:
        err.print(f"[red]{status}[/] {escape(target)}: {escape(error or '')}")
    if failed:
        err.print(f"{len(failed)} of {total} host(s) not scanned.")
        raise typer.Exit(SSH_HOSTS_FAILED)
    if fail_on:
        floor = SEVERITY_ORDER.get(fail_on.capitalize(), 99)
        if any(SEVERITY_ORDER.get(f.severity, -1) >= floor
               for s in scans.values() for f in s.findings):
            raise typer.Exit(3)


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

    if fmt not in (OutputFormat.table, OutputFormat.json):
        fail(ValueError(f"--format {fmt.value}: scan ssh prints a table or JSON "
                         "(one document per host)"))
    password = _password(password_env)
    try:
        hosts = [SshTarget.parse(t, "target") for t in target or []]
        hosts += read_targets_file(targets) if targets else []
        if not hosts:
            fail(ValueError("no target: name user@host[:port] or pass --targets FILE"))
        options = SshOptions(
            identities=tuple(identity or ()), password=password, known_hosts=known_hosts,
            trust_new_hosts=trust_new_hosts, sudo=sudo, command_timeout=command_timeout,
            host_timeout=host_timeout, max_concurrent=max_concurrent, python=python)
        results = scan_hosts_sync(hosts, options)
        engine = open_engine()
        scans = {i: scan_inventory(engine, r.inventory) for i, r in enumerate(results)
                 if r.inventory is not None}
    except PatchPilotError as exc:
        fail(exc)
        return
    from patchpilot.knowledge.status import knowledge_status

    if scans and not any(s.findings for s in scans.values()) \
            and not any(s.inventory.windows for s in scans.values()) \
            and knowledge_status(engine).advisories == 0:
        err.print("[yellow]the knowledge base is empty[/]: run `patchpilot db update` first.")
    if fmt is OutputFormat.json:
        documents = []
        for i, r in enumerate(results):
            ssh = {"target": str(r.target), "status": r.status.value, "error": r.error,
                   "seconds": round(r.seconds, 3)}
            documents.append({"ssh": ssh, **(document(scans[i]) if i in scans else {})})
        _write_documents(documents, output)
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
    _exit_for_hosts([(str(r.target), r.status.value, r.error) for r in results
                     if r.status is not HostStatus.scanned], len(results), scans, fail_on)


@scan_app.command("winrm")
def scan_winrm(
    target: Annotated[list[str] | None, typer.Argument(
        help="Windows hosts to scan: [user@]host[:port] (port 5986, WinRM over HTTPS).",
        show_default=False)] = None,
    targets: Annotated[Path | None, typer.Option(
        "--targets", help="Also scan the targets of this file: one per line, # comments.")
    ] = None,
    auth: Annotated[str, typer.Option(
        "--auth", help="ntlm, kerberos (a ticket from kinit; pip install "
                       "'patchpilot[kerberos]') or basic.")] = "ntlm",
    user: Annotated[str | None, typer.Option(
        "--user", help="User for targets that name none (DOMAIN\\user or user@domain).")
    ] = None,
    password_env: Annotated[str | None, typer.Option(
        "--password-env", help="Log in with the password held in this environment "
                               "variable (never on the command line).")] = None,
    ca_file: Annotated[Path | None, typer.Option(
        "--ca-file", help="PEM file of the CA that signed the hosts' WinRM certificates "
                          "(the certificate is always checked).")] = None,
    command_timeout: Annotated[float, typer.Option(
        "--command-timeout", min=1, help="Seconds the connection and each WinRM request "
                                         "may take.")] = 120.0,
    host_timeout: Annotated[float, typer.Option(
        "--host-timeout", min=1, help="Seconds one host's whole scan may take.")] = 300.0,
    max_concurrent: Annotated[int, typer.Option(
        "--max-concurrent", min=1, help="Hosts scanned at the same time.")] = 10,
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Inventory Windows hosts over WinRM (read-only, agentless) and print each one's
    findings.

    Exit status: 0 when every host was scanned, 3 as with --fail-on, 4 when some hosts
    could not be scanned (unreachable, auth failed, certificate refused, timed out, failed).
    """
    from patchpilot.findings.scan import scan_inventory
    from patchpilot.inventory.transports.ssh import HostStatus
    from patchpilot.inventory.transports.winrm import (
        WinRmOptions,
        WinRmTarget,
        scan_hosts_sync,
    )
    from patchpilot.reports.scan.json_format import document

    if fmt not in (OutputFormat.table, OutputFormat.json):
        fail(ValueError(f"--format {fmt.value}: scan winrm prints a table or JSON "
                         "(one document per host)"))
    password = _password(password_env)
    try:
        hosts = [WinRmTarget.parse(t, "target") for t in target or []]
        if targets:
            try:
                lines = targets.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                fail(exc)
                return
            hosts += [WinRmTarget.parse(line.split("#", 1)[0], f"{targets}:{number}")
                      for number, line in enumerate(lines, start=1)
                      if line.split("#", 1)[0].strip()]
        if not hosts:
            fail(ValueError("no target: name [user@]host[:port] or pass --targets FILE"))
        options = WinRmOptions(auth=auth, user=user, password=password, ca_file=ca_file,
                               command_timeout=command_timeout, host_timeout=host_timeout,
                               max_concurrent=max_concurrent)
        results = scan_hosts_sync(hosts, options)
        scans = {}
        if any(r.inventory is not None for r in results):
            engine = open_engine()
            scans = {i: scan_inventory(engine, r.inventory) for i, r in enumerate(results)
                     if r.inventory is not None}
    except PatchPilotError as exc:
        fail(exc)
        return
    if fmt is OutputFormat.json:
        documents = [{"winrm": {"target": str(r.target), "status": r.status.value,
                                "error": r.error, "seconds": round(r.seconds, 3)},
                      **(document(scans[i]) if i in scans else {})}
                     for i, r in enumerate(results)]
        _write_documents(documents, output)
    else:
        for i, scan in scans.items():
            wide.rule(f"{results[i].target} ({scan.inventory.asset.hostname})")
            _emit(scan, fmt, output)
    out = wide if fmt is OutputFormat.table and output is None else err
    summary = Table(title="WinRM scan", header_style="bold")
    for col in ("Target", "Status", "Hostname", "Windows", "KBs", "Findings", "Seconds"):
        summary.add_column(col, no_wrap=True, justify="right" if col in (
            "KBs", "Findings", "Seconds") else "left")
    for i, r in enumerate(results):
        windows = r.inventory.windows if r.inventory else None
        summary.add_row(
            escape(str(r.target)),
            f"[{'green' if r.status is HostStatus.scanned else 'red'}]{r.status.value}[/]",
            escape((r.inventory.asset.hostname or "") if r.inventory else "-"),
            escape(f"{windows.family} {windows.release or ''} {windows.build}.{windows.ubr}"
                   if windows else "-"),
            f"{len(windows.kbs):,}" if windows else "-",
            f"{len(scans[i].findings):,}" if i in scans else "-", f"{r.seconds:.2f}")
    out.print(summary)
    _exit_for_hosts([(str(r.target), r.status.value, r.error) for r in results
                     if r.status is not HostStatus.scanned], len(results), scans, fail_on)
