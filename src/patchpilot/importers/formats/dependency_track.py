"""Dependency-Track's Finding Packaging Format (FPF, ``GET /api/v1/finding/project/{uuid}
/export``): one project's findings as Dependency-Track analysed them.

Each finding is one item: the vulnerability's ``vulnId`` (a CVE, GHSA, OSV … id; a bare
id of another source is prefixed with it, ``ossindex:…``), its aliases' CVEs and other
ids, the component from its purl (else its group, name and version), severity and CVSS
v3 (else v2) vector and score.  Findings analysed as ``NOT_AFFECTED`` or
``FALSE_POSITIVE``, or suppressed, are skipped.  The target is the project (name, and
version when it has one, as Dependency-Track keeps one project per version).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

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
)

_NOT_AFFECTED = {"NOT_AFFECTED", "FALSE_POSITIVE"}


def detect(sniff: Sniff) -> int:
    if {"meta", "project"} <= sniff.json_keys and '"Dependency-Track"' in sniff.text[:4000]:
        return 100
    return 0


def _target(project: dict[str, Any]) -> Target:
    name = text_or_none(project.get("name"))
    version = text_or_none(project.get("version"))
    if not name:
        return Target()
    return Target(artifact=f"{name}@{version}" if version else name)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _item(target: Target, finding: dict[str, Any]) -> ReportItem | Skipped:
    analysis = finding.get("analysis") or {}
    if analysis.get("isSuppressed"):
        return Skipped("suppressed in Dependency-Track")
    if str(analysis.get("state") or "").upper() in _NOT_AFFECTED:
        return Skipped("VEX: not affected")
    vuln = finding.get("vulnerability") or {}
    component = finding.get("component") or {}
    raw = str(vuln.get("vulnId") or "").strip()
    ids = advisory_ids(raw)
    scanner_id = ids[0] if ids and ids[0].upper() == raw.upper() else \
        f"{str(vuln.get('source') or 'dependency-track').lower()}:{raw}"
    alias_ids = [i for alias in vuln.get("aliases") or [] for key, value in alias.items()
                 if key.endswith("Id") and isinstance(value, str)
                 for i in advisory_ids(value)]
    cves, others = split_ids([*ids, *alias_ids])
    package = purl_package(text_or_none(component.get("purl")))
    ecosystem: str | None
    name: str | None
    version: str | None
    if package is not None:
        ecosystem, name, version = str(package.ecosystem), package.name, package.version
    else:
        purl = str(component.get("purl") or "")
        ecosystem = ecosystem_for(purl[4:].split("/", 1)[0]) if purl.startswith("pkg:") \
            else None
        group, name = text_or_none(component.get("group")), text_or_none(component.get("name"))
        name = f"{group}:{name}" if group and name and ecosystem == "Maven" else name
        version = text_or_none(component.get("version"))
    v3 = text_or_none(vuln.get("cvssV3Vector"))
    v4 = text_or_none(vuln.get("cvssV4Vector"))
    scores = (_number(vuln.get(key)) for key in ("cvssV4Score", "cvssV3BaseScore",
                                                  "cvssV2BaseScore"))
    score = next((s for s in scores if s is not None), None)
    severity = band(vuln.get("severity"))  # UNASSIGNED -> Unknown
    if severity == "Unknown":
        severity = score_band(score)
    return ReportItem(
        target=target,
        scanner_id=scanner_id,
        cves=cves,
        aliases=tuple(o for o in others if o != scanner_id),
        title=text_or_none(vuln.get("title")),
        description=text_or_none(vuln.get("description")),
        ecosystem=ecosystem,
        package=name,
        installed_version=version,
        severity=severity,
        cvss_vector=v4 or v3 or text_or_none(vuln.get("cvssV2Vector")),
        cvss_score=score,
        solution=text_or_none(vuln.get("recommendation")),
        cwes=cwe_ids(vuln.get("cweId"), [c.get("cweId") for c in vuln.get("cwes") or []
                                         if isinstance(c.get("cweId"), int)]),
        informational=severity == "None",
    )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    report = read_json(stream, source)
    if not isinstance(report, dict) or "project" not in report:
        raise ReportError(source, "not a Dependency-Track finding export: no \"project\"")
    target = _target(report.get("project") or {})
    yield target
    # An export without findings ("findings" missing or null) is a project with none.
    for finding in report.get("findings") or []:
        yield _item(target, finding)


FORMAT = Format(
    name="dependency-track", producer="dependency-track",
    title="Dependency-Track finding export (FPF)", detect=detect, parse=parse,
    extensions=(".fpf", ".json"),
    notes="Every finding of the project with its aliases; suppressed, not-affected and "
          "false-positive findings are skipped, the analysis comments left out.")
