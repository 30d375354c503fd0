from __future__ import annotations

import io
from collections import Counter

import pytest

from patchpilot.importers import registry
from patchpilot.importers.formats import cyclonedx
from patchpilot.importers.model import ReportError, Skipped, Target

LOG4J_TARGET = Target(
    artifact="./configuration/.m2/repository/org/apache/logging/log4j/log4j-core/2.13.2")
LOG4J_CVES = ["CVE-2021-44228", "CVE-2021-44832", "CVE-2021-45046", "CVE-2021-45105"]


def test_jake_oss_index_records(parse_report) -> None:
    parsed = parse_report("cyclonedx/jake2.json", expect="cyclonedx")
    assert parsed.targets == [Target()] and parsed.skipped == []
    assert len(parsed.findings) == 7 and parsed.informational == []
    item = parsed.findings[0]
    # OSS Index names its records by UUID: prefixed with the source, the CVE kept.
    assert item.scanner_id == "oss-index:c7129ff8-08bc-4afe-82ec-7d97b9491741"
    assert item.cves == ("CVE-2021-33203",)
    assert (item.ecosystem, item.package, item.installed_version) == ("PyPI", "django", "2.0")
    assert (item.severity, item.cvss_score) == ("High", 7.5)
    assert item.cvss_vector == "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"
    assert item.description.startswith("Django before 2.2.24, 3.x before 3.1.12")
    assert {i.package for i in parsed.findings} == {"django"}


@pytest.mark.parametrize(("relative", "expect"), [("cyclonedx/log4j.json", "cyclonedx"),
                                                  ("cyclonedx/log4j.xml", "cyclonedx-xml")])
def test_grype_log4j_json_and_xml_agree(parse_report, relative: str, expect: str) -> None:
    parsed = parse_report(relative, expect=expect)
    assert parsed.targets == [LOG4J_TARGET] and parsed.skipped == []
    assert len(parsed.findings) == 8
    assert [i.scanner_id for i in parsed.findings][:4] == LOG4J_CVES
    item = parsed.findings[0]
    assert item.cves == ("CVE-2021-44228",)
    assert (item.ecosystem, item.package, item.installed_version) == (
        "Maven", "org.apache.logging.log4j:log4j-core", "2.13.2")
    assert item.severity == "Critical"
    assert (item.cvss_vector, item.cvss_score) == (
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0)
    assert item.references[0] == "https://logging.apache.org/log4j/2.x/security.html"
    assert parsed.findings[1].severity == "Medium"


def test_vulnerability_extension_inside_components(parse_report) -> None:
    parsed = parse_report("cyclonedx/grype.xml", expect="cyclonedx-xml")
    assert parsed.targets == [Target(artifact="defectdojo/defectdojo-django:1.13.1")]
    assert len(parsed.findings) == 327 and parsed.skipped == []
    # The distribution comes from grype's source name "vulnerabilities:debian:10".
    assert Counter(i.ecosystem for i in parsed.findings) == {"Debian:10": 219, None: 108}
    assert Counter(i.severity for i in parsed.findings) == {
        "Medium": 155, "Low": 133, "High": 24, "Unknown": 10, "Critical": 5}
    item = parsed.findings[0]
    assert (item.scanner_id, item.package, item.installed_version) == (
        "CVE-2011-3374", "apt", "1.8.2.1")
    assert (item.severity, item.cvss_vector, item.cvss_score) == (
        "Low", "AV:N/AC:M/Au:N/C:N/I:P/A:N", 4.3)
    assert item.references == ("https://security-tracker.debian.org/tracker/CVE-2011-3374",)
    assert item.line == 157
    jira = next(i for i in parsed.findings if i.scanner_id == "CVE-2008-6531")
    assert (jira.package, jira.severity, jira.cvss_score) == ("jira", "Medium", None)


def test_cvss_rating_wins_over_a_low_first_rating(parse_report) -> None:
    parsed = parse_report("cyclonedx/spec1_lowfirst.xml", expect="cyclonedx-xml")
    assert parsed.targets == [Target()]
    [item] = parsed.findings
    assert item.scanner_id == "CVE-2018-7489"
    assert (item.ecosystem, item.package, item.installed_version) == (
        "Maven", "com.fasterxml.jackson.core:jackson-databind", "2.9.9")
    assert (item.severity, item.cvss_score) == ("Critical", 9.8)
    assert item.cvss_vector == "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert item.cwes == ("CWE-184", "CWE-502")
    assert item.solution == "Upgrade"


def test_vex_not_affected_is_skipped(parse_report) -> None:
    parsed = parse_report("cyclonedx/valid-vulnerability-1.4.json", expect="cyclonedx")
    assert parsed.items == []
    assert parsed.skipped == [Skipped("VEX: not affected")]


@pytest.mark.parametrize("relative", ["cyclonedx/cyclonedx_bom.xml",
                                      "cyclonedx/retirejs.latest.xml"])
def test_a_bom_without_vulnerabilities_is_refused_as_an_sbom(shared_data, relative) -> None:
    path = shared_data / "reports" / relative
    with path.open("rb") as stream:
        fmt = registry.detect(registry.sniff(stream, path.name))
        assert fmt.name == "cyclonedx-xml"
        with pytest.raises(ReportError, match="it is an SBOM .* `patchpilot scan file`"):
            list(fmt.parse(stream, path.name))


def test_json_sbom_is_refused() -> None:
    bom = b'{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}'
    with pytest.raises(ReportError, match="it is an SBOM"):
        list(cyclonedx.parse(io.BytesIO(bom), "sbom.json"))


def test_malformed_xml_names_the_line() -> None:
    with pytest.raises(ReportError) as caught:
        list(cyclonedx.parse_xml(io.BytesIO(b'<bom xmlns="http://cyclonedx.org/schema/bom/1.4">'
                                            b'\n<components>\n</bom>'), "x.xml"))
    assert caught.value.line == 3
