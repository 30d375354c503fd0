"""Nessus ``.nessus`` v2 (``NessusClientData_v2``): Tenable Nessus, Tenable.sc and Tenable.io
exports.

Streamed host by host: each ``ReportHost``'s ``HostProperties`` give the target (host
name, FQDN, IP, OS, MAC), each ``ReportItem`` one item -- its ``cve`` elements, the plugin
id as the scanner id (``nessus:<pluginID>``), synopsis/description/solution/see_also,
``exploit_available``, the CVSS v3 vector (else v2) and the port/protocol/service.
Severity 0 items (``Nessus Scan Information``, ``Device Type`` …) are informational.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import urlsplit

from patchpilot.importers.formats._hosts import host_target
from patchpilot.importers.model import (
    Format,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    cve_ids,
    cwe_ids,
    text_or_none,
    xml_events,
)

_SEVERITY = {"0": "None", "1": "Low", "2": "Medium", "3": "High", "4": "Critical"}


def detect(sniff: Sniff) -> int:
    return 100 if sniff.xml_root == "NessusClientData_v2" else 0


def _host(text: str | None) -> str | None:
    # Nessus WAS names its targets by URL, in the ReportHost name and its tags alike.
    if text and "://" in text:
        return urlsplit(text).hostname or text
    return text


def _target(name: str, tags: dict[str, str]) -> Target:
    mac = (tags.get("mac-address") or "").split()
    return host_target(ip=tags.get("host-ip"), name=_host(tags.get("hostname") or name),
                       fqdn=_host(tags.get("host-fqdn") or tags.get("host-rdns")),
                       netbios=tags.get("netbios-name"),
                       os=tags.get("operating-system") or tags.get("os"),
                       mac=mac[0] if mac else None)


def _vector(texts: dict[str, str]) -> str | None:
    v3 = text_or_none(texts.get("cvss3_vector"))
    if v3:
        return v3
    v2 = text_or_none(texts.get("cvss_vector"))
    if v2:
        return v2.removeprefix("CVSS2#")
    return None


def _score(texts: dict[str, str]) -> float | None:
    for tag in ("cvss3_base_score", "cvss_base_score"):
        text = text_or_none(texts.get(tag))
        if text:
            try:
                return float(text)
            except ValueError:
                continue
    return None


def _item(target: Target, element: Any) -> ReportItem:
    # One pass over the item's children (a findtext each would walk them twenty times).
    texts: dict[str, str] = {}
    cves: list[str] = []
    cwes: list[str] = []
    for child in element:
        tag, text = child.tag, child.text
        if not text:
            continue
        if tag == "cve":
            cves.append(text)
        elif tag == "cwe":
            cwes.append(text)
        else:
            texts[tag] = text
    attrib = element.attrib
    plugin = attrib.get("pluginID", "").strip()
    severity = _SEVERITY.get(attrib.get("severity", "").strip(), "Unknown")
    see_also = text_or_none(texts.get("see_also"))
    exploit = text_or_none(texts.get("exploit_available"))
    port = attrib.get("port", "0").strip()
    synopsis = text_or_none(texts.get("synopsis"))
    description = text_or_none(texts.get("description"))
    protocol = text_or_none(attrib.get("protocol"))
    return ReportItem(
        target=target,
        scanner_id=f"nessus:{plugin}",
        cves=cve_ids(cves),
        title=text_or_none(attrib.get("pluginName")) or text_or_none(texts.get("plugin_name")),
        description="\n\n".join(t for t in (synopsis, description) if t) or None,
        port=int(port) if port.isdigit() else None,
        protocol=protocol.lower() if protocol else None,
        service=text_or_none(attrib.get("svc_name")),
        severity=severity,
        cvss_vector=_vector(texts),
        cvss_score=_score(texts),
        exploit_available=(exploit.lower() == "true") if exploit else None,
        solution=text_or_none(texts.get("solution")),
        references=tuple(u for u in (see_also or "").split() if "://" in u),
        cwes=cwe_ids(cwes),
        informational=severity == "None",
        output=text_or_none(texts.get("plugin_output")),
        line=element.sourceline,
    )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    # Three kinds of events only: a host's properties (read whole at their end, before
    # its items), each item, and the host's end (to free it).
    target: Target | None = None
    for _event, element in xml_events(stream, source,
                                      tags=("HostProperties", "ReportItem", "ReportHost")):
        tag = element.tag
        if tag == "HostProperties":
            host = element.getparent()
            tags = {t.get("name"): t.text.strip() for t in element.iterfind("tag")
                    if t.get("name") and t.text}
            target = _target(host.get("name", "").strip() if host is not None else "", tags)
            yield target
            element.clear()
        elif tag == "ReportItem":
            if target is None:  # a host without properties: named by its attribute only
                host = element.getparent()
                target = _target(host.get("name", "").strip() if host is not None else "", {})
                yield target
            yield _item(target, element)
            element.clear()
        else:
            if target is None:
                yield _target(element.get("name", "").strip(), {})
            target = None
            element.clear()
            # Drop the finished host from the root too, so memory stays flat.
            parent = element.getparent()
            if parent is not None:
                parent.remove(element)


FORMAT = Format(
    name="nessus", producer="tenable", title="Nessus .nessus v2 (Tenable)",
    detect=detect, parse=parse, extensions=(".nessus", ".xml"),
    notes="Every ReportItem; severity 0 items are informational asset facts.")
