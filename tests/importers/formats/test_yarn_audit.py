"""yarn audit --json (Yarn 1): one JSON message a line."""

from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import yarn_audit
from patchpilot.importers.model import ReportError, Target


def test_one_vul(parse_report) -> None:
    parsed = parse_report("yarn_audit/yarn_audit_one_vul.json", expect="yarn-audit")
    assert parsed.targets == [Target()]
    assert (len(parsed.findings), len(parsed.informational), len(parsed.skipped)) == (1, 0, 0)
    item = parsed.findings[0]
    assert item.scanner_id == "npm:1325"
    assert item.cves == ()
    assert (item.ecosystem, item.package, item.installed_version, item.fixed_version) == (
        "npm", "handlebars", "4.5.2", "4.5.3")
    assert (item.severity, item.title, item.cwes) == ("High", "Prototype Pollution",
                                                      ("CWE-471",))
    assert item.references == ("https://npmjs.com/advisories/1325",)
    assert item.line == 1


def test_many_vul(parse_report) -> None:
    parsed = parse_report("yarn_audit/yarn_audit_many_vul.json", expect="yarn-audit")
    assert (len(parsed.findings), len(parsed.informational), len(parsed.targets)) == (3, 0, 1)
    assert [(i.scanner_id, i.package, i.installed_version, i.fixed_version, i.severity,
             i.line) for i in parsed.findings] == [
        ("npm:1179", "minimist", "0.0.10", "0.2.1", "Low", 1),
        ("npm:1324", "handlebars", "4.5.2", "4.5.3", "High", 2),
        ("npm:1325", "handlebars", "4.5.2", "4.5.3", "High", 3),
    ]
    assert parsed.findings[0].output == "handlebars>optimist>minimist"


def test_repeated_lines_and_renumbered_advisories_are_one_item(parse_report) -> None:
    # Five auditAdvisory lines: four of npm advisory 1064843 (one per path) and one of
    # 1028226, both GHSA-93q8-gq69-wqmw, over ansi-regex 3.0.0 and 4.1.0.
    parsed = parse_report("yarn_audit/yarn_audit_multiple_cwes2.json", expect="yarn-audit")
    assert (len(parsed.findings), len(parsed.informational), len(parsed.targets)) == (2, 0, 1)
    assert [(i.scanner_id, i.installed_version, i.fixed_version, i.line)
            for i in parsed.findings] == [("GHSA-93q8-gq69-wqmw", "3.0.0", "5.0.1", 2),
                                          ("GHSA-93q8-gq69-wqmw", "4.1.0", "5.0.1", 2)]
    item = parsed.findings[0]
    assert item.cves == ("CVE-2021-3807",)
    assert (item.severity, item.cvss_score) == ("Medium", 7.5)
    assert item.cvss_vector == "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"
    assert item.output == ("@company.frontend/eslint-config-es6>eslint>strip-ansi>ansi-regex\n"
                           "@company.frontend/eslint-config-es6>eslint>inquirer>"
                           "string-width>strip-ansi>ansi-regex")


def test_zero_vul_covers_the_project(parse_report) -> None:
    parsed = parse_report("yarn_audit/yarn_audit_zero_vul.json", expect="yarn-audit")
    assert parsed.targets == [Target()] and parsed.items == [] and parsed.skipped == []


@pytest.mark.parametrize(("data", "message"), [
    (b'{"type":"info","data":"No lockfile found."}\n{"type":"auditSummary",\n',
     "y.json:2: malformed JSON"),
    (b'{"type":"info","data":"No lockfile found."}\n',
     "y.json: not a yarn audit report: no auditAdvisory or auditSummary line"),
    (b'{"type":"error","data":"An unexpected error occurred"}\n',
     "y.json:1: yarn audit failed: An unexpected error occurred"),
])
def test_refused(data: bytes, message: str) -> None:
    with pytest.raises(ReportError) as caught:
        list(yarn_audit.FORMAT.parse(io.BytesIO(data), "y.json"))
    assert str(caught.value).startswith(message)
