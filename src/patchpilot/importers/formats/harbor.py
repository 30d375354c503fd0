"""Harbor vulnerability reports (JSON), as the Harbor API returns an artifact's scan
(``GET …/artifacts/{ref}/additions/vulnerabilities``): the report keyed by its MIME type
(``application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0``, or the
``application/vnd.security.vulnerability.report; version=1.1`` of newer scanners), or the
report object itself.

Whichever scanner Harbor ran (Trivy, Clair …), the report is the scanner-adapter spec's:
``vulnerabilities`` with ``id``, ``package``, ``version``, ``fix_version``, ``severity``,
``links``, and in v1.1 ``cwe_ids``, ``preferred_cvss`` and the vendor's CVSS.  The target
is the ``artifact`` (repository and tag) when the report names it, else empty: the API
call names the image, not its answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._images import image_name, references
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    cve_ids,
    cwe_ids,
    read_json,
    text_or_none,
)

_MIME_MARKS = ("vuln.report", "vulnerability.report")


def _is_mime_key(key: str) -> bool:
    return key.startswith("application/") and any(m in key for m in _MIME_MARKS)


def detect(sniff: Sniff) -> int:
    keys = sniff.json_keys
    if any(_is_mime_key(k) for k in keys):
        return 100
    if {"generated_at", "scanner", "vulnerabilities"} <= keys:
        return 90
    return 0


def _cvss(vuln: dict[str, Any]) -> tuple[str | None, float | None]:
    preferred = vuln.get("preferred_cvss") or {}
    for vector_key, score_key in (("vector_v3", "score_v3"), ("vector_v2", "score_v2")):
        vector = text_or_none(preferred.get(vector_key))
        if vector:
            score = preferred.get(score_key)
            return vector, float(score) if isinstance(score, (int, float)) else None
    return None, None


def _item(target: Target, vuln: dict[str, Any]) -> ReportItem:
    vuln_id = text_or_none(vuln.get("id")) or "unknown"
    vector, score = _cvss(vuln)
    return ReportItem(
        target=target,
        scanner_id=vuln_id,
        cves=cve_ids(vuln_id),
        description=text_or_none(vuln.get("description")),
        package=text_or_none(vuln.get("package")),
        installed_version=text_or_none(vuln.get("version")),
        fixed_version=text_or_none(vuln.get("fix_version")),
        severity=band(vuln.get("severity")),
        cvss_vector=vector,
        cvss_score=score,
        references=references(vuln.get("links")),
        cwes=cwe_ids(vuln.get("cwe_ids") or []),
    )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    document = read_json(stream, source)
    if not isinstance(document, dict):
        raise ReportError(source, "not a Harbor report: the document is not an object")
    reports = [v for k, v in document.items() if _is_mime_key(k)] or [document]
    for report in reports:
        # A report without findings may leave "vulnerabilities" out, not "scanner".
        if not isinstance(report, dict) or not ({"vulnerabilities", "scanner"} & report.keys()) \
                or not isinstance(report.get("vulnerabilities") or [], list):
            raise ReportError(source, "not a Harbor report: no list of vulnerabilities")
        artifact = report.get("artifact") or {}
        target = Target(artifact=image_name(None, artifact.get("repository"),
                                            artifact.get("tag"), artifact.get("digest")))
        yield target
        for vuln in report.get("vulnerabilities") or []:
            yield _item(target, vuln)


FORMAT = Format(
    name="harbor", producer="harbor", title="Harbor vulnerability report (JSON)",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every vulnerability of the scanner-adapter report Harbor returns, on its "
          "package; the scanner's name and the report's overall severity are not read.")
