"""Qualys VM reports: the XML asset data report (``ASSET_DATA_REPORT``: hosts citing QIDs,
the QIDs' knowledge-base text in a glossary after them), the XML scan report (``SCAN``,
scan-1.dtd: each host's QIDs with their text), and the CSV scan / PCI reports.

One item per detection of a QID on a host (and port): ``qualys:<qid>``, the QID's CVEs,
diagnosis/threat and consequence/impact as the description, solution, the host's result
as evidence.  Qualys' 1-5 severity levels are banded Minimal/Medium -> Low, Serious ->
Medium, Critical -> High, Urgent -> Critical; "information gathered" QIDs (``Ig``, INFOS,
SERVICES) are informational; detections Qualys has marked fixed are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from patchpilot.importers.formats._hosts import (
    host_target,
    plain,
    port_number,
    rewindable,
)
from patchpilot.importers.model import (
    SNIFF_BYTES,
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    csv_rows,
    cve_ids,
    text_or_none,
    xml_events,
    xml_text,
)

_LEVELS = {"1": "Low", "2": "Low", "3": "Medium", "4": "High", "5": "Critical"}
_INFORMATION = {"ig", "info", "information", "information gathered", "infos", "services"}
_TRANSPORTS = {"tcp", "udp", "icmp"}
# "9.3 (AV:N/AC:M/Au:N/C:C/I:C/A:C)" or a bare score.
_CVSS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:\((.+)\))?\s*$")


def detect(sniff: Sniff) -> int:
    return 100 if sniff.xml_root in ("ASSET_DATA_REPORT", "SCAN") else 0


def detect_csv(sniff: Sniff) -> int:
    header = set(sniff.csv_header)
    if {"ip", "qid"} <= header and ("vuln title" in header or "title" in header):
        return 100
    # A scan report's table sits below its preamble (report title, company, options).
    for line in sniff.text.splitlines()[:40]:
        cells = {c.strip().strip('"').lower() for c in line.split(",")}
        if {"ip", "qid", "title", "severity"} <= cells:
            return 90
    return 0


def _severity(level: str | None) -> str:
    return _LEVELS.get((level or "").strip(), "Unknown")


def _cvss(text: str | None, prefix: str) -> tuple[str | None, float | None]:
    """(vector, score) of ``"9.0 (AV:N/…)"``; ``prefix`` marks a v3 vector."""
    match = _CVSS.match(text or "")
    if not match:
        return None, None
    vector = text_or_none(match.group(2))
    if vector and prefix and not vector.startswith("CVSS:"):
        vector = prefix + vector
    return vector, float(match.group(1))


def _text(text: str | None) -> str | None:
    text = plain(text)
    return None if text is None or text.upper() == "N/A" else text


def _joined(*texts: str | None) -> str | None:
    return "\n\n".join(t for t in texts if t) or None


@dataclass(frozen=True, slots=True)
class _Qid:
    """A QID's knowledge-base text, as the asset data report's glossary gives it."""

    title: str | None
    severity: str
    description: str | None
    solution: str | None
    cves: tuple[str, ...]
    references: tuple[str, ...]
    cvss_vector: str | None
    cvss_score: float | None
    exploit_available: bool | None


def _qid_text(element: Any) -> _Qid:
    """The knowledge-base text of a glossary entry or a scan report's VULN."""
    # Qualys KB vectors carry no version; its CVSS v3 scores are 3.1 since 2020.
    vector, score = _cvss(xml_text(element, "CVSS3_SCORE/CVSS3_BASE")
                          or xml_text(element, "CVSS3_BASE"), "CVSS:3.1/")
    if score is None:
        vector, score = _cvss(xml_text(element, "CVSS_SCORE/CVSS_BASE")
                              or xml_text(element, "CVSS_BASE"), "")
    exploits = element.find("CORRELATION/EXPLOITABILITY")
    return _Qid(
        title=xml_text(element, "TITLE"),
        severity=_severity(element.findtext("SEVERITY") or element.get("severity")),
        description=_joined(_text(element.findtext("THREAT") or element.findtext("DIAGNOSIS")),
                            _text(element.findtext("IMPACT")
                                  or element.findtext("CONSEQUENCE"))),
        solution=_text(element.findtext("SOLUTION")),
        cves=cve_ids([c.text or "" for c in element.iterfind("CVE_ID_LIST/CVE_ID/ID")],
                     element.get("cveid")),
        references=tuple(u for u in (text_or_none(r.text) for r in
                                     element.iterfind("VENDOR_REFERENCE_LIST/"
                                                      "VENDOR_REFERENCE/URL")) if u),
        cvss_vector=vector, cvss_score=score,
        exploit_available=True if exploits is not None and len(exploits) else None,
    )


