"""OWASP Dependency-Check reports (https://jeremylong.github.io/DependencyCheck/), XML
(``dependency-check-report.xml``, schema 1.x-2.x) and JSON.

Streamed dependency by dependency: each ``vulnerability`` of a dependency is one item --
the vulnerability's ``name`` (a CVE, GHSA, or a bare npm/OSS Index number, then
``dependency-check:<name>``) as the scanner id, the package from the dependency's purl
(``identifiers/package``; older reports: a ``maven`` identifier ``group:artifact:version``),
the file path as location, the CVSS v3 vector (else v2) rebuilt from its metrics.
``suppressedVulnerability`` entries are skipped ("suppressed in Dependency-Check").  The
target is the report's project name; reports without one (the CLI's default) give an
empty target.
"""

from __future__ import annotations

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
    number,
    read_json,
    score_band,
    text_or_none,
    xml_events,
)

_SUPPRESSED = "suppressed in Dependency-Check"
# (metric key in the report, vector key) in vector order; a value's first letter is its
# vector letter (NETWORK -> N, ADJACENT_NETWORK -> A, PARTIAL -> P, SINGLE -> S …).
_V3 = (("attackVector", "AV"), ("attackComplexity", "AC"), ("privilegesRequired", "PR"),
       ("userInteraction", "UI"), ("scope", "S"), ("confidentialityImpact", "C"),
       ("integrityImpact", "I"), ("availabilityImpact", "A"))
_V2 = (("accessVector", "AV"), ("accessComplexity", "AC"), ("authenticationr", "Au"),
       ("confidentialImpact", "C"), ("integrityImpact", "I"), ("availabilityImpact", "A"))


def detect(sniff: Sniff) -> int:
    namespace = sniff.xml_namespace or ""
    if sniff.xml_root == "analysis" and "jeremylong.github.io/DependencyCheck" in namespace:
        return 100
    return 0


def detect_json(sniff: Sniff) -> int:
    keys = sniff.json_keys
    return 100 if {"reportSchema", "scanInfo", "dependencies"} <= keys else 0


def _vector(metrics: dict[str, Any], keys: tuple[tuple[str, str], ...], prefix: str
            ) -> str | None:
    parts = []
    for key, short in keys:
        value = str(metrics.get(key) or "").strip().upper()
        if not value:
            return None
        parts.append(f"{short}:{value[0]}")
    return prefix + "/".join(parts)


