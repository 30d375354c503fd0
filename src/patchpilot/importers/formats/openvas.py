"""Greenbone / OpenVAS reports: the GMP XML report (``<report format_id=…>`` around
``<report><results><result>``) and the CSV "Results" export (``IP``, ``Hostname``,
``Port``, ``Port Protocol``, ``CVSS``, ``Severity``, ``NVT OID`` …).

One item per result: the NVT's OID as the scanner id (``openvas:1.3.6.1.4.1.25623.1.0.…``;
a CVE scanner result keeps its CVE), its CVE refs, name, summary/insight/impact as the
description, solution, the result text as evidence.  The severity is the result's score
in DESIGN.md's bands (Greenbone's threat words stop at High); threat ``Log``/``Debug`` or
score 0 is informational, a result overridden to ``False Positive`` is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._hosts import host_target, port_number
from patchpilot.importers.model import (
    Format,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    csv_rows,
    cve_ids,
    number,
    score_band,
    text_or_none,
    xml_events,
    xml_text,
)

_TRANSPORTS = {"tcp", "udp", "icmp"}
# The CSV export's own columns (lower-cased).
_CSV = {"ip", "port protocol", "nvt name", "nvt oid"}
# The GMP report's marks near its top: the export's format id attribute, the GMP version.
_XML_MARKS = re.compile(r"<report\b[^>]*\bformat_id=|<gmp>|<omp>|<nvt oid=")


def detect(sniff: Sniff) -> int:
    return 100 if sniff.xml_root == "report" and _XML_MARKS.search(sniff.text) else 0


def detect_csv(sniff: Sniff) -> int:
    return 100 if _CSV <= set(sniff.csv_header) else 0


def _port(text: str | None) -> tuple[int | None, str | None]:
    """``"443/tcp"`` -> (443, "tcp"); ``"general/tcp"`` -> (None, "tcp"); ``"package"``,
    ``"general/CPE-T"`` -> (None, None)."""
    number_part, _, protocol = (text or "").partition("/")
    protocol = protocol.strip().lower()
    return port_number(number_part), protocol if protocol in _TRANSPORTS else None


def _not_imported(threat: str | None, score: float | None) -> str | None:
    """Why a result is skipped: Greenbone scores a false positive -1, a scan error -3."""
    word = (threat or "").strip().lower()
    if word == "false positive" or score == -1.0:
        return "overridden as a false positive"
    if word == "error" or score == -3.0:
        return "scan error"
    return None


def _severity(threat: str | None, score: float | None) -> tuple[str, bool]:
    """(band, informational) of a result (debug scores -2)."""
    word = (threat or "").strip().lower()
    if word in ("log", "debug") or score in (0.0, -2.0):
        return "None", True
    if score is not None:
        return score_band(score), False
    return band(word), False


def _scanner_id(oid: str) -> str:
    # The CVE scanner's results name the CVE itself in place of an NVT.
    return oid.upper() if oid.upper().startswith("CVE-") else f"openvas:{oid}"


def _tags(text: str | None) -> dict[str, str]:
    """An NVT's ``key=value|key=value`` tags."""
    tags: dict[str, str] = {}
    for part in re.split(r"\|(?=\w+=)", text or ""):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip()] = value.strip()
    return tags


def _joined(*texts: str | None) -> str | None:
    return "\n\n".join(t for t in texts if t) or None


def _vector(nvt: Any, tags: dict[str, str]) -> tuple[str | None, float | None]:
    """The NVT's v3 vector (else v4, else v2) with its score."""
    found: dict[str, tuple[str | None, float | None]] = {}
    for severity in nvt.iterfind("severities/severity"):
        kind = severity.get("type", "")
        found.setdefault(kind, (xml_text(severity, "value"),
                                number(severity.findtext("score"))))
    for kind in ("cvss_base_v3", "cvss_base_v4", "cvss_base_v2"):
        if found.get(kind, (None, None))[0]:
            return found[kind]
    vector = text_or_none(tags.get("cvss_base_vector"))
    return vector, number(nvt.findtext("cvss_base")) if vector else None


def _xml_target(result: Any) -> Target:
    host = result.find("host")
    return host_target(ip=text_or_none(host.text) if host is not None else None,
                       name=xml_text(host, "hostname") if host is not None else None)