def _item(target: Target, qid: str, text: _Qid | None, *, kind: str, port: str | None,
          protocol: str | None, service: str | None, output: str | None,
          line: int | None) -> ReportItem:
    informational = kind.strip().lower() in _INFORMATION
    protocol = (protocol or "").strip().lower()
    return ReportItem(
        target=target,
        scanner_id=f"qualys:{qid}",
        cves=text.cves if text else (),
        title=text.title if text else None,
        description=text.description if text else None,
        port=port_number(port),
        protocol=protocol if protocol in _TRANSPORTS else None,
        service=text_or_none(service),
        severity="None" if informational else text.severity if text else "Unknown",
        cvss_vector=text.cvss_vector if text else None,
        cvss_score=text.cvss_score if text else None,
        exploit_available=text.exploit_available if text else None,
        solution=text.solution if text else None,
        references=text.references if text else (),
        informational=informational,
        output=text_or_none(output),
        line=line,
    )


# --- the asset data report: the glossary first (second in the file), then the hosts ----

def _glossary(stream: IO[bytes], source: str) -> dict[str, _Qid]:
    glossary: dict[str, _Qid] = {}
    for _event, element in xml_events(stream, source, tags=("VULN_DETAILS", "HOST")):
        if element.tag == "VULN_DETAILS":
            qid = xml_text(element, "QID") or element.get("id", "").removeprefix("qid_")
            glossary[qid] = _qid_text(element)
        element.clear()
    return glossary


def _asset_data(stream: IO[bytes], source: str,
                glossary: dict[str, _Qid]) -> Iterator[ReportItem | Target | Skipped]:
    for _event, host in xml_events(stream, source, tags=("HOST", "HOST_LIST")):
        if host.tag == "HOST_LIST":
            return  # the glossary and appendices after it were read in the first pass
        target = host_target(ip=xml_text(host, "IP"), fqdn=xml_text(host, "DNS"),
                             netbios=xml_text(host, "NETBIOS"),
                             os=xml_text(host, "OPERATING_SYSTEM"))
        yield target
        for info in host.iterfind("VULN_INFO_LIST/VULN_INFO"):
            if (xml_text(info, "VULN_STATUS") or "").lower() == "fixed":
                yield Skipped("fixed in Qualys", info.sourceline)
                continue
            qid = xml_text(info, "QID") or ""
            yield _item(target, qid, glossary.get(qid), kind=xml_text(info, "TYPE") or "",
                        port=xml_text(info, "PORT"), protocol=xml_text(info, "PROTOCOL"),
                        service=xml_text(info, "SERVICE"), output=info.findtext("RESULT"),
                        line=info.sourceline)
        host.clear()


# --- the scan report: each host's QIDs with their text ----------------------------------

_SCAN_KINDS = {"VULN": "vuln", "PRACTICE": "practice", "INFO": "info", "SERVICE": "services"}


