"""Grype JSON (``grype <image|dir|sbom> -o json``).

One item per match: the vulnerability's id as the scanner id (a CVE, a GHSA …), every CVE
of it and of its related vulnerabilities, the artifact's package (the ecosystem from the
purl, with the scanned distro for OS purls that carry no ``distro`` qualifier, else from
the artifact's type), its first location, and the fix when Grype says ``fixed``.  The
CVSS vector is the highest version the match's record gives, else its related (NVD)
record's.  Grype before 0.30 wrote ``cvssV2``/``cvssV3``/``fixedInVersion`` on the
vulnerability: read too.

The target is the scanned source: an image by the name the user gave, a directory or file
by its path (``.`` names nothing).  Grype writes ``source`` after ``matches``, so the
document is read whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._images import ecosystem_of, references, same_epoch
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    cve_ids,
    ecosystem_for,
    read_json,
    text_or_none,
)

# Grype writes ``matches`` first: in a large report the other keys lie beyond the sniff.
_MATCHES_FIRST = re.compile(r'^\s*\{\s*"matches"\s*:\s*\[\s*(\]|\{\s*"vulnerability"\s*:)')


def detect(sniff: Sniff) -> int:
    keys = sniff.json_keys
    if "matches" in keys and keys & {"source", "distro", "descriptor"}:
        return 100
    if _MATCHES_FIRST.match(sniff.text):
        return 100
    return 0


def _target(report: dict[str, Any]) -> Target:
    source = report.get("source") or {}
    distro = report.get("distro") or {}
    name, version = text_or_none(distro.get("name")), text_or_none(distro.get("version"))
    os_name = f"{name} {version}" if name and version else name
    target = source.get("target")
    artifact: str | None = None
    if isinstance(target, dict):  # an image
        tags = target.get("tags") or []
        artifact = text_or_none(target.get("userInput")) or (
            text_or_none(tags[0]) if tags else None)
    elif isinstance(target, str):  # a directory or file, quoted by some versions: "\".\""
        path = target.strip().strip('"').strip()
        artifact = path if path not in ("", ".", "./") else None
    return Target(artifact=artifact, os=os_name)


def _cvss(records: list[dict[str, Any]]) -> tuple[str | None, float | None]:
    """The vector and base score of the newest CVSS version among the records."""
    best: tuple[str, str, float | None] | None = None
    for record in records:
        entries = list(record.get("cvss") or [])
        for key, version in (("cvssV3", "3"), ("cvssV2", "2")):  # Grype < 0.30
            old = record.get(key)
            if isinstance(old, dict):
                entries.append({"version": version, "vector": old.get("vector"),
                                "metrics": {"baseScore": old.get("baseScore")}})
        for entry in entries:
            vector = text_or_none(entry.get("vector"))
            if not vector:
                continue
            version = str(entry.get("version") or "")
            score = (entry.get("metrics") or {}).get("baseScore")
            score = float(score) if isinstance(score, (int, float)) else None
            if best is None or version > best[0]:
                best = (version, vector, score)
        if best is not None:
            return best[1], best[2]  # the match's own record wins over related ones
    return None, None


def _fix(vuln: dict[str, Any], installed_version: str | None) -> str | None:
    fix = vuln.get("fix")
    if isinstance(fix, dict):
        versions = [v for v in fix.get("versions") or [] if text_or_none(v)]
        # "wont-fix", "not-fixed", "unknown": no version fixes it on this distro.
        if fix.get("state") == "fixed" and versions:
            return same_epoch(str(versions[0]).strip(), installed_version)
        return None
    return text_or_none(vuln.get("fixedInVersion"))


def _item(target: Target, distro: str | None, match: dict[str, Any]) -> ReportItem:
    vuln = match.get("vulnerability") or {}
    artifact = match.get("artifact") or {}
    related = [r for r in match.get("relatedVulnerabilities") or [] if isinstance(r, dict)]
    vuln_id = text_or_none(vuln.get("id")) or "unknown"
    related_ids = [str(r.get("id")) for r in related if r.get("id")]
    locations = artifact.get("locations") or []
    location = text_or_none(locations[0].get("path")) if locations else None
    vector, score = _cvss([vuln, *related])
    description = text_or_none(vuln.get("description")) or next(
        (text_or_none(r.get("description")) for r in related if r.get("description")), None)
    severity = band(vuln.get("severity"))
    if severity == "Unknown":
        severity = next((band(r.get("severity")) for r in related
                         if band(r.get("severity")) != "Unknown"), "Unknown")
    return ReportItem(
        target=target,
        scanner_id=vuln_id,
        cves=cve_ids(vuln_id, related_ids),
        aliases=tuple(dict.fromkeys(i for i in related_ids
                                    if i != vuln_id and not i.upper().startswith("CVE-"))),
        description=description,
        ecosystem=ecosystem_of(text_or_none(artifact.get("purl")), artifact.get("type"),
                               distro, location),
        package=text_or_none(artifact.get("name")),
        installed_version=text_or_none(artifact.get("version")),
        fixed_version=_fix(vuln, text_or_none(artifact.get("version"))),
        location=location,
        severity=severity,
        cvss_vector=vector,
        cvss_score=score,
        references=references([vuln.get("dataSource"), *(vuln.get("urls") or []),
                               *(vuln.get("links") or [])]),
    )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    report = read_json(stream, source)
    if not isinstance(report, dict) or not isinstance(report.get("matches"), list):
        raise ReportError(source, "not a Grype report: no list of matches")
    target = _target(report)
    yield target
    distro = report.get("distro") or {}
    ecosystem = ecosystem_for(text_or_none(distro.get("name")),
                              text_or_none(distro.get("version")))
    for match in report["matches"]:
        if not isinstance(match, dict):
            raise ReportError(source, "a Grype match is not an object")
        yield _item(target, ecosystem, match)


FORMAT = Format(
    name="grype", producer="grype", title="Grype JSON (Anchore)",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every match on its package, with the fix when Grype says fixed; ignored "
          "matches and the SBOM's unaffected packages are not read.")
