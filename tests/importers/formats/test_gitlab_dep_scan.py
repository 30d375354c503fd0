from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import gitlab_dep_scan
from patchpilot.importers.model import ReportError, Target

GEMNASIUM_YAML = "gemnasium:7368f513-0aa9-4e34-a08d-40ea81f48e0e"
GEMNASIUM_CRYPTO = "gemnasium:ffb814a0-404c-11eb-b378-0242ac130002"


def test_one_vuln(parse_report) -> None:
    parsed = parse_report("gitlab_dep_scan/gl-dependency-scanning-report-1-vuln_v15.json",
                          expect="gitlab-dep-scan")
    assert parsed.targets == [Target()] and parsed.skipped == []
    [item] = parsed.findings
    assert (item.scanner_id, item.cves) == (GEMNASIUM_YAML, ())
    assert item.title == "XML Entity Expansion"
    assert (item.ecosystem, item.package, item.installed_version, item.fixed_version) == (
        "Go", "gopkg.in/yaml.v2", "v2.2.2", "2.2.3")
    assert item.location == "service/go.sum"
    assert item.severity == "Unknown"
    assert item.references == (
        "https://github.com/docker/cli/pull/2117",
        "https://gitlab.com/gitlab-org/security-products/gemnasium-db/-/blob/master/go/"
        "gopkg.in/yaml.v2/GMS-2019-2.yml")


def test_missing_component_keeps_the_item(parse_report) -> None:
    parsed = parse_report(
        "gitlab_dep_scan/gl-dependency-scanning-report-2-vuln-missing-component_v15.json",
        expect="gitlab-dep-scan")
    assert [(i.scanner_id, i.package) for i in parsed.findings] == [
        (GEMNASIUM_YAML, None), (GEMNASIUM_CRYPTO, "golang.org/x/crypto")]
    assert parsed.findings[1].cves == ("CVE-2020-29652",)


def test_many_vulns(parse_report) -> None:
    parsed = parse_report("gitlab_dep_scan/gl-dependency-scanning-report-many-vuln_v15.json",
                          expect="gitlab-dep-scan")
    assert parsed.targets == [Target()]
    assert len(parsed.findings) == 6
    assert [i.severity for i in parsed.findings].count("High") == 5
    item = parsed.findings[0]
    assert (item.scanner_id, item.cves, item.severity) == (
        GEMNASIUM_CRYPTO, ("CVE-2020-29652",), "High")
    assert (item.package, item.installed_version, item.fixed_version) == (
        "golang.org/x/crypto", "v0.0.0-20190219172222-a4c6cb3142f2",
        "v0.0.0-20201216223049-8b5274cf687f")
    assert item.solution == "Upgrade to version v0.0.0-20201216223049-8b5274cf687f or above."


def test_other_gitlab_report_types_are_refused() -> None:
    report = b'{"version": "15.0.0", "vulnerabilities": [], "scan": {"type": "sast"}}'
    with pytest.raises(ReportError, match="a GitLab sast report, not dependency scanning"):
        list(gitlab_dep_scan.parse(io.BytesIO(report), "gl-sast-report.json"))
