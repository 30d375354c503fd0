"""CycloneDX with vulnerabilities (VEX/VDR, https://cyclonedx.org/docs/1.6/json/), JSON
and XML: what grype, Dependency-Track, jake, Snyk, Trivy … write as a vulnerability report.

Each vulnerability gives one item per component it ``affects`` (a ``ref`` to a
component's ``bom-ref``; the package from its purl, else its name and version).  The
``id`` is the scanner id when it is an advisory id, else ``<source>:<id>`` (OSS Index
names its records by UUID); CVEs and other advisory ids come from the id and the
``references``.  The rating of the newest CVSS method gives vector, score and severity.
A VEX ``analysis.state`` of ``not_affected`` or ``false_positive`` is skipped ("VEX:
not affected").  The XML reader also reads the 1.0 vulnerability extension
(``v:vulnerability`` inside a component or with a ``ref``, grype's CycloneDX 1.2).

A BOM without vulnerabilities is an SBOM, an inventory: refused here, it is scanned
with ``patchpilot scan file``.  The target is the BOM's ``metadata.component`` (the image
or application it describes), else empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from lxml import etree

from patchpilot.importers.formats._advisories import advisory_ids, purl_package, split_ids
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    cwe_ids,
    ecosystem_for,
    read_json,
    score_band,
    text_or_none,
    xml_events,
)

_SBOM = ("this CycloneDX BOM lists no vulnerabilities: it is an SBOM (an inventory); "
         "scan it with `patchpilot scan file` instead")
_NOT_AFFECTED = {"not_affected", "false_positive"}
# Rating methods, best first; the vector prefix a bare v3 vector gets from its method.
_METHODS = ("CVSSv4", "CVSSv31", "CVSSv3", "CVSSv2")
_PREFIX = {"CVSSv4": "CVSS:4.0/", "CVSSv31": "CVSS:3.1/", "CVSSv3": "CVSS:3.0/"}


def detect(sniff: Sniff) -> int:
    if "bomFormat" in sniff.json_keys and re.search(r'"bomFormat"\s*:\s*"CycloneDX"',
                                                   sniff.text):
        return 50
    return 0


# The root's own namespace among its declarations (grype's also declares the vulnerability
# extension's, which Sniff.xml_namespace may name instead).
_BOM_NAMESPACE = re.compile(r'<(?:\w+:)?bom\b[^>]*\sxmlns(?::\w+)?="http://cyclonedx\.org/schema/bom/')


def detect_xml(sniff: Sniff) -> int:
    if sniff.xml_root == "bom" and _BOM_NAMESPACE.search(sniff.text):
        return 50
    return 0


# --- the shared item builder, on the JSON shape (the XML reader builds the same dicts) ---


def _rating(ratings: list[dict[str, Any]]) -> tuple[str, str | None, float | None]:
    """(severity, vector, score): the vector and score of the newest CVSS method's rating,
    the first severity word any rating gives (else the score's band).  A rating without a
    CVSS method (grype's "Unknown" with score 0, OWASP Risk) gives no score."""
    cvss = sorted((r for r in ratings if r.get("method") in _METHODS),
                  key=lambda r: _METHODS.index(r["method"]))
    best = cvss[0] if cvss else {}
    vector = text_or_none(best.get("vector"))
    if vector and not vector.startswith("CVSS:") and best.get("method") in _PREFIX:
        vector = _PREFIX[best["method"]] + vector
    score = best.get("score")
    score = float(score) if isinstance(score, (int, float)) else None
    word = next((band(r["severity"]) for r in [best, *ratings]
                 if r.get("severity") and band(r["severity"]) != "Unknown"), None)
    if score == 0 and word not in (None, "None"):
        score = None  # grype 0.7 writes base 0 for an NVD record it has no score of
    return word or score_band(score), vector, score


def _scanner_id(vuln: dict[str, Any]) -> str:
    raw = str(vuln.get("id") or "").strip()
    ids = advisory_ids(raw)
    if ids and ids[0].upper() == raw.upper():
        return ids[0]
    source = re.sub(r"[^a-z0-9]+", "-", str((vuln.get("source") or {}).get("name") or "")
                    .lower()).strip("-")
    return f"{source or 'cyclonedx'}:{raw}"


def _package(component: dict[str, Any], vuln: dict[str, Any]
             ) -> tuple[str | None, str | None, str | None]:
    """(ecosystem, name, version) of the affected component."""
    purl = text_or_none(component.get("purl"))
    package = purl_package(purl)
    if package is not None:
        return str(package.ecosystem), package.name, package.version
    # grype's extension names the distribution in the source: "vulnerabilities:debian:10".
    parts = str((vuln.get("source") or {}).get("name") or "").split(":")
    ecosystem = ecosystem_for(parts[1], parts[2]) if len(parts) == 3 else None
    if ecosystem is None and purl and purl.startswith("pkg:"):
        ecosystem = ecosystem_for(purl[4:].split("/", 1)[0])
    name = text_or_none(component.get("name"))
    group = text_or_none(component.get("group"))
    if name and group and ecosystem == "Maven":
        name = f"{group}:{name}"
    return ecosystem, name, text_or_none(component.get("version"))


def _items(target: Target, vuln: dict[str, Any], components: dict[str, dict[str, Any]],
           line: int | None = None) -> Iterator[ReportItem | Skipped]:
    state = str((vuln.get("analysis") or {}).get("state") or "").lower()
    refs = [str(a.get("ref")) for a in vuln.get("affects") or [] if a.get("ref")] or [""]
    if state in _NOT_AFFECTED:
        for _ref in refs:
            yield Skipped("VEX: not affected", line)
        return
    scanner_id = _scanner_id(vuln)
    cves, others = split_ids([*advisory_ids(str(vuln.get("id") or "")),
                              *(advisory_ids(str(r.get("id") or ""))[0]
                                for r in vuln.get("references") or []
                                if advisory_ids(str(r.get("id") or "")))])
    severity, vector, score = _rating(vuln.get("ratings") or [])
    # jake/OSS Index put a cut summary in "description" and the whole text in "detail".
    description = text_or_none(vuln.get("description"))
    detail = text_or_none(vuln.get("detail"))
    for ref in refs:
        component = components.get(ref) or ({"purl": ref} if ref.startswith("pkg:") else {})
        ecosystem, name, version = _package(component, vuln)
        yield ReportItem(
            target=target,
            scanner_id=scanner_id,
            cves=cves,
            aliases=tuple(o for o in others if o != scanner_id),
            description=detail or description,
            ecosystem=ecosystem,
            package=name,
            installed_version=version,
            severity=severity,
            cvss_vector=vector,
            cvss_score=score,
            solution=text_or_none(vuln.get("recommendation")),
            references=tuple(dict.fromkeys(str(a["url"]) for a in vuln.get("advisories") or []
                                           if a.get("url"))),
            cwes=cwe_ids([c for c in vuln.get("cwes") or [] if isinstance(c, (int, str))]),
            informational=severity == "None",
            line=line,
        )


def _metadata_target(component: dict[str, Any] | None) -> Target:
    name = text_or_none((component or {}).get("name"))
    return Target(artifact=name) if name else Target()


# --- JSON --------------------------------------------------------------------------------


def _walk(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for component in components:
        yield component
        yield from _walk(component.get("components") or [])


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    bom = read_json(stream, source)
    if not isinstance(bom, dict) or bom.get("bomFormat") != "CycloneDX":
        raise ReportError(source, "not a CycloneDX BOM: no \"bomFormat\": \"CycloneDX\"")
    vulnerabilities = bom.get("vulnerabilities") or []
    if not vulnerabilities:
        raise ReportError(source, _SBOM)
    components = {str(c["bom-ref"]): c for c in _walk(bom.get("components") or [])
                  if c.get("bom-ref")}
    target = _metadata_target((bom.get("metadata") or {}).get("component"))
    yield target
    for vuln in vulnerabilities:
        yield from _items(target, vuln, components)


# --- XML ---------------------------------------------------------------------------------


def _local(element: Any) -> str:
    return str(etree.QName(element).localname) if isinstance(element.tag, str) else ""


def _child(element: Any, name: str) -> Any:
    return next((c for c in element if _local(c) == name), None)


def _children(element: Any, name: str) -> list[Any]:
    return [c for c in element if _local(c) == name]


def _text_of(element: Any, name: str) -> str | None:
    found = _child(element, name)
    return text_or_none(found.text) if found is not None else None


def _component(element: Any) -> dict[str, Any]:
    return {"bom-ref": element.get("bom-ref"), "name": _text_of(element, "name"),
            "version": _text_of(element, "version"), "group": _text_of(element, "group"),
            "purl": _text_of(element, "purl")}


def _vulnerability(element: Any) -> dict[str, Any]:
    """A 1.4+ ``vulnerability`` or a 1.0 extension ``v:vulnerability`` as the JSON dict."""
    source = _child(element, "source")
    ratings = []
    for rating in _children(_child(element, "ratings") if _child(element, "ratings")
                            is not None else element, "rating"):
        score = _child(rating, "score")
        base = _text_of(score, "base") if score is not None and len(score) else (
            text_or_none(score.text) if score is not None else None)
        ratings.append({"score": float(base) if base else None,
                        "severity": _text_of(rating, "severity"),
                        "method": _text_of(rating, "method"),
                        "vector": _text_of(rating, "vector")})
    cwes = _child(element, "cwes")
    advisories = _child(element, "advisories")
    references = _child(element, "references")
    analysis = _child(element, "analysis")
    affects = _child(element, "affects")
    recommendations = _child(element, "recommendations")
    return {
        "id": _text_of(element, "id"),
        "source": {"name": (source.get("name") or _text_of(source, "name"))
                   if source is not None else None},
        "references": [{"id": _text_of(r, "id")} for r in _children(references, "reference")]
        if references is not None else [],
        "ratings": ratings,
        "cwes": [c.text.strip() for c in _children(cwes, "cwe") if c.text]
        if cwes is not None else [],
        "description": _text_of(element, "description"),
        "detail": _text_of(element, "detail"),
        "recommendation": _text_of(element, "recommendation") or (
            "\n".join(t for r in _children(recommendations, "recommendation")
                      if (t := text_or_none(r.text))) or None
            if recommendations is not None else None),
        "advisories": [{"url": _text_of(a, "url") or text_or_none(a.text)}
                       for a in _children(advisories, "advisory")]
        if advisories is not None else [],
        "analysis": {"state": _text_of(analysis, "state")} if analysis is not None else {},
        "affects": [{"ref": _text_of(t, "ref")} for t in _children(affects, "target")]
        if affects is not None else ([{"ref": element.get("ref")}] if element.get("ref")
                                     else []),
    }


def parse_xml(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    components: dict[str, dict[str, Any]] = {}
    target: Target | None = None
    found = False
    for _event, element in xml_events(stream, source,
                                      tags=("{*}component", "{*}vulnerability")):
        parent = element.getparent()
        if _local(element) == "component":
            if parent is not None and _local(parent) == "metadata":
                target = _metadata_target(_component(element))
                yield target
            else:
                component = _component(element)
                components[component["bom-ref"] or f"#{len(components)}"] = component
                element.clear()
            continue
        if target is None:
            target = Target()
            yield target
        found = True
        vuln = _vulnerability(element)
        owner = parent.getparent() if parent is not None else None
        if owner is not None and _local(owner) == "component":
            # The 1.0 extension inside its component: that component is the affected one
            # (grype's "ref" there is the vulnerability's own uuid).
            components["#owner"] = _component(owner)
            vuln["affects"] = [{"ref": "#owner"}]
        yield from _items(target, vuln, components, element.sourceline)
        element.clear()
    if not found:
        raise ReportError(source, _SBOM)


FORMAT = Format(
    name="cyclonedx", producer="cyclonedx", title="CycloneDX JSON with vulnerabilities (VEX)",
    detect=detect, parse=parse, extensions=(".cdx.json", ".json"),
    notes="Every vulnerability on every component it affects; VEX not_affected and "
          "false_positive are skipped; a BOM without vulnerabilities is refused (an SBOM).")

FORMAT_XML = Format(
    name="cyclonedx-xml", producer="cyclonedx", title="CycloneDX XML with vulnerabilities",
    detect=detect_xml, parse=parse_xml, extensions=(".cdx.xml", ".xml"),
    notes="As the JSON reader, plus the 1.0 vulnerability extension (grype); a BOM "
          "without vulnerabilities is refused (an SBOM).")
