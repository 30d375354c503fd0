from __future__ import annotations

import io

import pytest

from patchpilot.importers import registry
from patchpilot.importers.formats import dependency_check
from patchpilot.importers.model import ReportError, Skipped, Sniff, Target


def test_empty_report_keeps_its_target(parse_report) -> None:
    parsed = parse_report("dependency_check/dc_empty.xml", expect="dependency-check")
    assert parsed.targets == [Target()]  # <name/>: the CLI's default names no project
    assert parsed.items == [] and parsed.skipped == []


def test_schema_1_3_single_vuln(parse_report) -> None:
    parsed = parse_report("dependency_check/single_vuln.xml", expect="dependency-check")
    assert parsed.targets == [Target(artifact="Test Project")]
    [item] = parsed.findings
    assert (item.scanner_id, item.cves) == ("CVE-0000-0001", ("CVE-0000-0001",))
    # Schema 1.x: a maven identifier "group:artifact:version", the v2 metrics inline.
    assert (item.ecosystem, item.package, item.installed_version) == (
        "Maven", "org.owasp:library", "6.7.8")
    assert item.location == "C:\\\\Projectestproject\\\\libraries\\\\component2.dll"
    assert (item.severity, item.cvss_score) == ("Medium", 7.5)
    assert item.cvss_vector == "AV:N/AC:L/Au:N/C:P/I:P/A:P"
    assert item.cwes == ()
    assert item.description == "Description of a bad vulnerability."
    assert item.references == ("http://localhost/badvulnerability.htm",
                               "http://localhost2/reference_for_badvulnerability.pdf")
    assert item.line == 40


def test_schema_2_5_purl_and_cvss3(parse_report) -> None:
    parsed = parse_report("dependency_check/version-6.5.3.xml", expect="dependency-check")
    assert parsed.targets == [Target()] and parsed.skipped == []
    [item] = parsed.findings
    assert item.scanner_id == "CVE-2020-9488"
    assert (item.ecosystem, item.package, item.installed_version) == (
        "Maven", "org.apache.logging.log4j:log4j-api", "2.12.4")
    assert item.location == ("/home/damien/vulnerabilities/apache-log4j-2.12.4-bin/"
                             "log4j-api-2.12.4.jar")
    assert (item.severity, item.cvss_score) == ("Low", 3.7)
    assert item.cvss_vector == "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N"
    assert item.cwes == ("CWE-295",)
    assert item.references[0] == "https://www.oracle.com/security-alerts/cpuoct2020.html"


_JSON = b"""{"reportSchema": "1.1", "scanInfo": {"engineVersion": "9.0.9"},
  "projectInfo": {"name": "shop", "reportDate": "2024-01-01T00:00:00Z"},
  "dependencies": [{"fileName": "lodash.js", "filePath": "/app/node_modules/lodash/lodash.js",
    "packages": [{"id": "pkg:npm/lodash@4.17.11", "confidence": "HIGHEST"}],
    "vulnerabilities": [{"source": "NPM", "name": "1523", "severity": "HIGH",
       "cvssv3": {"baseScore": 7.4, "attackVector": "NETWORK", "attackComplexity": "HIGH",
         "privilegesRequired": "NONE", "userInteraction": "NONE", "scope": "UNCHANGED",
         "confidentialityImpact": "HIGH", "integrityImpact": "HIGH",
         "availabilityImpact": "NONE", "baseSeverity": "HIGH", "version": "3.1"},
       "cwes": ["CWE-400"], "description": "Prototype pollution",
       "references": [{"source": "NPM", "url": "https://www.npmjs.com/advisories/1523"}]}],
    "suppressedVulnerabilities": [{"name": "CVE-2019-10744"}]}]}"""


def test_json_report() -> None:
    assert registry.detect(Sniff("dc.json", _JSON)).name == "dependency-check-json"
    rows = list(dependency_check.parse_json(io.BytesIO(_JSON), "dc.json"))
    assert rows[0] == Target(artifact="shop")
    item = rows[1]
    assert item.scanner_id == "dependency-check:1523"  # a bare npm advisory number
    assert (item.ecosystem, item.package, item.installed_version) == (
        "npm", "lodash", "4.17.11")
    assert item.cvss_vector == "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N"
    assert (item.severity, item.cvss_score) == ("High", 7.4)
    assert item.references == ("https://www.npmjs.com/advisories/1523",)
    assert rows[2:] == [Skipped("suppressed in Dependency-Check")]


def test_malformed_xml_is_refused_with_its_line() -> None:
    broken = (b'<analysis xmlns="https://jeremylong.github.io/DependencyCheck/'
              b'dependency-check.2.5.xsd">\n<dependencies>\n<dependency>\n</analysis>')
    with pytest.raises(ReportError) as caught:
        list(dependency_check.parse(io.BytesIO(broken), "dc.xml"))
    assert caught.value.line == 4
