"""nmap: live hosts, open ports and service versions, read from nmap's XML output.

Running nmap (:func:`run_nmap`) is kept apart from reading its XML (:func:`parse_nmap_xml`,
bytes in) and from turning a host into an Inventory (:func:`host_inventory`), so a saved
``nmap -oX`` file is imported by the same code a live run uses.

The XML is read with ``defusedxml``: nmap's own output has a bare ``<!DOCTYPE nmaprun>``,
but a file that declares entities (the "billion laughs") or refers to external ones is
refused with an error naming the file -- never expanded.

**Guess is not fact.**  A service's application CPE that nmap read from a banner
(``cpe:/a:openbsd:openssh:9.2p1``) becomes a ``CPE`` package (``openbsd:openssh`` at
``9.2p1``) the matcher judges; nmap's OS guess (``cpe:/o:linux:linux_kernel:5``), and
OS/hardware CPEs in general, stay in ``device.seen`` and the service's ``cpes``: a guess
from TCP/IP fingerprints would otherwise raise findings on a kernel the host may not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import defusedxml
from defusedxml.ElementTree import fromstring

from patchpilot.errors import InvalidInput, InventoryFormatError, PatchPilotError
from patchpilot.inventory.model import (
    AssetIdentity,
    Collector,
    DeviceInfo,
    DeviceService,
    Inventory,
    PackageEntry,
)
from patchpilot.knowledge.cpe_names import CPE, cpe_name

NMAP = "nmap"
COLLECTOR = "nmap"
# nmap's -p syntax: ports, ranges, and T:/U:/S: protocol prefixes -- nothing else, so a
# value can never smuggle another option in.
_PORTS = re.compile(r"^[TUS]?:?[0-9][0-9,\-TUS:]*$")
# A host nmap cannot finish in this time is given up (and reported), never left running.
HOST_TIMEOUT = "15m"
# Service CPEs of these parts are facts read from a banner; "o" (OS) and "h" (hardware)
# come from hints (nmap's ostype, a device type) and stay what was seen.
_PACKAGE_PARTS = ("a",)


class NmapError(PatchPilotError):
    """nmap could not be run, or ended with an error."""


@dataclass(frozen=True, slots=True)
class NmapOptions:
    """How nmap is run.  ``rate``: packets a second at most (``--max-rate``); ``ports``:
    nmap's ``-p`` list (None: nmap's 1,000 most common); ``os_guess``: ``-O`` (root only);
    ``resolve_names``: let nmap look up each live host's PTR name (off: ``-n``, no DNS
    traffic, and an asset is known by its address)."""

    rate: int
    ports: str | None = None
    os_guess: bool = False
    resolve_names: bool = False
    nmap: str = NMAP


def nmap_command(targets: Sequence[str], options: NmapOptions) -> list[str]:
    """The nmap command line for ``targets`` (already checked against the scope).

    ``-sV`` (service and version detection) and XML on stdout always; ``-O`` only when
    asked, and only as root (it needs raw packets).
    """
    if options.rate < 1:
        raise InvalidInput("--rate: at least 1 packet a second", field="rate")
    command = [options.nmap, "-oX", "-", "-sV", "--max-rate", str(options.rate),
               "--host-timeout", HOST_TIMEOUT]
    if options.ports:
        if not _PORTS.match(options.ports):
            raise InvalidInput(f"--ports {options.ports!r}: use nmap's port list syntax, "
                               "e.g. 22,80,443 or 1-1024 or T:22,U:161", field="ports")
        command += ["-p", options.ports]
    if options.os_guess:
        if os.geteuid() != 0:
            raise InvalidInput("--os: nmap's OS guess (-O) sends raw packets and needs root",
                               field="os")
        command.append("-O")
    if not options.resolve_names:
        command.append("-n")
    return [*command, "--", *targets]


@dataclass(frozen=True, slots=True)
class NmapRun:
    """nmap's XML output and the wall time the nmap process took."""

    xml: bytes
    seconds: float
    command: tuple[str, ...]


def run_nmap(targets: Sequence[str], options: NmapOptions) -> NmapRun:
    """Run nmap over ``targets`` and return its XML; NmapError when it is missing or
    fails (its own message quoted)."""
    command = nmap_command(targets, options)
    if shutil.which(options.nmap) is None:
        raise NmapError(f"{options.nmap}: not installed (Debian: apt-get install nmap)")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL,
                          check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise NmapError(f"nmap failed (exit {done.returncode}): "
                        f"{said[-1] if said else 'no message'}")
    return NmapRun(done.stdout, seconds, tuple(command))


@dataclass(frozen=True, slots=True)
class NmapHost:
    """One live host of an nmap run."""

    addresses: tuple[str, ...]  # IPv4 / IPv6
    mac: str | None = None
    mac_vendor: str | None = None
    hostnames: tuple[str, ...] = ()
    services: tuple[DeviceService, ...] = ()
    os_guess: str | None = None  # nmap's best osmatch, with its accuracy
    os_cpes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NmapScan:
    """What one nmap XML document says: its live hosts and nmap's own elapsed time."""

    hosts: tuple[NmapHost, ...]
    elapsed: float | None = None  # runstats/finished/@elapsed, seconds
    args: str | None = None  # the command line nmap recorded
    down: int = 0  # hosts nmap found down
    warnings: tuple[str, ...] = field(default=())


