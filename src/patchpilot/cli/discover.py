"""``patchpilot discover``: find the live hosts of a network (nmap) and read devices over
SNMP; each host becomes an asset with its services and CPE packages."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from patchpilot.cli.common import err, fail, open_engine, wide
from patchpilot.config import load_settings, named_variable
from patchpilot.errors import InvalidInput, PatchPilotError

DISCOVER_HOSTS_FAILED = 4
"""Exit status when some hosts could not be read over SNMP (as ``scan ssh``)."""


def _secret(name: str | None, env: str | None, what: str) -> str | None:
    """A credential from the secrets store (by name) or an environment variable (by
    name); never from the command line itself."""
    if name:
        from patchpilot.automation.secrets import key_of, read_secret

        engine = open_engine()
        with engine.connect() as conn:
            return read_secret(conn, name, key_of(load_settings()))
    if env:
        value = named_variable(env)
        if not value:
            raise InvalidInput(f"{what}: the environment variable {env} is not set or empty")
        return value
    return None


def discover(
    targets: Annotated[list[str] | None, typer.Argument(
        metavar="CIDR|HOST...", help="Addresses, CIDR ranges or host names to probe; each "
        "must lie inside PATCHPILOT_DISCOVERY_SCOPE.", show_default=False)] = None,
    ports: Annotated[str | None, typer.Option(
        "--ports", "-p", help="Ports to probe, nmap syntax (22,80,443 or 1-1024 or "
                              "T:22,U:161). Default: nmap's 1,000 most common.")] = None,
    rate: Annotated[int | None, typer.Option(
        "--rate", min=1, help="Packets a second at most (nmap --max-rate). Default: "
                              "PATCHPILOT_DISCOVERY_RATE (200).")] = None,
    os_guess: Annotated[bool, typer.Option(
        "--os", help="Also let nmap guess the OS (-O; root only). A guess is kept as seen, "
                     "never matched.")] = False,
    resolve: Annotated[bool, typer.Option(
        "--resolve", help="Let nmap look up live hosts' PTR names (default: none, -n).")
    ] = False,
    from_xml: Annotated[Path | None, typer.Option(
        "--from-xml", help="Import this saved nmap XML file (nmap -oX) instead of running "
                           "nmap.")] = None,
    snmp: Annotated[bool, typer.Option(
        "--snmp", help="Also read every live host over SNMP (vendor, model, serial, "
                       "firmware).")] = False,
    snmp_only: Annotated[bool, typer.Option(
        "--snmp-only", help="Read the targets over SNMP only, without nmap.")] = False,
    snmp_port: Annotated[int, typer.Option("--snmp-port", min=1, max=65535)] = 161,
    snmp_timeout: Annotated[float, typer.Option(
        "--snmp-timeout", min=0.1, help="Seconds each SNMP request may take.")] = 2.0,
    community_secret: Annotated[str | None, typer.Option(
        "--community-secret", help="SNMP v2c: the community is this secret of the secrets "
                                   "store (patchpilot secret set). Default: "
                                   "PATCHPILOT_SNMP_COMMUNITY.")] = None,
    community_env: Annotated[str | None, typer.Option(
        "--community-env", help="SNMP v2c: the community is in this environment "
                                "variable.")] = None,
    snmp_user: Annotated[str | None, typer.Option(
        "--snmp-user", help="SNMPv3: read as this USM user (instead of a community).")
    ] = None,
    auth_secret: Annotated[str | None, typer.Option(
        "--auth-secret", help="SNMPv3: the auth key is this secret.")] = None,
    auth_env: Annotated[str | None, typer.Option(
        "--auth-env", help="SNMPv3: the auth key is in this environment variable.")] = None,
    auth_protocol: Annotated[str, typer.Option(
        "--auth-protocol", help="SNMPv3: md5, sha, sha256 or sha512.")] = "sha",
    priv_secret: Annotated[str | None, typer.Option(
        "--priv-secret", help="SNMPv3: the privacy key is this secret.")] = None,
    priv_env: Annotated[str | None, typer.Option(
        "--priv-env", help="SNMPv3: the privacy key is in this environment variable.")
    ] = None,
    priv_protocol: Annotated[str, typer.Option(
        "--priv-protocol", help="SNMPv3: des, aes or aes256.")] = "aes",
    store: Annotated[bool, typer.Option(
        "--store/--no-store", help="Store each host as an asset (default) or only print.")
    ] = True,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print the hosts' inventories as a JSON list on stdout.")] = False,
) -> None:
    """Discover hosts (nmap service and version detection) and devices (SNMP v2c/v3).

    Only targets inside PATCHPILOT_DISCOVERY_SCOPE are probed, at most --rate packets a
    second. Each live host becomes an asset: its address, MAC vendor, open services and
    their CPEs (cpe:/a:openbsd:openssh:9.2p1 -> CPE package openbsd:openssh 9.2p1); with
    --snmp its vendor, model, serial and firmware (a FortiGate at FortiOS 7.2.4 ->
    fortinet:fortios 7.2.4). Credentials come from the secrets store or a named
    environment variable and are never printed. Exit status 4 when some hosts could not
    be read over SNMP.
    """
    from patchpilot.discovery.nmap import (
        NmapOptions,
        host_inventory,
        parse_nmap_xml,
        run_nmap,
    )
    from patchpilot.discovery.scope import check_targets
    from patchpilot.discovery.snmp import SnmpCredentials, SnmpOptions, read_devices

    settings = load_settings()
    started = time.perf_counter()
    nmap_seconds: float | None = None
    try:
        if from_xml is not None and (targets or snmp_only):
            raise InvalidInput("--from-xml imports a file: name no targets (or drop it)")
        if from_xml is None and not targets:
            raise InvalidInput("no target: name CIDR ranges or hosts, or --from-xml FILE")
        checked = check_targets(targets or [], settings.discovery_scope) if targets else []
        inventories = []
        if from_xml is not None:
            try:
                data = from_xml.read_bytes()
            except OSError as exc:
                raise InvalidInput(f"{from_xml}: cannot read: {exc.strerror or exc}") from exc
            scan = parse_nmap_xml(data, str(from_xml))
            inventories = [host_inventory(h) for h in scan.hosts]
            nmap_seconds = scan.elapsed
        elif not snmp_only:
            run = run_nmap([t.probe for t in checked], NmapOptions(
                rate=rate or settings.discovery_rate, ports=ports, os_guess=os_guess,
                resolve_names=resolve))
            scan = parse_nmap_xml(run.xml, "nmap output")
            inventories = [host_inventory(h) for h in scan.hosts]
            nmap_seconds = run.seconds
        snmp_results = []
        if snmp or snmp_only:
            credentials = SnmpCredentials(
                community=_secret(community_secret, community_env, "--community-env")
                or settings.snmp_community,
                user=snmp_user, auth_key=_secret(auth_secret, auth_env, "--auth-env"),
                priv_key=_secret(priv_secret, priv_env, "--priv-env"),
                auth_protocol=auth_protocol, priv_protocol=priv_protocol)
            if snmp_only:
                addresses = [str(a) for t in checked for a in (
                    [t.network.network_address] if t.network.num_addresses == 1
                    else t.network.hosts())]
                bases = {}
            else:
                # The hosts of an imported file are probed too: check them against the scope.
                bases = {inv.asset.ip_addresses[0]: inv for inv in inventories}
                check_targets(list(bases), settings.discovery_scope)
                addresses = list(bases)
            snmp_results = read_devices(addresses, credentials, SnmpOptions(
                port=snmp_port, timeout=snmp_timeout, bases=bases))
            read = {r.address: r.inventory for r in snmp_results if r.inventory is not None}
            if snmp_only:
                inventories = list(read.values())
            else:
                inventories = [read.get(inv.asset.ip_addresses[0], inv) for inv in inventories]
        stored = []
        if store and inventories:
            from patchpilot.scans.discovery import store_discovered

            stored = store_discovered(open_engine(), inventories)
    except PatchPilotError as exc:
        fail(exc)
        return
    total = time.perf_counter() - started
    if json_out:
        sys.stdout.write(orjson.dumps([orjson.loads(i.to_json()) for i in inventories],
                                      option=orjson.OPT_INDENT_2).decode() + "\n")
    out = err if json_out else wide
    table = Table(title="Discovery", header_style="bold")
    for column in ("Host", "Device", "Services", "CPE packages", "Asset"):
        table.add_column(column)
    where = {s.address: s for s in stored}
    for inv in inventories:
        address = inv.asset.ip_addresses[0] if inv.asset.ip_addresses else "?"
        device = inv.device
        what = " ".join(x for x in (device.vendor, device.model, device.os_name,
                                    device.firmware) if x) if device else ""
        services = ", ".join(f"{s.port}/{s.protocol} {s.product or s.name or ''}".strip()
                             for s in (device.services if device else []))
        host = where.get(address)
        asset = "-" if host is None else (f"kept: {host.kept_because}" if host.kept_because
                                          else str(host.asset_id))
        table.add_row(escape(address + (f" ({inv.asset.hostname})" if inv.asset.hostname
                                        else "")),
                      escape(what or "unidentified"), escape(services),
                      escape(", ".join(f"{p.name} {p.version}" for p in inv.packages)),
                      escape(asset))
    out.print(table)
    timing = f"nmap {nmap_seconds:.2f} s, " if nmap_seconds is not None else ""
    out.print(f"{len(inventories)} host(s); {timing}total {total:.2f} s")
    failed = [r for r in snmp_results if r.error]
    for r in failed:
        err.print(f"[red]SNMP[/] {escape(r.address)}: {escape(r.error or '')}")
    if failed:
        raise typer.Exit(DISCOVER_HOSTS_FAILED)
