"""Rapid7 Nexpose / InsightVM "XML Export" reports (``NexposeReport``, versions 1.0 and
2.0): nodes with their tests, the tests' vulnerability definitions after them.

The definitions are read in a first pass, then the report node by node: one item per
vulnerable test of a node or of a service on one of its endpoints (port, protocol,
service), ``nexpose:<vulnerability id>``, the definition's CVE references, title,
description, solution and CVSS vector (v3 where given, else v2).  The severity is the
definition's CVSS score in DESIGN.md's bands (Nexpose's own 1-10 severity where the score
is 0 or missing); tests under a vulnerability exception and tests not vulnerable are
skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from patchpilot.importers.formats._hosts import host_target, port_number, rewindable
from patchpilot.importers.model import (
    Format,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    cve_ids,
    number,
    score_band,
    text_or_none,
    xml_events,
)

_TRANSPORTS = {"tcp", "udp", "icmp"}


def detect(sniff: Sniff) -> int:
    return 100 if sniff.xml_root == "NexposeReport" else 0


def _flat(element: Any) -> str | None:
    """An element's text with Nexpose's paragraph markup and indentation folded away:
    one line per paragraph or list item."""
    if element is None:
        return None
    lines: list[str] = []
    for block in element.iter("Paragraph", "ListItem", "PreFormat"):
        own = " ".join(" ".join(t.split()) for t in (block.text, *(c.tail for c in block))
                       if t and t.strip())
        if own:
            lines.append(own)
    if not lines:  # no markup: plain text
        return text_or_none(" ".join("".join(element.itertext()).split()))
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Definition:
    """What a vulnerability definition says, for the tests that cite it."""

    title: str | None
    severity: str
    cves: tuple[str, ...]
    references: tuple[str, ...]
    description: str | None
    solution: str | None
    cvss_vector: str | None
    cvss_score: float | None
    exploit_available: bool | None


def _definition(element: Any) -> _Definition:
    attrib = element.attrib
    v3_vector = text_or_none(attrib.get("cvssV3Vector"))
    v2_vector = text_or_none((attrib.get("cvssVector") or "").strip("()"))
    score = number(attrib.get("cvssV3Score")) if v3_vector else number(attrib.get("cvssScore"))
    # A 0.0 score (TCP timestamps) leaves the band to Nexpose's own 1-10 severity.
    level = score if score else number(attrib.get("severity"))
    references = [(r.get("source", "").upper(), text_or_none(r.text))
                  for r in element.iterfind("references/reference")]
    exploits = element.find("exploits")
    return _Definition(
        title=text_or_none(attrib.get("title")),
        severity=score_band(level),
        cves=cve_ids([v for source, v in references if source == "CVE" and v]),
        references=tuple(v for source, v in references if source == "URL" and v),
        description=_flat(element.find("description")),
        solution=_flat(element.find("solution")),
        cvss_vector=v3_vector or v2_vector,
        cvss_score=score,
        exploit_available=None if exploits is None else len(exploits) > 0,
    )


def _definitions(stream: IO[bytes], source: str) -> dict[str, _Definition]:
    found: dict[str, _Definition] = {}
    for _event, element in xml_events(stream, source, tags=("vulnerability", "node")):
        if element.tag == "vulnerability":
            found[element.get("id", "").strip().lower()] = _definition(element)
        element.clear()
    return found


def _target(node: Any) -> Target:
    name = text_or_none(node.findtext("names/name"))
    os = node.find("fingerprints/os")
    parts: list[str] = []
    for key in ("vendor", "product", "version") if os is not None else ():
        part = text_or_none(os.get(key))
        if part and part not in parts:  # vendor "Linux", product "Linux"
            parts.append(part)
    os_name = " ".join(parts)
    return host_target(ip=node.get("address"), name=name, os=os_name or None,
                       mac=node.get("hardware-address"))


def _items(target: Target, tests: Any, definitions: dict[str, _Definition], *,
           port: int | None = None, protocol: str | None = None,
           service: str | None = None) -> Iterator[ReportItem | Skipped]:
    for test in tests.iterfind("test"):
        status = test.get("status", "").strip().lower()
        if status.startswith("exception-"):
            yield Skipped("vulnerability exception in Nexpose", test.sourceline)
            continue
        if not status.startswith("vulnerable"):
            yield Skipped(f"test {status or 'without a status'}", test.sourceline)
            continue
        test_id = test.get("id", "").strip()
        found = definitions.get(test_id.lower())
        yield ReportItem(
            target=target,
            scanner_id=f"nexpose:{test_id}",
            cves=found.cves if found else (),
            title=found.title if found else None,
            description=found.description if found else None,
            port=port, protocol=protocol, service=service,
            severity=found.severity if found else "Unknown",
            cvss_vector=found.cvss_vector if found else None,
            cvss_score=found.cvss_score if found else None,
            exploit_available=found.exploit_available if found else None,
            solution=found.solution if found else None,
            references=found.references if found else (),
            output=_flat(test),
            line=test.sourceline,
        )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    stream = rewindable(stream)
    start = stream.tell()
    definitions = _definitions(stream, source)
    stream.seek(start)
    for _event, node in xml_events(stream, source, tags=("node", "nodes")):
        parent = node.getparent()
        top = parent is not None and parent.getparent() is None
        if node.tag == "nodes":
            if top:
                return  # the definitions after the nodes were read in the first pass
            continue
        if parent is None or parent.getparent() is None or \
                parent.getparent().getparent() is not None:
            continue  # a node of a node's own (empty) <nodes>
        target = _target(node)
        yield target
        for tests in node.iterfind("tests"):
            yield from _items(target, tests, definitions)
        for endpoint in node.iterfind("endpoints/endpoint"):
            protocol = (endpoint.get("protocol") or "").lower()
            for service in endpoint.iterfind("services/service"):
                for tests in service.iterfind("tests"):
                    yield from _items(
                        target, tests, definitions, port=port_number(endpoint.get("port")),
                        protocol=protocol if protocol in _TRANSPORTS else None,
                        service=text_or_none(service.get("name")))
        node.clear()


FORMAT = Format(
    name="nexpose", producer="rapid7", title="Rapid7 Nexpose / InsightVM XML Export",
    detect=detect, parse=parse, extensions=(".xml",),
    notes="Every vulnerable test of every node and of its endpoints' services, with its "
          "vulnerability definition; tests under an exception or not vulnerable are "
          "skipped; software inventory, policy and malware sections are left out.")
