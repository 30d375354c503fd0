"""JFrog Xray "unified" vulnerability reports (JSON): the export of Xray's Reports page
and of ``/xray/api/v1/reports/export``, ``{"total_rows", "rows"}``.

One item per row: Xray's issue id as the scanner id (``XRAY-139239``), every CVE of its
``cves`` (the first one's CVSS v3 vector, else v2), the package and version from
``vulnerable_component`` (``npm://jquery:3.4.1``, ``gav://group:artifact:1.0``,
``rpm://7:curl:16:7.29.0-54.el7_7.2``), the fix among ``fixed_versions`` for the installed
version, and the target from ``impacted_artifact`` (``docker://image:tag``) -- a report
covers any number of artifacts.  The rows are streamed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._images import ecosystem_of, pick_fix, references
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    cve_ids,
    json_items,
    text_or_none,
)

# Xray writes a fix as a bound or range: "≥ 1:11.0.5.10-0.el7_7", "[3.5.0]", "(,2.0.1)".
_FIX_DECORATION = re.compile(r"^[\s≥>=\[(,]+|[\s\])]+$")


def detect(sniff: Sniff) -> int:
    keys = sniff.json_keys
    if {"total_rows", "rows"} <= keys and "vulnerable_component" in sniff.text:
        return 100
    return 0


def _component(text: str) -> tuple[str | None, str | None, str | None]:
    """(type word, name, version) of ``vulnerable_component``."""
    kind, sep, rest = text.partition("://")
    if not sep:
        name, _, version = text.rpartition(":")
        return None, name or text, version or None
    if kind == "rpm":
        parts = rest.split(":")  # release:name:…:version-release
        if len(parts) >= 3:
            return kind, parts[1], parts[-1]
    if kind == "deb":
        parts = rest.split(":")  # distribution:release:name:version
        if len(parts) >= 4:
            return kind, parts[2], ":".join(parts[3:])
    name, _, version = rest.rpartition(":")
    return kind, name or rest, version or None


def _fix(row: dict[str, Any], installed: str | None) -> str | None:
    fixes = [_FIX_DECORATION.sub("", str(f)) for f in row.get("fixed_versions") or []]
    return pick_fix(", ".join(f for f in fixes if f), installed)


def _cvss(cves: list[dict[str, Any]]) -> tuple[str | None, float | None]:
    """The vector and score of the row's worst CVE: v3, else v2 (bare)."""
    for vector_key, score_key in (("cvss_v3_vector", "cvss_v3_score"),
                                  ("cvss_v2_vector", "cvss_v2_score")):
        ranked = sorted(cves, key=lambda c: -float(c[score_key]) if isinstance(
            c.get(score_key), (int, float)) else 0.0)
        for cve in ranked:
            vector = text_or_none(cve.get(vector_key))
            if vector:
                score = cve.get(score_key)
                return (vector.removeprefix("CVSS:2.0/"),
                        float(score) if isinstance(score, (int, float)) else None)
    return None, None


def _target(row: dict[str, Any]) -> Target:
    artifact = text_or_none(row.get("impacted_artifact"))
    if artifact and "://" in artifact:
        artifact = artifact.split("://", 1)[1]
    return Target(artifact=artifact)


def _item(target: Target, row: dict[str, Any]) -> ReportItem:
    cves = [c for c in row.get("cves") or [] if isinstance(c, dict)]
    kind, name, installed = _component(str(row.get("vulnerable_component") or ""))
    kind = text_or_none(row.get("package_type")) or kind
    vector, score = _cvss(cves)
    if score is None:
        for key in ("cvss3_max_score", "cvss2_max_score"):
            if isinstance(row.get(key), (int, float)):
                score = float(row[key])
                break
    return ReportItem(
        target=target,
        scanner_id=text_or_none(row.get("issue_id")) or "unknown",
        cves=cve_ids([str(c.get("cve") or "") for c in cves]),
        title=text_or_none(row.get("summary")),
        description=text_or_none(row.get("description")),
        ecosystem=ecosystem_of(None, kind, None),
        package=name,
        installed_version=installed,
        fixed_version=_fix(row, installed),
        location=text_or_none(row.get("path")),
        severity=band(row.get("severity")),
        cvss_vector=vector,
        cvss_score=score,
        references=references(row.get("references")),
    )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    head = stream.read(4096)
    stream.seek(0)
    if not head.strip():
        raise ReportError(source, "the file is empty")
    targets: dict[str | None, Target] = {}
    rows = 0
    for row in json_items(stream, source, "rows.item"):
        rows += 1
        if not isinstance(row, dict):
            raise ReportError(source, "an Xray row is not an object")
        target = _target(row)
        if target.artifact not in targets:
            targets[target.artifact] = target
            yield target
        yield _item(targets[target.artifact], row)
    if rows == 0 and b'"rows"' not in head:
        raise ReportError(source, "not an Xray report: no rows")


FORMAT = Format(
    name="jfrog-xray", producer="jfrog-xray", title="JFrog Xray unified report (JSON)",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every row of the unified vulnerability report on its component and impacted "
          "artifact; license and operational-risk reports are not vulnerability reports and "
          "are not read.")
