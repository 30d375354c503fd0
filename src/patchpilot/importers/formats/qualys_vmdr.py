"""Qualys VMDR CSV exports: the "Asset Vuln Datalist Report" (a preamble of report title,
company and user rows, then ``QID``, ``Title``, ``Severity``, ``Asset Name``, ``Asset IPV4``
… one row per detection) and its CVE view (``CVE``, ``CVE-Description``, ``CVSSv3.1 Base
(nvd)`` before the same columns, one row per CVE of a detection).

One item per detection (QID, asset, port, protocol): the CVE view's consecutive rows of
one detection are folded into one item with every CVE and the highest score.  Qualys' 1-5
level is banded as the ``qualys`` reader does; ``Information`` detections are
informational, ``FIXED`` ones skipped (a re-import closes them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import IO

from patchpilot.importers.formats._hosts import host_target, plain, port_number
from patchpilot.importers.model import (
    Format,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    csv_rows,
    cve_ids,
    number,
    text_or_none,
)

_LEVELS = {"1": "Low", "2": "Low", "3": "Medium", "4": "High", "5": "Critical"}
_TRANSPORTS = {"tcp", "udp", "icmp"}
_PREAMBLE = "asset vuln datalist report"


def detect(sniff: Sniff) -> int:
    header = set(sniff.csv_header)
    if sniff.csv_header[:1] == (_PREAMBLE,):
        return 100
    return 100 if {"qid", "asset id", "asset ipv4"} <= header else 0


def _is_header(row: list[str]) -> bool:
    cells = {c.strip().lower() for c in row}
    return {"qid", "asset id"} <= cells


def _cell(row: dict[str, str], name: str) -> str | None:
    value = text_or_none(row.get(name))
    # Qualys writes an empty cell as "-" (or "'-", escaped for spreadsheets).
    return None if value in (None, "-", "'-") else value


def _item(target: Target, row: dict[str, str], line: int) -> ReportItem:
    kind = (_cell(row, "type detected") or "").lower()
    informational = kind.startswith("info")
    protocol = (_cell(row, "protocol") or "").lower()
    score = number(_cell(row, "cvssv3.1 base (nvd)"))
    return ReportItem(
        target=target,
        scanner_id=f"qualys:{_cell(row, 'qid') or ''}",
        cves=cve_ids(_cell(row, "cve")),
        title=_cell(row, "title"),
        description=plain(_cell(row, "threat")),
        port=port_number(_cell(row, "port")),
        protocol=protocol if protocol in _TRANSPORTS else None,
        severity="None" if informational else _LEVELS.get(_cell(row, "severity") or "",
                                                          "Unknown"),
        cvss_score=score if score is not None else number(_cell(row, "cvssv2 base (nvd)")),
        solution=plain(_cell(row, "solution")),
        informational=informational,
        output=_cell(row, "results"),
        line=line,
    )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    targets: set[tuple[str | None, ...]] = set()
    pending: ReportItem | None = None
    pending_key: tuple[str | None, ...] = ()
    for line, raw in csv_rows(stream, source, skip_until=_is_header):
        row = {k.lower(): v for k, v in raw.items() if k}
        target = host_target(ip=_cell(row, "asset ipv4") or _cell(row, "asset ipv6"),
                             name=_cell(row, "asset name"), os=_cell(row, "operating system"))
        if target.empty:
            yield Skipped("row without an asset", line)
            continue
        fixed = (_cell(row, "status") or "").lower() == "fixed"
        if fixed or target.key not in targets:
            # A fixed detection's asset is covered all the same: its finding closes.
            if pending is not None:
                yield pending
                pending = None
            if target.key not in targets:
                targets.add(target.key)
                yield target
        if fixed:
            yield Skipped("fixed in Qualys", line)
            continue
        item = _item(target, row, line)
        key = (item.scanner_id, _cell(row, "asset id"), *target.key, item.protocol,
               str(item.port))
        # The CVE view repeats a detection once per CVE: fold those rows into the first.
        if pending is not None and key == pending_key and item.cves:
            scores = [s for s in (pending.cvss_score, item.cvss_score) if s is not None]
            pending = dataclasses.replace(pending, cves=cve_ids(pending.cves, item.cves),
                                          cvss_score=max(scores) if scores else None)
            continue
        if pending is not None:
            yield pending
        pending, pending_key = item, key
    if pending is not None:
        yield pending


FORMAT = Format(
    name="qualys-vmdr", producer="qualys", title="Qualys VMDR CSV (asset vuln datalist)",
    detect=detect, parse=parse, extensions=(".csv",),
    notes="Every detection row (the CVE view's per-CVE rows folded into one item); FIXED "
          "detections are skipped; the export gives scores but no CVSS vectors, and "
          "Qualys' Ignored/Disabled flags are not carried over.")
