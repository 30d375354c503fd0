"""Tenable CSV exports: Tenable.sc's vulnerability detail list (``Plugin``, ``Plugin
Name``, ``IP Address``, ``DNS Name`` …) and Nessus' own CSV (``Plugin ID``, ``CVE``,
``Risk``, ``Host`` …), which writes one row per CVE of a plugin result.

One item per plugin result (plugin, host, protocol, port): the consecutive rows Nessus
writes for each CVE of one result are folded into one item with every CVE.  The severity
is the export's ``Severity`` (Tenable.sc, which may be recast) else ``Risk``; ``None``/
``Info`` rows are informational.  Vectors come without their ``CVSS:3.0/`` prefix
(Tenable.sc) and get it back; Nessus' CSV has scores only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import IO

from patchpilot.importers.formats._hosts import host_target, is_ip, port_number
from patchpilot.importers.model import (
    Format,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    csv_rows,
    cve_ids,
    cwe_ids,
    number,
    text_or_none,
)

# Tenable.sc's header and Nessus' (lower-cased).
_SC = {"plugin", "plugin name", "severity", "ip address"}
_NESSUS = {"plugin id", "risk", "host", "name"}
# "CWE #310" (Tenable.sc cross references), "CWE:310" (Nessus XREF).
_TRANSPORTS = {"tcp", "udp", "icmp"}
_CWE = re.compile(r"CWE\s*[#:]\s*(\d+)", re.IGNORECASE)


def detect(sniff: Sniff) -> int:
    header = set(sniff.csv_header)
    return 100 if _SC <= header or _NESSUS <= header else 0


def _cell(row: dict[str, str], *names: str) -> str | None:
    for name in names:
        value = text_or_none(row.get(name))
        if value is not None and value.lower() != "n/a":
            return value
    return None


def _target(row: dict[str, str]) -> Target:
    host = _cell(row, "host")
    ip = _cell(row, "ip address") or (host if is_ip(host) else None)
    return host_target(ip=ip, name=None if is_ip(host) else host, fqdn=_cell(row, "dns name"),
                       netbios=_cell(row, "netbios name"), mac=_cell(row, "mac address"))


def _vector(row: dict[str, str]) -> tuple[str | None, float | None]:
    """The v3 vector (prefixed) with its score, else v2's; Nessus' CSV gives scores only
    (v3 preferred)."""
    v3_score = number(_cell(row, "cvss v3 base score", "cvssv3", "cvss v3.0 base score"))
    v2_score = number(_cell(row, "cvss v2 base score", "cvss"))
    v3 = _cell(row, "cvss v3 vector")
    if v3:
        return (v3 if v3.startswith("CVSS:") else f"CVSS:3.0/{v3}"), v3_score
    v2 = _cell(row, "cvss v2 vector")
    if v2:
        return v2.removeprefix("CVSS2#"), v2_score
    return None, v3_score if v3_score is not None else v2_score


def _item(target: Target, row: dict[str, str], line: int) -> ReportItem:
    plugin = _cell(row, "plugin", "plugin id") or ""
    severity = band(_cell(row, "severity", "risk", "risk factor"))
    synopsis, description = _cell(row, "synopsis"), _cell(row, "description")
    exploit = _cell(row, "exploit?")
    output = _cell(row, "plugin output", "plugin text")
    vector, score = _vector(row)
    # Nessus WAS writes the application protocol (``http``) there: a service.
    protocol = (_cell(row, "protocol") or "").lower() or None
    xrefs = _cell(row, "cross references", "xref") or ""
    return ReportItem(
        target=target,
        scanner_id=f"nessus:{plugin}",
        cves=cve_ids(_cell(row, "cve")),
        title=_cell(row, "plugin name", "name"),
        description="\n\n".join(t for t in (synopsis, description) if t) or None,
        port=port_number(_cell(row, "port")),
        protocol=protocol if protocol in _TRANSPORTS else None,
        service=protocol if protocol and protocol not in _TRANSPORTS else None,
        severity=severity,
        cvss_vector=vector,
        cvss_score=score,
        exploit_available=(exploit.lower() == "yes") if exploit else None,
        solution=_cell(row, "solution", "steps to remediate"),
        references=tuple(u for u in (_cell(row, "see also") or "").split() if "://" in u),
        cwes=cwe_ids(_CWE.findall(xrefs)),
        informational=severity == "None",
        # Tenable.sc starts the output with its own label.
        output=text_or_none(output.removeprefix("Plugin Output:")) if output else None,
        line=line,
    )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    targets: dict[tuple[str | None, ...], Target] = {}
    pending: ReportItem | None = None
    pending_key: tuple[str | None, ...] = ()
    for line, raw in csv_rows(stream, source):
        row = {k.lower(): v for k, v in raw.items() if k}
        target = _target(row)
        if target.empty:
            yield Skipped("row without a host", line)
            continue
        item = _item(target, row, line)
        key = (item.scanner_id, *target.key, item.protocol, str(item.port))
        # Nessus repeats a result once per CVE: fold those rows into the first.
        if (pending is not None and key == pending_key and pending.cves and item.cves
                and not set(item.cves) <= set(pending.cves)):
            pending = dataclasses.replace(pending, cves=cve_ids(pending.cves, item.cves))
            continue
        if pending is not None:
            yield pending
        if target.key not in targets:
            targets[target.key] = target
            yield target
        pending, pending_key = item, key
    if pending is not None:
        yield pending


FORMAT = Format(
    name="tenable-csv", producer="tenable", title="Tenable CSV (Tenable.sc, Nessus)",
    detect=detect, parse=parse, extensions=(".csv",),
    notes="Every plugin result of a Tenable.sc or Nessus CSV export (Nessus' one row per "
          "CVE folded into one item); severity None/Info rows are informational; the "
          "export has no service names, and Nessus' CSV no CVSS vectors.")
