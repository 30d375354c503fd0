from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import anchore_engine
from patchpilot.importers.model import ReportError


def _counts(parsed) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return (len(parsed.findings), len(parsed.informational), len(parsed.targets),
            len(parsed.skipped))


def test_enterprise_security_evaluation(parse_report) -> None:
    parsed = parse_report("anchore_engine/new_format_issue_11552.json", expect="anchore-engine")
    assert _counts(parsed) == (84, 0, 1, 0)
    assert parsed.targets[0].artifact == "docker.io/myimage:new"
    first = parsed.findings[0]
    # "10.1.34,11.0.2,9.0.98": the fix of the installed 9.0 branch.
    assert (first.scanner_id, first.cves, first.ecosystem, first.package,
            first.installed_version, first.fixed_version, first.location, first.severity,
            first.cvss_score) == (
        "CVE-2024-50379", ("CVE-2024-50379",), "Maven", "tomcat-annotations-api", "9.0.97",
        "9.0.98", "/aci/base/lib/tomcat-annotations-api-9.0.97.jar", "Critical", 9.8)
    by_id = {(i.scanner_id, i.package): i for i in parsed.findings}
    cups = by_id["CVE-2024-47175", "cups-libs"]
    assert (cups.ecosystem, cups.installed_version, cups.fixed_version, cups.location) == (
        "RPM", "1:2.2.6-61.el8_10", "1:2.2.6-62.el8_10", None)
    ghsa = by_id["GHSA-5j33-cvvr-w245", "tomcat-embed-core"]
    assert (ghsa.cves, ghsa.cvss_score, ghsa.severity) == (("CVE-2024-50379",), None, "High")
    jdk = by_id["CVE-2022-3857", "java-11-openjdk-headless"]
    assert (jdk.installed_version, jdk.fixed_version) == ("1:11.0.25.0.9-2.el8", None)
    assert by_id["GHSA-r68h-jhhj-9jvm", "esapi"].cves == ()


def test_engine_without_vulnerabilities_names_the_image(parse_report) -> None:
    parsed = parse_report("anchore_engine/no_vuln.json", expect="anchore-engine")
    assert _counts(parsed) == (0, 0, 1, 0)
    assert parsed.targets[0].artifact == "sha256:" + "x" * 64


def test_engine_one_vulnerability_in_many_files(parse_report) -> None:
    parsed = parse_report("anchore_engine/one_vuln_many_files.json", expect="anchore-engine")
    assert _counts(parsed) == (4, 0, 1, 0)
    assert parsed.targets[0].artifact == (
        "sha256:91f5c377c6b3c8eabe4112057f71794a648fc7d88e06336384fb4ea1042a2dee")
    item = parsed.findings[0]
    # cvss_v3 is -1 (none): the v2 score.
    assert (item.scanner_id, item.ecosystem, item.package, item.installed_version,
            item.fixed_version, item.severity, item.cvss_score) == (
        "CVE-2005-3906", "Maven", "jdk", "1.4", None, "High", 7.5)
    assert len({i.location for i in parsed.findings}) == 4


def test_refusal() -> None:
    with pytest.raises(ReportError, match="not an Anchore report"):
        list(anchore_engine.parse(io.BytesIO(b"[]"), "x.json"))
