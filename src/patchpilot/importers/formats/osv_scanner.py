"""OSV-Scanner JSON (``osv-scanner --format json``): Google's scanner of lock files,
SBOMs and images against osv.dev.

Streamed source by source (``results.item``): each package's vulnerabilities, one item
per *group* (OSV-Scanner groups the records that are aliases of each other, a GHSA and
its PYSEC twin, into one), keyed by the group's first id; the group's aliases give the
CVEs and other ids, its ``max_severity`` the score.  The fixed version is the nearest
``fixed`` event of the records' ranges for that package.  The report names no project:
its Target is empty (the import uses ``--asset``), the lock file is each item's location.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._advisories import nearest_fixed, split_ids
from patchpilot.importers.model import (
    Format,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    cwe_ids,
    ecosystem_for,
    json_items,
    score_band,
    text_or_none,
)


def detect(sniff: Sniff) -> int:
    # "results" alone is too common a key; OSV-Scanner's results hold "source"/"packages".
    if "results" in sniff.json_keys and '"packages"' in sniff.text and (
            '"source"' in sniff.text and '"vulnerabilities"' in sniff.text):
        return 100 if ('"groups"' in sniff.text or "experimental_config" in sniff.json_keys)\
            else 60
    return 0


def _vector(records: list[dict[str, Any]]) -> str | None:
    by_type: dict[str, str] = {}
    for record in records:
        for severity in record.get("severity") or []:
            kind, score = severity.get("type"), text_or_none(severity.get("score"))
            if kind and score and kind not in by_type:
                by_type[kind] = score
    for kind in ("CVSS_V4", "CVSS_V3", "CVSS_V2"):
        if kind in by_type:
            return by_type[kind]
    return None


def _fixes(records: list[dict[str, Any]], name: str) -> list[str]:
    fixes: list[str] = []
    for record in records:
        for affected in record.get("affected") or []:
            if (affected.get("package") or {}).get("name") != name:
                continue
            for ranges in affected.get("ranges") or []:
                fixes.extend(str(e["fixed"]) for e in ranges.get("events") or [] if "fixed" in e)
    return fixes


def _groups(package: dict[str, Any]) -> list[tuple[list[str], list[str], str | None]]:
    """(ids, aliases, max_severity) per group; records without a group form their own."""
    groups = [([str(i) for i in g.get("ids") or []], [str(a) for a in g.get("aliases") or []],
               text_or_none(g.get("max_severity"))) for g in package.get("groups") or []]
    grouped = {i for ids, _, _ in groups for i in ids}
    groups.extend(([str(record["id"])], [str(a) for a in record.get("aliases") or []], None)
                  for record in package.get("vulnerabilities") or []
                  if record.get("id") not in grouped)
    return [g for g in groups if g[0]]


def _items(target: Target, location: str | None, package: dict[str, Any]
           ) -> Iterator[ReportItem]:
    about = package.get("package") or {}
    name, version = text_or_none(about.get("name")), text_or_none(about.get("version"))
    ecosystem = ecosystem_for(about.get("ecosystem")) or text_or_none(about.get("ecosystem"))
    records = {str(r.get("id")): r for r in package.get("vulnerabilities") or []}
    for ids, aliases, max_severity in _groups(package):
        members = [records[i] for i in ids if i in records]
        first = members[0] if members else {}
        cves, others = split_ids([*ids, *aliases])
        scanner_id = next((i for i in ids if not i.upper().startswith("CVE-")), ids[0])
        score = float(max_severity) if max_severity else None
        word = next((band((r.get("database_specific") or {}).get("severity"))
                     for r in members if (r.get("database_specific") or {}).get("severity")),
                    None)
        yield ReportItem(
            target=target,
            scanner_id=scanner_id,
            cves=cves,
            aliases=tuple(o for o in others if o != scanner_id),
            title=text_or_none(first.get("summary")),
            description=text_or_none(first.get("details")),
            ecosystem=ecosystem,
            package=name,
            installed_version=version,
            fixed_version=nearest_fixed(ecosystem, version, _fixes(members, name or "")),
            location=location,
            severity=score_band(score) if score is not None else (word or "Unknown"),
            cvss_vector=_vector(members),
            cvss_score=score,
            references=tuple(dict.fromkeys(
                str(ref["url"]) for r in members for ref in r.get("references") or []
                if ref.get("url"))),
            cwes=cwe_ids([c.get("cweId", "") for r in members for a in r.get("affected") or []
                          for c in (a.get("database_specific") or {}).get("cwes") or []],
                         [c for r in members
                          for c in (r.get("database_specific") or {}).get("cwe_ids") or []]),
        )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    target = Target()
    yield target
    for result in json_items(stream, source, "results.item"):
        location = text_or_none((result.get("source") or {}).get("path"))
        for package in result.get("packages") or []:
            yield from _items(target, location, package)
            if package.get("license_violations"):  # --experimental-licenses
                yield Skipped("license finding")


FORMAT = Format(
    name="osv-scanner", producer="osv-scanner", title="OSV-Scanner JSON",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every package's vulnerability groups (one item per group of aliases, with the "
          "nearest fixed version); license and container-layer details are left out.")
