from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import dependency_track
from patchpilot.importers.model import ReportError, Skipped, Target


@pytest.mark.parametrize("relative", [
    "dependency_track/no_findings_because_findings_key_is_missing.json",
    "dependency_track/no_findings_because_findings_key_is_null.json"])
def test_export_without_findings_keeps_its_project(parse_report, relative: str) -> None:
    parsed = parse_report(relative, expect="dependency-track")
    assert parsed.targets == [Target(artifact="Acme Example@1.0")]
    assert parsed.items == [] and parsed.skipped == []


def test_3_8_nvd_and_oss_index(parse_report) -> None:
    parsed = parse_report("dependency_track/dependency_track_3.8.0_2021-01-18.json",
                          expect="dependency-track")
    assert parsed.targets == [Target(artifact="project@CI")]
    assert len(parsed.findings) == 9 and parsed.skipped == []
    item = parsed.findings[0]
    assert (item.scanner_id, item.cves) == ("CVE-2016-7103", ("CVE-2016-7103",))
    assert (item.ecosystem, item.package, item.installed_version) == (
        "Maven", "org.webjars:jquery-ui", "1.11.4")
    assert item.severity == "Medium" and item.cwes == ("CWE-79",)
    # OSS Index's own ids are kept, prefixed with the source.
    assert parsed.findings[1].scanner_id == "ossindex:3e831af5-428b-4712-874f-8f6ff932e2b2"
    assert parsed.findings[1].package == "org.webjars:bootstrap"


def test_4_10_aliases_and_score(parse_report) -> None:
    parsed = parse_report("dependency_track/dependency_track_4.10_2024_02_11.json",
                          expect="dependency-track")
    assert parsed.targets == [Target(artifact="blablabla-Requirements-txt@1")]
    [item] = parsed.findings
    assert (item.scanner_id, item.cves, item.aliases) == (
        "CVE-2023-45803", ("CVE-2023-45803",), ("GHSA-g4mx-q9vg-27p4",))
    assert (item.ecosystem, item.package, item.installed_version) == (
        "PyPI", "urllib3", "1.26.16")
    assert (item.severity, item.cvss_score) == ("Medium", 4.2)
    assert item.cwes == ("CWE-200",)


def test_4_14_github_advisories(parse_report) -> None:
    parsed = parse_report("dependency_track/deptrack_php_4.14.1.json",
                          expect="dependency-track")
    assert parsed.targets == [Target(artifact="acme/acme-app (php)@develop")]
    assert len(parsed.findings) == 13
    item = parsed.findings[0]
    assert (item.scanner_id, item.cves) == ("GHSA-4486-gxhx-5mg7", ("CVE-2026-25129",))
    assert (item.ecosystem, item.package, item.installed_version) == (
        "Packagist", "psy/psysh", "v0.12.10")
    assert item.title == "PsySH has Local Privilege Escalation via CWD .psysh.php auto-load"
    assert item.cvss_vector == "CVSS:3.1/AV:L/AC:H/PR:L/UI:R/S:U/C:H/I:H/A:H"
    assert (item.severity, item.cvss_score) == ("Medium", 6.7)
    assert item.cwes == ("CWE-427",)


def test_many_findings_with_alias(parse_report) -> None:
    parsed = parse_report("dependency_track/many_findings_with_alias.json",
                          expect="dependency-track")
    assert parsed.targets == [Target(artifact="project@develop-snapshot")]
    assert len(parsed.findings) == 12
    item = parsed.findings[0]
    assert (item.scanner_id, item.cves, item.aliases) == (
        "GHSA-rgv9-q543-rqg4", ("CVE-2022-42004",), ("DSA-5283-1",))
    assert (item.package, item.installed_version, item.severity) == (
        "com.fasterxml.jackson.core:jackson-databind", "2.13.3", "High")
    assert item.cwes == ("CWE-400", "CWE-502")
    assert item.title == "Uncontrolled Resource Consumption in FasterXML jackson-databind"


def test_in_triage_finding_is_imported(parse_report) -> None:
    parsed = parse_report("dependency_track/one_finding_with_analysis_detail.json",
                          expect="dependency-track")
    assert parsed.targets == [Target(artifact="test-app@1.0.0")]
    [item] = parsed.findings
    assert (item.scanner_id, item.severity, item.package) == (
        "CVE-2021-44228", "Critical", "org.apache.logging.log4j:log4j-core")


def test_not_affected_and_suppressed_findings_are_skipped() -> None:
    export = b"""{"project": {"name": "app"}, "findings": [
      {"component": {"name": "a", "version": "1", "purl": "pkg:npm/a@1"},
       "vulnerability": {"vulnId": "CVE-2020-1", "source": "NVD", "severity": "LOW"},
       "analysis": {"state": "NOT_AFFECTED", "isSuppressed": false}},
      {"component": {"name": "b", "version": "1", "purl": "pkg:npm/b@1"},
       "vulnerability": {"vulnId": "CVE-2020-2", "source": "NVD", "severity": "LOW"},
       "analysis": {"isSuppressed": true}}]}"""
    rows = list(dependency_track.parse(io.BytesIO(export), "fpf.json"))
    assert rows == [Target(artifact="app"), Skipped("VEX: not affected"),
                    Skipped("suppressed in Dependency-Track")]


def test_other_json_is_refused() -> None:
    with pytest.raises(ReportError, match="no \"project\""):
        list(dependency_track.parse(io.BytesIO(b'{"meta": {}}'), "fpf.json"))
