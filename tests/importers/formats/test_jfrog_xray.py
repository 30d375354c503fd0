from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import jfrog_xray
from patchpilot.importers.model import ReportError, Target


def _counts(parsed) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return (len(parsed.findings), len(parsed.informational), len(parsed.targets),
            len(parsed.skipped))


def test_docker_images_with_rpm_components(parse_report) -> None:
    parsed = parse_report("jfrog_xray_unified/Vulnerabilities-Report-XRAY_Unified.json",
                          expect="jfrog-xray")
    assert _counts(parsed) == (7, 0, 2, 0)
    assert parsed.targets == [Target(artifact="test-artifact:1.0.5"),
                              Target(artifact="test-artifact:1.0.0")]
    java = parsed.findings[0]
    assert (java.scanner_id, len(java.cves), java.cves[0], java.ecosystem, java.package,
            java.installed_version, java.fixed_version, java.severity) == (
        "XRAY-96880", 15, "CVE-2019-2988", "rpm", "java-11-openjdk-headless",
        "11.0.6.10-1.el7_7", "1:11.0.5.10-0.el7_7", "High")
    # The worst of the row's CVEs gives the vector.
    assert (java.cvss_vector, java.cvss_score) == (
        "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N", 6.8)
    assert java.title == "RHSA-2019:3127: java-11-openjdk security update (Important)"
    assert java.location == "docker-reg/test-artifact/1.0.5/"
    expat = parsed.findings[1]
    assert (expat.package, expat.installed_version, expat.fixed_version,
            expat.target.artifact) == ("expat", "2.1.0-10.el7_3", None, "test-artifact:1.0.0")


def test_build_artifact_and_branch_fixes(parse_report) -> None:
    parsed = parse_report("jfrog_xray_unified/issue_13628.json", expect="jfrog-xray")
    assert _counts(parsed) == (1, 0, 1, 0)
    assert parsed.targets == [Target(artifact="[some_artifact_id]")]
    item = parsed.findings[0]
    # fixed_versions ["2.0.1", "1.1.9"] for 2.0.0: the 2.0 line's fix.
    assert (item.scanner_id, item.cves, item.ecosystem, item.package, item.installed_version,
            item.fixed_version, item.severity, item.cvss_vector, item.cvss_score) == (
        "XRAY-123", ("CVE-2023-42282",), "npm", "ip", "2.0.0", "2.0.1", "Critical",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8)


def test_packages_impacting_other_artifacts(parse_report) -> None:
    parsed = parse_report("jfrog_xray_unified/many_vulns.json", expect="jfrog-xray")
    assert _counts(parsed) == (3, 0, 2, 0)
    assert [t.artifact for t in parsed.targets] == ["Jinja2:2.11.2", "Werkzeug:1.0.1"]
    jinja, jquery, _jquery2 = parsed.findings
    assert (jinja.scanner_id, jinja.ecosystem, jinja.package, jinja.installed_version,
            jinja.fixed_version, jinja.cvss_vector) == (
        "XRAY-139239", "PyPI", "Jinja2", "2.11.2", "2.11.3",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L")
    assert (jquery.scanner_id, jquery.ecosystem, jquery.package, jquery.target.artifact) == (
        "XRAY-97245", "npm", "jquery", "Werkzeug:1.0.1")


def test_refusals() -> None:
    with pytest.raises(ReportError, match="the file is empty"):
        list(jfrog_xray.parse(io.BytesIO(b"  "), "x.json"))
    with pytest.raises(ReportError, match="not an Xray report"):
        list(jfrog_xray.parse(io.BytesIO(b'{"x": []}'), "x.json"))
    with pytest.raises(ReportError, match="malformed JSON"):
        list(jfrog_xray.parse(io.BytesIO(b'{"rows": [{]}'), "x.json"))
    assert list(jfrog_xray.parse(io.BytesIO(b'{"total_rows": 0, "rows": []}'), "x.json")) == []
