from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import osv_scanner
from patchpilot.importers.model import ReportError, Target


def test_malicious_package_group(parse_report) -> None:
    parsed = parse_report("osv_scanner/some_findings.json", expect="osv-scanner")
    assert parsed.targets == [Target()]  # OSV-Scanner names no project
    assert parsed.skipped == [] and parsed.informational == []
    [item] = parsed.findings
    assert item.scanner_id == "MAL-2023-1035"
    assert item.cves == ()
    assert item.aliases == ("GHSA-8348-2q94-ffjx",)
    assert item.title == "Malicious code in flot-axis (npm)"
    assert (item.ecosystem, item.package, item.installed_version, item.fixed_version) == (
        "npm", "flot-axis", "0.0.0", None)  # introduced "0", never fixed
    assert item.location == "/tmp/components/yarn.lock"
    assert item.severity == "Unknown" and item.cvss_score is None
    assert item.cwes == ("CWE-506",)
    assert item.references == ("https://github.com/advisories/GHSA-8348-2q94-ffjx",)


def test_group_gives_cves_score_and_nearest_fix() -> None:
    # Two records of one advisory (GHSA and PYSEC twins) grouped by OSV-Scanner.
    report = b"""{"results": [{"source": {"path": "/app/requirements.txt", "type": "lockfile"},
      "packages": [{"package": {"name": "django", "version": "3.2.1", "ecosystem": "PyPI"},
        "vulnerabilities": [
          {"id": "GHSA-xxxx-2222-3333", "aliases": ["CVE-2021-33203"],
           "summary": "Path traversal",
           "severity": [{"type": "CVSS_V3",
                         "score": "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:N/A:N"}],
           "affected": [{"package": {"name": "django", "ecosystem": "PyPI"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.2.24"},
                        {"introduced": "3.0"}, {"fixed": "3.1.12"},
                        {"introduced": "3.2"}, {"fixed": "3.2.4"}]}]}]},
          {"id": "PYSEC-2021-98", "aliases": ["CVE-2021-33203", "GHSA-xxxx-2222-3333"]}],
        "groups": [{"ids": ["GHSA-xxxx-2222-3333", "PYSEC-2021-98"],
                    "aliases": ["CVE-2021-33203", "GHSA-xxxx-2222-3333", "PYSEC-2021-98"],
                    "max_severity": "4.9"}]}]}]}"""
    rows = list(osv_scanner.parse(io.BytesIO(report), "osv.json"))
    [item] = rows[1:]
    assert item.scanner_id == "GHSA-xxxx-2222-3333"
    assert item.cves == ("CVE-2021-33203",)
    assert item.aliases == ("PYSEC-2021-98",)
    assert item.fixed_version == "3.2.4"
    assert (item.cvss_score, item.severity) == (4.9, "Medium")
    assert item.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:N/A:N"


def test_truncated_report_is_refused() -> None:
    with pytest.raises(ReportError, match="malformed JSON"):
        list(osv_scanner.parse(io.BytesIO(b'{"results": [{"source": '), "osv.json"))
