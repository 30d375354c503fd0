from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import sarif
from patchpilot.importers.model import ReportError, Skipped, Target

_NO_ID = "result without a vulnerability id"

# Code-quality SARIF logs: every result is skipped, none imported.
CODE_QUALITY = [
    ("sarif/DefectDojo_django-DefectDojo__2020-12-11_13 42 10__export.sarif", 510, None),
    ("sarif/appendix_k.sarif", 1, "https://github.com/example-corp/browser"),
    ("sarif/appendix_k1.sarif", 0, None),
    ("sarif/appendix_k3.sarif", 1, None),
    ("sarif/bash-report-subset-same-hash-code-same-unique-id.sarif", 4,
     "https://github.com/damiencarol/django-DefectDojo"),
    ("sarif/bash-report.sarif", 27, "https://github.com/damiencarol/django-DefectDojo"),
    ("sarif/dockle_0_3_15.sarif", 4, None),
    ("sarif/flawfinder.sarif", 54, None),
    ("sarif/mobsfscan.json", 9, None),
    ("sarif/njsscan.sarif", 2, None),
]


@pytest.mark.parametrize(("relative", "skipped", "repository"), CODE_QUALITY)
def test_code_quality_results_are_skipped(parse_report, relative: str, skipped: int,
                                          repository: str | None) -> None:
    parsed = parse_report(relative, expect="sarif")
    assert parsed.items == []
    assert parsed.skipped == [Skipped(_NO_ID)] * skipped
    assert parsed.targets == [Target(artifact=repository)]


def test_black_duck_components(parse_report) -> None:
    parsed = parse_report("sarif/blackduck_nested_fingerprints.sarif", expect="sarif")
    assert parsed.skipped == [] and parsed.targets == [Target()]
    assert [(i.scanner_id, i.cves, i.severity) for i in parsed.findings] == [
        ("BDSA-2020-1001", ("CVE-2020-11022",), "Medium"),
        ("BDSA-2021-1002", ("CVE-2021-23337",), "High"),
        ("BDSA-2019-1003", ("CVE-2019-10744",), "High"),
        ("BDSA-2022-1004", (), "Low"),
        ("BDSA-2023-1005", ("CVE-2023-26115",), "Critical"),
    ]
    item = parsed.findings[1]
    assert (item.ecosystem, item.package, item.installed_version) == (
        "npm", "example-util-lib", "4.17.20")
    assert item.location == "npm/example-util-lib@4.17.20"
    assert item.exploit_available is True
    assert item.cwes == ("CWE-78",)
    assert item.description == (
        "Lodash is vulnerable to command injection via the template function.")
    assert item.references == ("https://nvd.nist.gov/vuln/detail/CVE-2021-23337",)
    assert item.solution == "Upgrade/patch dependency: example-util-lib 4.17.20."


def test_dependency_check_sarif_keeps_cves_skips_retirejs_rules(parse_report) -> None:
    parsed = parse_report("sarif/dependency_check.sarif", expect="sarif")
    assert parsed.skipped == [Skipped(_NO_ID)] * 4  # RetireJS rules named by title only
    assert [i.scanner_id for i in parsed.findings] == [
        "CVE-2012-6708", "CVE-2015-9251", "CVE-2019-11358", "CVE-2020-11022",
        "CVE-2020-11023", "CVE-2015-9251", "CVE-2019-11358", "CVE-2020-11022",
        "CVE-2020-11023"]
    item = parsed.findings[0]
    assert item.cves == ("CVE-2012-6708",)
    assert (item.severity, item.cvss_score) == ("Medium", 6.1)
    assert item.location == ("file:////src/.venv/lib/python3.9/site-packages/tastypie_swagger/"
                             "static/tastypie_swagger/js/lib/jquery-1.8.0.min.js")
    assert parsed.findings[5].location.endswith("/coverage/htmlfiles/jquery.min.js")


def test_govulncheck_sarif(parse_report) -> None:
    parsed = parse_report("govulncheck/issue_15033_sarif.json", expect="sarif")
    assert parsed.skipped == [] and parsed.targets == [Target()]
    assert [(i.scanner_id, i.cves) for i in parsed.findings] == [
        ("GO-2026-4864", ("CVE-2026-32282",)), ("GO-2026-4865", ("CVE-2026-32289",)),
        ("GO-2026-4869", ("CVE-2026-32288",))]
    item = parsed.findings[1]
    assert item.title == "[GO-2026-4865] JsBraceDepth Context Tracking Bugs (XSS) in html/template"
    assert item.location == "go.mod"
    assert item.severity == "Unknown"  # the level says "called", not how severe
    assert item.references == ("https://pkg.go.dev/vuln/GO-2026-4865",)
    assert item.output == "Your code calls vulnerable functions in 1 package (html/template)."


def test_suppressed_vulnerability_result_is_skipped() -> None:
    log = b"""{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x",
      "rules": [{"id": "CVE-2021-44228", "properties": {"security-severity": "10.0"}}]}},
      "results": [{"ruleId": "CVE-2021-44228", "message": {"text": "log4j"}},
                  {"ruleId": "CVE-2021-44228", "message": {"text": "log4j"},
                   "suppressions": [{"kind": "external"}]}]}]}"""
    rows = list(sarif.parse(io.BytesIO(log), "x.sarif"))
    assert rows[1].scanner_id == "CVE-2021-44228"
    assert (rows[1].severity, rows[1].cvss_score) == ("Critical", 10.0)
    assert rows[2] == Skipped("suppressed in the SARIF log")


def test_a_log_without_runs_is_refused() -> None:
    with pytest.raises(ReportError, match='no "runs" list'):
        list(sarif.parse(io.BytesIO(b'{"version": "2.1.0"}'), "x.sarif"))