def _xml_item(target: Target, result: Any) -> ReportItem | Skipped:
    threat = xml_text(result, "threat")
    score = number(result.findtext("severity"))
    reason = _not_imported(threat, score)
    if reason:
        return Skipped(reason, result.sourceline)
    severity, informational = _severity(threat, score)
    nvt = result.find("nvt")
    nvt = nvt if nvt is not None else result.makeelement("nvt", {})
    tags = _tags(nvt.findtext("tags"))
    refs = [(r.get("type", "").lower(), r.get("id", "")) for r in nvt.iterfind("refs/ref")]
    vector, vector_score = _vector(nvt, tags)
    port, protocol = _port(xml_text(result, "port"))
    scanner_id = _scanner_id(nvt.get("oid", "").strip())
    return ReportItem(
        target=target,
        scanner_id=scanner_id,
        # GMP 7+ lists refs; older reports a comma-separated <cve>.
        cves=cve_ids(scanner_id if scanner_id.startswith("CVE-") else None,
                     [i for kind, i in refs if kind == "cve"], nvt.findtext("cve")),
        title=xml_text(nvt, "name") or xml_text(result, "name"),
        description=_joined(tags.get("summary"), tags.get("insight"), tags.get("impact")),
        port=port, protocol=protocol,
        severity=severity,
        cvss_vector=vector,
        cvss_score=vector_score if vector_score is not None else score,
        solution=xml_text(nvt, "solution") or text_or_none(tags.get("solution")),
        references=tuple(i for kind, i in refs if kind == "url"),
        informational=informational,
        output=xml_text(result, "description"),
        line=result.sourceline,
    )


def _report_host(element: Any) -> Target:
    """A host of the report's host list (scanned, with or without results)."""
    details = {xml_text(d, "name"): xml_text(d, "value") for d in element.iterfind("detail")}
    return host_target(ip=xml_text(element, "ip"), name=details.get("hostname"),
                       os=details.get("best_os_txt"))


def _host_key(target: Target) -> tuple[str | None, ...]:
    # Greenbone always gives the address; the host name only where it found one.
    return (target.ip,) if target.ip else target.key


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    seen: set[tuple[str | None, ...]] = set()
    for _event, element in xml_events(stream, source, tags=("result", "host")):
        parent = element.getparent()
        parent_tag = parent.tag if parent is not None else None
        if element.tag == "host":
            # The report's host list (after the results): hosts scanned, results or not.
            if parent_tag == "report":
                target = _report_host(element)
                if not target.empty and _host_key(target) not in seen:
                    seen.add(_host_key(target))
                    yield target
                element.clear()
            continue
        # Results of overrides, notes and deltas are copies: only <results> counts.
        if parent_tag != "results":
            continue
        target = _xml_target(element)
        # The host of a skipped result is covered all the same: its findings close.
        if not target.empty and _host_key(target) not in seen:
            seen.add(_host_key(target))
            yield target
        yield _xml_item(target, element)
        element.clear()


def _cell(row: dict[str, str], name: str) -> str | None:
    return text_or_none(row.get(name))


def parse_csv(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    seen_targets: set[tuple[str | None, ...]] = set()
    seen_results: set[str] = set()
    for line, raw in csv_rows(stream, source):
        row = {k.lower(): v for k, v in raw.items() if k}
        result_id = _cell(row, "result id")
        if result_id and result_id in seen_results:
            yield Skipped("the same result repeated", line)
            continue
        if result_id:
            seen_results.add(result_id)
        target = host_target(ip=_cell(row, "ip"), name=_cell(row, "hostname"))
        if target.empty:
            yield Skipped("row without a host", line)
            continue
        if _host_key(target) not in seen_targets:
            seen_targets.add(_host_key(target))
            yield target
        threat, score = _cell(row, "severity"), number(_cell(row, "cvss"))
        reason = _not_imported(threat, score)
        if reason:
            yield Skipped(reason, line)
            continue
        severity, informational = _severity(threat, score)
        protocol = (_cell(row, "port protocol") or "").lower()
        yield ReportItem(
            target=target,
            scanner_id=_scanner_id(_cell(row, "nvt oid") or ""),
            cves=cve_ids(_cell(row, "cves")),
            title=_cell(row, "nvt name"),
            description=_joined(_cell(row, "summary"), _cell(row, "vulnerability insight"),
                                _cell(row, "impact")),
            port=port_number(_cell(row, "port")),
            protocol=protocol if protocol in _TRANSPORTS else None,
            severity=severity,
            cvss_score=score,
            solution=_cell(row, "solution"),
            references=tuple(u for u in (_cell(row, "other references") or "").split(",")
                             if "://" in u),
            informational=informational,
            output=_cell(row, "specific result"),
            line=line,
        )


FORMAT = Format(
    name="openvas", producer="openvas", title="Greenbone / OpenVAS XML report",
    detect=detect, parse=parse, extensions=(".xml",),
    notes="Every result of the report's results list (not the copies under overrides, notes "
          "or deltas) and every host of its host list; threat Log/Debug is informational, "
          "False Positive overrides are skipped; EPSS and CERT-Bund/DFN-CERT refs are left "
          "out.")

FORMAT_CSV = Format(
    name="openvas-csv", producer="openvas", title="Greenbone / OpenVAS CSV results",
    detect=detect_csv, parse=parse_csv, extensions=(".csv",),
    notes="Every row of the Results CSV, a repeated Result ID once; severity Log is "
          "informational; the CSV has scores but no CVSS vectors.")