def _scan(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    target: Target | None = None
    for event, element in xml_events(stream, source, events=("start", "end"),
                                     tags=("IP", *_SCAN_KINDS)):
        if element.tag == "IP":
            if event == "start":
                target = None
                continue
            if target is None and element.get("status", "").lower() != "down":
                yield _scan_target(element)
            element.clear()
            continue
        if event != "end":
            continue
        cat = element.getparent()
        if target is None:
            host = cat  # VULN < CAT < VULNS < IP
            while host is not None and host.tag != "IP":
                host = host.getparent()
            if host is None:
                raise ReportError(source, f"<{element.tag}> outside an <IP>",
                                  line=element.sourceline)
            target = _scan_target(host)
            yield target
        yield _item(target, element.get("number", "").strip(), _qid_text(element),
                    kind=_SCAN_KINDS[element.tag], port=cat.get("port"),
                    protocol=cat.get("protocol"), service=None,
                    output=element.findtext("RESULT"), line=element.sourceline)
        element.clear()


def _scan_target(ip: Any) -> Target:
    return host_target(ip=ip.get("value"), name=ip.get("name"),
                       netbios=xml_text(ip, "NETBIOS_HOSTNAME"), os=xml_text(ip, "OS"))


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    stream = rewindable(stream)
    start = stream.tell()
    root = Sniff(source, stream.read(SNIFF_BYTES)).xml_root
    stream.seek(start)
    if root == "SCAN":
        yield from _scan(stream, source)
    elif root == "ASSET_DATA_REPORT":
        glossary = _glossary(stream, source)
        stream.seek(start)
        yield from _asset_data(stream, source, glossary)
    else:
        raise ReportError(source, f"not a Qualys scan or asset data report (root {root!r})")


# --- CSV --------------------------------------------------------------------------------

def _cell(row: dict[str, str], *names: str) -> str | None:
    for name in names:
        value = text_or_none(row.get(name))
        if value is not None and value != "-":
            return value
    return None


def _is_header(row: list[str]) -> bool:
    cells = {c.strip().lower() for c in row}
    return {"ip", "qid"} <= cells


def parse_csv(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    seen: set[tuple[str | None, ...]] = set()
    for line, raw in csv_rows(stream, source, skip_until=_is_header):
        row = {k.lower(): v for k, v in raw.items() if k}
        target = host_target(ip=_cell(row, "ip"),
                             name=_cell(row, "hostname", "fqdn", "dns"),
                             netbios=_cell(row, "netbios"),
                             os=_cell(row, "operating system", "os"))
        if target.empty:
            yield Skipped("row without a host", line)
            continue
        # The host of a skipped row is covered all the same: its findings close.
        if target.key not in seen:
            seen.add(target.key)
            yield target
        if (_cell(row, "false positive status") or "").lower() in ("accepted", "approved"):
            yield Skipped("false positive accepted in Qualys", line)
            continue
        if (_cell(row, "vuln status", "status") or "").lower() == "fixed":
            yield Skipped("fixed in Qualys", line)
            continue
        level = _cell(row, "q_severity", "severity") or ""
        vector, score = _cvss(_cell(row, "cvss3.1 base", "cvss3 base", "cvss_v3_base"),
                              "CVSS:3.1/")
        if score is None:
            vector, score = _cvss(_cell(row, "cvss base", "cvss_base"), "")
        text = _Qid(
            title=_cell(row, "vuln title", "title"),
            severity=_severity(level) if level.isdigit() else band(level),
            description=_joined(_text(_cell(row, "threat")), _text(_cell(row, "impact"))),
            solution=_text(_cell(row, "solution")),
            cves=cve_ids(_cell(row, "cveid", "cve id")),
            references=(), cvss_vector=vector, cvss_score=score, exploit_available=None)
        yield _item(target, _cell(row, "qid") or "", text, kind=_cell(row, "type") or "",
                    port=_cell(row, "port"), protocol=_cell(row, "protocol"), service=None,
                    output=_cell(row, "result", "results"), line=line)


FORMAT = Format(
    name="qualys", producer="qualys", title="Qualys VM XML (asset data or scan report)",
    detect=detect, parse=parse, extensions=(".xml",),
    notes="Every QID detection of every host, with the QID's text from the glossary (asset "
          "data report) or the QID itself (scan report); information gathered and services "
          "are informational, fixed detections skipped; the 'no results' appendix is left "
          "out (it lists addresses of the scope Qualys has no data for, scanned or not).")

FORMAT_CSV = Format(
    name="qualys-csv", producer="qualys", title="Qualys VM CSV (scan or PCI report)",
    detect=detect_csv, parse=parse_csv, extensions=(".csv",),
    notes="Every row below the header (a preamble above it is passed over); accepted false "
          "positives and fixed detections are skipped; the CSV gives no references.")