def parse_nmap_xml(data: bytes, source: str) -> NmapScan:
    """The live hosts of an nmap XML document (``nmap -oX``).

    Raises InventoryFormatError naming ``source`` for malformed XML, a document that
    declares entities or refers to external ones (never expanded), or one that is not
    nmap's.
    """
    try:
        root = fromstring(data, forbid_dtd=False, forbid_entities=True,
                          forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise InventoryFormatError(source, f"refused: the XML {exc} (entities are never "
                                           "expanded; nmap's own output declares none)"
                                   ) from exc
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise InventoryFormatError(source, f"not well-formed XML: {exc}", line=line) from exc
    if root.tag != "nmaprun":
        raise InventoryFormatError(source, f"not an nmap XML file (its root is <{root.tag}>, "
                                           "nmap -oX writes <nmaprun>)")
    hosts: list[NmapHost] = []
    down = 0
    for node in root.iter("host"):
        status = node.find("status")
        if status is not None and status.get("state") != "up":
            down += 1
            continue
        host = _host(node)
        if host.addresses:
            hosts.append(host)
    finished = root.find("runstats/finished")
    elapsed = None
    if finished is not None and finished.get("elapsed"):
        try:
            elapsed = float(finished.get("elapsed", ""))
        except ValueError:
            elapsed = None
    counts = root.find("runstats/hosts")
    if counts is not None and counts.get("down", "").isdigit():
        down = int(counts.get("down", "0"))
    return NmapScan(tuple(hosts), elapsed, root.get("args"), down)


def _host(node: ET.Element) -> NmapHost:
    addresses: list[str] = []
    mac = mac_vendor = None
    for address in node.findall("address"):
        kind = address.get("addrtype")
        if kind in ("ipv4", "ipv6") and address.get("addr"):
            addresses.append(address.get("addr", ""))
        elif kind == "mac":
            mac, mac_vendor = address.get("addr"), address.get("vendor")
    hostnames = tuple(h.get("name", "") for h in node.findall("hostnames/hostname")
                      if h.get("name"))
    services: list[DeviceService] = []
    for port in node.findall("ports/port"):
        state = port.find("state")
        if state is None or state.get("state") != "open":
            continue  # closed and filtered ports say nothing about what runs
        service = port.find("service")
        services.append(DeviceService(
            port=int(port.get("portid", "0")), protocol=port.get("protocol", "tcp"),
            name=service.get("name") if service is not None else None,
            product=service.get("product") if service is not None else None,
            version=_service_version(service),
            cpes=[c.text.strip() for c in (service.findall("cpe") if service is not None
                                           else []) if c.text and c.text.strip()]))
    os_guess = None
    os_cpes: tuple[str, ...] = ()
    best = node.find("os/osmatch")  # nmap lists the matches best first
    if best is not None and best.get("name"):
        os_guess = f"{best.get('name')} (accuracy {best.get('accuracy', '?')}%)"
        os_cpes = tuple(dict.fromkeys(c.text.strip() for c in best.iter("cpe")
                                      if c.text and c.text.strip()))
    return NmapHost(tuple(addresses), mac, mac_vendor, hostnames, tuple(services), os_guess,
                    os_cpes)


def _service_version(service: ET.Element | None) -> str | None:
    """The version as nmap shows it: version and extra info ("9.2p1 Debian 2+deb12u3")."""
    if service is None:
        return None
    parts = [service.get("version"), service.get("extrainfo")]
    text = " ".join(p for p in parts if p)
    return text or None


def service_packages(services: Sequence[DeviceService]) -> list[PackageEntry]:
    """The ``CPE`` packages of the services' application CPEs that carry a version, one per
    (name, version): ``cpe:/a:openbsd:openssh:9.2p1`` -> ``openbsd:openssh`` 9.2p1."""
    found: dict[tuple[str, str], PackageEntry] = {}
    for service in services:
        for cpe in service.cpes:
            part = cpe[5:6] if cpe.startswith("cpe:/") else cpe[8:9] \
                if cpe.startswith("cpe:2.3:") else ""
            read = cpe_name(cpe)
            if part not in _PACKAGE_PARTS or read is None:
                continue
            vendor, product, version = read
            if version is None:
                continue  # no version, nothing to judge
            name = f"{vendor}:{product}"
            found.setdefault((name, version), PackageEntry(
                ecosystem=CPE, name=name, version=version, purl=None))
    return list(found.values())


def host_inventory(host: NmapHost, collected_at: datetime | None = None) -> Inventory:
    """The Inventory of one live host: its addresses (and PTR name when nmap resolved
    one), its services as device facts and its services' application CPEs as packages.

    The device itself stays *unidentified*: nmap guesses an OS, it does not read the
    firmware; SNMP, ``show version`` or a declaration identify it.
    """
    seen: dict[str, str] = {}
    if host.os_guess:
        seen["os guess"] = host.os_guess
    if host.os_cpes:
        seen["os guess cpe"] = " ".join(host.os_cpes)
    if host.mac:
        seen["mac address"] = host.mac
    packages = service_packages(host.services)
    listed = ", ".join(f"{s.port}/{s.protocol} {s.name or '?'}"
                       + (f" {s.product}" if s.product else "")
                       + (f" {s.version}" if s.version else "") for s in host.services)
    what = "; ".join(p for p in (
        f"os guess {host.os_guess}" if host.os_guess else "",
        f"services {listed}" if listed else "no open port") if p)
    return Inventory(
        schema=2,
        asset=AssetIdentity(hostname=host.hostnames[0] if host.hostnames else None,
                            ip_addresses=list(host.addresses)),
        packages=packages,
        device=DeviceInfo(mac_vendor=host.mac_vendor, sources=[COLLECTOR], seen=seen,
                          services=list(host.services)),
        collected_at=collected_at or datetime.now(UTC),
        collector=Collector(name=COLLECTOR),
        warnings=[f"unidentified device: {host.addresses[0]}: nmap saw {what}; its "
                  "services' CPEs are matched, its own firmware is not (read it with SNMP "
                  "or declare it)"])
