from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import trivy_operator
from patchpilot.importers.model import ReportError, Target


def _counts(parsed) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return (len(parsed.findings), len(parsed.informational), len(parsed.targets),
            len(parsed.skipped))


NGINX = Target(artifact="index.docker.io/library/nginx:alpine")
UBUNTU = Target(artifact="index.docker.io/library/ubuntu:20.04", os="ubuntu 20.04")


def test_cluster_dump_of_every_report_kind(parse_report) -> None:
    parsed = parse_report("trivy_operator/all_reports_in_dict.json", expect="trivy-operator")
    assert _counts(parsed) == (41, 0, 1, 2)
    assert parsed.targets == [NGINX]
    assert sorted(s.reason for s in parsed.skipped) == ["misconfiguration", "secret"]
    item = parsed.findings[0]
    assert (item.scanner_id, item.cves, item.package, item.installed_version,
            item.fixed_version, item.severity, item.cvss_score, item.title) == (
        "CVE-2023-23914", ("CVE-2023-23914",), "curl", "7.87.0-r1", "7.87.0-r2",
        "Critical", 4.2, "curl: HSTS ignored on multiple requests")
    # The report names no OS: the ecosystem is left to the import.
    assert item.ecosystem is None


def test_compliance_report_checks_are_skipped(parse_report) -> None:
    parsed = parse_report("trivy_operator/compliance_severity.json", expect="trivy-operator")
    assert _counts(parsed) == (0, 0, 0, 2)
    assert {s.reason for s in parsed.skipped} == {"compliance check"}


@pytest.mark.parametrize("name", ["configauditreport_missing_checkid.json",
                                  "configauditreport_single_vuln.json"])
def test_config_audit_checks_are_skipped(parse_report, name: str) -> None:
    parsed = parse_report(f"trivy_operator/{name}", expect="trivy-operator")
    assert _counts(parsed) == (0, 0, 0, 1)
    assert parsed.skipped[0].reason == "misconfiguration"


def test_list_of_reports(parse_report) -> None:
    parsed = parse_report("trivy_operator/findings_in_list.json", expect="trivy-operator")
    assert _counts(parsed) == (5, 0, 1, 13)
    assert parsed.targets == [UBUNTU]


def test_extended_vulnerability_report(parse_report) -> None:
    parsed = parse_report("trivy_operator/vulnerabilityreport_extended.json",
                          expect="trivy-operator")
    assert _counts(parsed) == (5, 0, 1, 0)
    assert parsed.targets == [UBUNTU]
    item = parsed.findings[0]
    assert (item.scanner_id, item.ecosystem, item.package, item.installed_version,
            item.fixed_version, item.severity, item.cvss_score) == (
        "CVE-2024-0553", "Ubuntu:20.04", "libgnutls30", "3.6.13-2ubuntu1.9",
        "3.6.13-2ubuntu1.10", "Medium", 5.9)
    assert item.references == ("https://avd.aquasec.com/nvd/cve-2024-0553",)
    assert [i.package for i in parsed.findings if i.scanner_id == "CVE-2024-22365"] == [
        "libpam-modules", "libpam-modules-bin", "libpam-runtime", "libpam0g"]


def test_report_without_vulnerabilities_names_its_image(parse_report) -> None:
    parsed = parse_report("trivy_operator/vulnerabilityreport_no_vuln.json",
                          expect="trivy-operator")
    assert _counts(parsed) == (0, 0, 1, 0)
    assert parsed.targets == [NGINX]


def test_single_vulnerability(parse_report) -> None:
    parsed = parse_report("trivy_operator/vulnerabilityreport_single_vuln.json",
                          expect="trivy-operator")
    assert _counts(parsed) == (1, 0, 1, 0)
    item = parsed.findings[0]
    assert (item.scanner_id, item.package, item.fixed_version, item.severity,
            item.target) == ("CVE-2023-23914", "curl", "7.87.0-r2", "Critical", NGINX)


def test_refusals() -> None:
    with pytest.raises(ReportError, match="not a Trivy Operator report"):
        list(trivy_operator.parse(io.BytesIO(b'{"kind": "Pod"}'), "x.json"))
    assert list(trivy_operator.parse(io.BytesIO(b'{"items": []}'), "x.json")) == []