def _package(dependency: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(ecosystem, name, version) from the purl, else a maven identifier."""
    location = text_or_none(dependency.get("filePath"))
    for purl in dependency.get("packages") or []:
        package = purl_package(purl, location)
        if package is not None:
            return str(package.ecosystem), package.name, package.version
    for kind, name in dependency.get("identifiers") or []:
        parts = name.split(":")
        if kind == "maven" and len(parts) == 3:
            return "Maven", f"{parts[0]}:{parts[1]}", parts[2]
    return None, None, None


def _items(target: Target, dependency: dict[str, Any], line: int | None
           ) -> Iterator[ReportItem | Skipped]:
    ecosystem, name, version = _package(dependency)
    location = text_or_none(dependency.get("filePath"))
    for vuln in dependency.get("vulnerabilities") or []:
        raw = text_or_none(vuln.get("name")) or ""
        ids = advisory_ids(raw)
        scanner_id = ids[0] if ids and ids[0].upper() == raw.upper() else \
            f"dependency-check:{raw}"
        cves, others = split_ids([*ids, *advisory_ids(*(vuln.get("aliases") or []))])
        v3, v2 = vuln.get("cvssv3") or {}, vuln.get("cvssv2") or {}
        v3_vector = _vector(v3, _V3, f"CVSS:{v3.get('version') or '3.1'}/") if v3 else None
        score = number(v3.get("baseScore")) if v3 else None
        if score is None:
            score = number(v2.get("score")) or number(vuln.get("cvssScore"))
        severity = band(vuln.get("severity"))
        if severity == "Unknown":
            severity = score_band(score)
        yield ReportItem(
            target=target,
            scanner_id=scanner_id,
            cves=cves,
            aliases=tuple(o for o in others if o != scanner_id),
            description=text_or_none(vuln.get("description")),
            ecosystem=ecosystem,
            package=name,
            installed_version=version,
            location=location,
            severity=severity,
            cvss_vector=v3_vector or (_vector(v2, _V2, "") if v2 else None),
            cvss_score=score,
            references=tuple(dict.fromkeys(u for u in vuln.get("references") or [] if u)),
            # Schema 1.x samples write "CWE-00 …" for none.
            cwes=tuple(c for c in cwe_ids(vuln.get("cwes") or []) if c != "CWE-0"),
            line=line,
        )
    for _suppressed in dependency.get("suppressedVulnerabilities") or []:
        yield Skipped(_SUPPRESSED, line)


# --- XML ---------------------------------------------------------------------------------


def _local(element: Any) -> str:
    return str(etree.QName(element).localname) if isinstance(element.tag, str) else ""


def _find(element: Any, *path: str) -> list[Any]:
    """The elements at a path of local names below ``element`` (any namespace)."""
    found = [element]
    for name in path:
        found = [c for e in found for c in e if _local(c) == name]
    return found


def _text(element: Any, *path: str) -> str | None:
    found = _find(element, *path)
    return text_or_none(found[0].text) if found else None


def _metrics(element: Any, name: str) -> dict[str, str]:
    found = _find(element, name)
    return {_local(c): (c.text or "").strip() for c in found[0]} if found else {}


def _metrics_inline(element: Any) -> dict[str, str]:
    return {_local(c): (c.text or "").strip() for c in element
            if _local(c).startswith("cvss") and _local(c) != "cvssScore"}


def _vulnerability(element: Any) -> dict[str, Any]:
    v2 = _metrics(element, "cvssV2")
    if not v2 and _text(element, "cvssScore"):  # schema 1.x: the v2 metrics inline
        v2 = {k.removeprefix("cvss")[:1].lower() + k.removeprefix("cvss")[1:]: v
              for k, v in _metrics_inline(element).items()}
    return {
        "name": _text(element, "name"),
        "severity": _text(element, "severity"),
        "cvssScore": _text(element, "cvssScore"),
        "cvssv2": v2,
        "cvssv3": _metrics(element, "cvssV3"),
        "cwes": [c.text for c in [*_find(element, "cwes", "cwe"), *_find(element, "cwe")]
                 if c.text],
        "description": _text(element, "description"),
        "references": [u.text.strip() for u in _find(element, "references", "reference", "url")
                       if u.text],
    }


def _dependency(element: Any) -> dict[str, Any]:
    return {
        "filePath": _text(element, "filePath"),
        "packages": [p for p in (_text(e, "id") for e in _find(element, "identifiers",
                                                                "package")) if p],
        "identifiers": [(e.get("type"), _text(e, "name") or "")
                        for e in _find(element, "identifiers", "identifier")],
        "vulnerabilities": [_vulnerability(v) for v in
                            _find(element, "vulnerabilities", "vulnerability")],
        "suppressedVulnerabilities": _find(element, "vulnerabilities",
                                           "suppressedVulnerability"),
    }


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    target: Target | None = None
    for _event, element in xml_events(stream, source,
                                      tags=("{*}projectInfo", "{*}dependency")):
        if _local(element) == "projectInfo":
            name = _text(element, "name")
            target = Target(artifact=name) if name else Target()
            yield target
            continue
        if target is None:
            target = Target()
            yield target
        yield from _items(target, _dependency(element), element.sourceline)
        element.clear()
    if target is None:
        raise ReportError(source, "not a Dependency-Check report: no projectInfo")


# --- JSON --------------------------------------------------------------------------------


def parse_json(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    report = read_json(stream, source)
    if not isinstance(report, dict) or "dependencies" not in report:
        raise ReportError(source, "not a Dependency-Check report: no \"dependencies\"")
    name = text_or_none((report.get("projectInfo") or {}).get("name"))
    target = Target(artifact=name) if name else Target()
    yield target
    for dependency in report.get("dependencies") or []:
        vulns = [{**v, "references": [r.get("url") for r in v.get("references") or []],
                  "cwes": v.get("cwes") or []} for v in dependency.get("vulnerabilities") or []]
        yield from _items(target, {
            "filePath": dependency.get("filePath"),
            "packages": [p.get("id") for p in dependency.get("packages") or [] if p.get("id")],
            "vulnerabilities": vulns,
            "suppressedVulnerabilities": dependency.get("suppressedVulnerabilities") or [],
        }, None)


FORMAT = Format(
    name="dependency-check", producer="dependency-check",
    title="OWASP Dependency-Check XML", detect=detect, parse=parse, extensions=(".xml",),
    notes="Every vulnerability of every dependency, package from its purl; suppressed "
          "vulnerabilities are skipped, evidence and related dependencies left out.")

FORMAT_JSON = Format(
    name="dependency-check-json", producer="dependency-check",
    title="OWASP Dependency-Check JSON", detect=detect_json, parse=parse_json,
    extensions=(".json",),
    notes="As the XML reader, from the JSON report (`--format JSON`).")
