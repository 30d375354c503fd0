"""npm audit --json: the v6 report and the npm 7+ report (auditReportVersion 2)."""

from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import npm_audit
from patchpilot.importers.model import ReportError, Target


def test_v6_one_vuln(parse_report) -> None:
    parsed = parse_report("npm_audit/one_vuln.json", expect="npm-audit")
    assert parsed.targets == [Target()]
    assert (len(parsed.findings), len(parsed.informational), len(parsed.skipped)) == (1, 0, 0)
    item = parsed.findings[0]
    assert item.scanner_id == "npm:146"  # the retired npm advisory number, no GHSA given
    assert item.cves == ("CVE-2017-16042",)
    assert (item.ecosystem, item.package, item.installed_version, item.fixed_version) == (
        "npm", "growl", "1.9.2", "1.10.2")
    assert item.severity == "Critical"
    assert item.title == "Command Injection"
    assert item.cwes == ("CWE-94",)
    assert item.solution == "Update to version 1.10.2 or later."
    assert item.references == ("https://www.npmjs.com/advisories/146",
                               "https://github.com/tj/node-growl/issues/60",
                               "https://github.com/tj/node-growl/pull/61")
    assert item.output == "mocha-jenkins-reporter>mocha>growl"
    assert (item.cvss_vector, item.cvss_score) == (None, None)


def test_v6_no_vuln_still_covers_the_project(parse_report) -> None:
    parsed = parse_report("npm_audit/no_vuln.json", expect="npm-audit")
    assert parsed.targets == [Target()]
    assert parsed.items == [] and parsed.skipped == []


def test_v6_many_vuln_fixed_version_is_the_first_patched_bound_above(parse_report) -> None:
    parsed = parse_report("npm_audit/many_vuln.json", expect="npm-audit")
    assert len(parsed.targets) == 1
    assert [(i.scanner_id, i.package, i.installed_version, i.fixed_version, i.severity)
            for i in parsed.findings] == [
        ("npm:106", "negotiator", "0.5.3", "0.6.1", "High"),
        ("npm:521", "pg", "5.1.0", "5.2.1", "High"),  # ">= 5.2.1 < 6.0.0" among 21 ranges
        ("npm:526", "fresh", "0.3.0", "0.5.2", "High"),
        ("npm:534", "debug", "2.2.0", "2.6.9", "Low"),
        ("npm:535", "mime", "1.3.4", "1.4.1", "Medium"),
    ]
    fresh = parsed.findings[2]
    assert fresh.output is not None and len(fresh.output.splitlines()) == 4
    assert parsed.findings[4].cwes == ()  # "CWE-" names no weakness


def test_v6_many_vuln_with_groups(parse_report) -> None:
    parsed = parse_report("npm_audit/many_vuln_with_groups.json", expect="npm-audit")
    assert (len(parsed.findings), len(parsed.informational), len(parsed.targets)) == (5, 0, 1)
    item = next(i for i in parsed.findings if i.scanner_id == "npm:522")
    assert (item.cves, item.package, item.installed_version, item.severity) == (
        ("CVE-2019-16082",), "pg", "5.1.0", "Medium")


def test_v6_github_advisories_with_cvss_and_two_versions(parse_report) -> None:
    parsed = parse_report("npm_audit/multiple_cwes2.json", expect="npm-audit")
    assert (len(parsed.findings), len(parsed.informational), len(parsed.targets)) == (7, 0, 1)
    ansi = [i for i in parsed.findings if i.package == "ansi-regex"]
    assert [(i.scanner_id, i.installed_version, i.fixed_version) for i in ansi] == [
        ("GHSA-93q8-gq69-wqmw", "3.0.0", "5.0.1"), ("GHSA-93q8-gq69-wqmw", "4.1.0", "5.0.1")]
    item = ansi[0]
    assert item.cves == ("CVE-2021-3807",)
    assert item.cwes == ("CWE-918", "CWE-1333")
    assert item.cvss_vector == "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"
    assert (item.cvss_score, item.severity) == (7.5, "Medium")  # npm's own severity wins
    lodash = next(i for i in parsed.findings if i.scanner_id == "GHSA-35jh-r3h4-6jhm")
    assert (lodash.package, lodash.installed_version, lodash.fixed_version, lodash.severity,
            lodash.cvss_score) == ("lodash", "4.17.19", "4.17.21", "High", 7.2)


def test_7_one_vuln(parse_report) -> None:
    parsed = parse_report("npm_audit_7_plus/one_vuln.json", expect="npm-audit-7")
    assert parsed.targets == [Target()]
    assert (len(parsed.findings), len(parsed.informational), len(parsed.skipped)) == (2, 0, 0)
    first, second = parsed.findings
    assert first.scanner_id == "GHSA-gxpj-cx7g-858c"
    assert first.title == "Regular Expression Denial of Service in debug"
    assert (first.ecosystem, first.package, first.installed_version, first.fixed_version) == (
        "npm", "debug", None, "2.6.9")
    assert first.location == "node_modules/debug"
    assert (first.severity, first.cvss_score) == ("Medium", 5.3)
    assert first.cvss_vector == "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"
    assert first.cwes == ("CWE-400",)
    assert first.solution == "Install express@4.18.3."
    assert first.references == ("https://github.com/advisories/GHSA-gxpj-cx7g-858c",)
    assert (second.scanner_id, second.severity, second.cvss_score) == (
        "GHSA-9vvw-cc9w-f27h", "High", 7.5)


def test_7_no_vuln(parse_report) -> None:
    parsed = parse_report("npm_audit_7_plus/no_vuln.json", expect="npm-audit-7")
    assert parsed.targets == [Target()] and parsed.items == []


@pytest.mark.parametrize(("data", "fmt", "message"), [
    (b"", npm_audit.FORMAT, "x.json: the file is empty"),
    (b'{"advisories": {', npm_audit.FORMAT, "x.json:1: malformed JSON"),
    (b'{"error": {"code": "ENOLOCK", "summary": "This command requires an existing '
     b'lockfile."}}', npm_audit.FORMAT,
     "x.json: npm audit failed: ENOLOCK: This command requires an existing lockfile."),
    (b'{"auditReportVersion": 3, "vulnerabilities": {}}', npm_audit.FORMAT_7,
     "x.json: npm audit report version 3 is not supported"),
    (b'{"actions": []}', npm_audit.FORMAT, "x.json: not an npm audit report: no 'advisories'"),
])
def test_refused(data: bytes, fmt, message: str) -> None:
    with pytest.raises(ReportError) as caught:
        list(fmt.parse(io.BytesIO(data), "x.json"))
    assert str(caught.value).startswith(message)
