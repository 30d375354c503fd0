"""GitLab dependency scanning reports (``gl-dependency-scanning-report.json``, the
security report schema, https://gitlab.com/gitlab-org/security-products/security-report-schemas).

Each vulnerability is one item: its Gemnasium advisory as the scanner id
(``gemnasium:<uuid>``; without one, the first CVE/GHSA identifier), every CVE identifier,
the dependency's package and version, the lock file as location (its
``dependency_files`` entry says the package manager, hence the ecosystem), the fixed
version read off Gemnasium's "Upgrade to version X or above." solution.  The report names
no project: the target is empty (the import uses ``--asset``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._advisories import advisory_ids, split_ids
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
    text_or_none,
)

_UPGRADE = re.compile(r"Upgrade to (?:version )?(\S+?) or (?:above|later)", re.IGNORECASE)


def detect(sniff: Sniff) -> int:
    keys = sniff.json_keys
    if "vulnerabilities" in keys and re.search(r'"type"\s*:\s*"dependency_scanning"',
                                               sniff.text):
        return 100
    # The "scan" object comes last: past the head of a big report, the dependency files
    # still tell dependency scanning from GitLab's other report types.
    if {"vulnerabilities", "dependency_files"} <= keys and not re.search(
            r'"type"\s*:\s*"(?:container_scanning|sast|dast|secret_detection|'
            r'coverage_fuzzing|api_fuzzing|cluster_image_scanning)"', sniff.text):
        return 90
    return 0


def _item(target: Target, vuln: dict[str, Any], managers: dict[str, str]) -> ReportItem:
    location = vuln.get("location") or {}
    dependency = location.get("dependency") or {}
    path = text_or_none(location.get("file"))
    identifiers = vuln.get("identifiers") or []
    gemnasium = next((text_or_none(i.get("value")) for i in identifiers
                      if i.get("type") == "gemnasium"), None)
    ids = advisory_ids(*(str(i.get("value") or "") for i in identifiers
                         if i.get("type") != "gemnasium"))
    scanner_id = f"gemnasium:{gemnasium}" if gemnasium else (
        ids[0] if ids else f"gitlab:{vuln.get('id')}")
    cves, others = split_ids(ids)
    solution = text_or_none(vuln.get("solution"))
    fixed = _UPGRADE.search(solution or "")
    return ReportItem(
        target=target,
        scanner_id=scanner_id,
        cves=cves,
        aliases=tuple(o for o in others if o != scanner_id),
        title=text_or_none(vuln.get("name")) or text_or_none(vuln.get("message")),
        description=text_or_none(vuln.get("description")),
        ecosystem=ecosystem_for(managers.get(path or "")),
        package=text_or_none((dependency.get("package") or {}).get("name")),
        installed_version=text_or_none(dependency.get("version")),
        fixed_version=fixed.group(1).rstrip(".") if fixed else None,
        location=path,
        severity=band(vuln.get("severity")),  # "Unknown" stays Unknown
        solution=solution,
        references=tuple(dict.fromkeys(
            [str(link["url"]) for link in vuln.get("links") or [] if link.get("url")]
            + [str(i["url"]) for i in identifiers if i.get("url")])),
        cwes=cwe_ids([str(i.get("value")) for i in identifiers if i.get("type") == "cwe"]),
        informational=band(vuln.get("severity")) == "None",
    )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    report = read_json(stream, source)
    if not isinstance(report, dict) or not isinstance(report.get("vulnerabilities"), list):
        raise ReportError(source, "not a GitLab security report: no \"vulnerabilities\" list")
    scan_type = (report.get("scan") or {}).get("type")
    if scan_type not in (None, "dependency_scanning"):
        raise ReportError(source, f"a GitLab {scan_type} report, not dependency scanning")
    managers = {str(f.get("path")): str(f.get("package_manager") or "")
                for f in report.get("dependency_files") or []}
    target = Target()
    yield target
    for vuln in report["vulnerabilities"]:
        yield _item(target, vuln, managers)


FORMAT = Format(
    name="gitlab-dep-scan", producer="gitlab", title="GitLab dependency scanning JSON",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every vulnerability with its package, lock file and Gemnasium fix; "
          "remediation patches and the dependency list are left out.")
