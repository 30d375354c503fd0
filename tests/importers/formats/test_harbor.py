from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import harbor
from patchpilot.importers.model import ReportError


def _counts(parsed) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return (len(parsed.findings), len(parsed.informational), len(parsed.targets),
            len(parsed.skipped))


def test_one_vulnerability(parse_report) -> None:
    parsed = parse_report("harbor_vulnerability/harbor-1-vuln.json", expect="harbor")
    assert _counts(parsed) == (1, 0, 1, 0)
    # The API's answer does not name the artifact it is about.
    assert parsed.targets[0].empty
    item = parsed.findings[0]
    # "CVE-YYYY-NNN" is a placeholder, not a CVE id: it stays the scanner id only.
    assert (item.scanner_id, item.cves, item.package, item.installed_version,
            item.fixed_version, item.severity, item.references) == (
        "CVE-YYYY-NNN", (), "package", "exploitable-version", "unexploitable-version", "Low",
        ("https://github.com/goharbor/harbor",))


def test_five_vulnerabilities(parse_report) -> None:
    parsed = parse_report("harbor_vulnerability/harbor-5-vuln.json", expect="harbor")
    assert _counts(parsed) == (5, 0, 1, 0)
    assert [(i.scanner_id, i.fixed_version, i.severity) for i in parsed.findings] == [
        ("CVE-YYYY-001", "unexploitable-version-1", "Low"),
        ("CVE-YYYY-002", None, "High"),
        ("CVE-YYYY-003", "unexploitable-version-3", "High"),
        ("CVE-YYYY-004", "unexploitable-version-4", "Critical"),
        ("CVE-YYYY-005", "unexploitable-version-5", "Critical")]


def test_v1_1_report_with_artifact_and_cvss() -> None:
    report = (b'{"application/vnd.security.vulnerability.report; version=1.1": {'
              b'"scanner": {"name": "Trivy"}, "artifact": {"repository": "library/nginx", '
              b'"tag": "1.25"}, "vulnerabilities": [{"id": "CVE-2023-44487", "package": '
              b'"libnghttp2-14", "version": "1.52.0-1", "fix_version": "1.52.0-1+deb12u1", '
              b'"severity": "High", "cwe_ids": ["CWE-400"], "preferred_cvss": {"score_v3": '
              b'7.5, "vector_v3": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}}]}}')
    target, item = harbor.parse(io.BytesIO(report), "h.json")
    assert target.artifact == "library/nginx:1.25"
    assert (item.cves, item.cwes, item.cvss_vector, item.cvss_score) == (
        ("CVE-2023-44487",), ("CWE-400",), "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5)


def test_refusal() -> None:
    with pytest.raises(ReportError, match="not a Harbor report"):
        list(harbor.parse(io.BytesIO(b'{"x": 1}'), "x.json"))
