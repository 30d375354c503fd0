from __future__ import annotations

import io

import orjson
import pytest

from patchpilot.importers.formats import wazuh
from patchpilot.importers.model import ReportError, Target


def _counts(parsed) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return (len(parsed.findings), len(parsed.informational), len(parsed.targets),
            len(parsed.skipped))


def test_api_answer_many(parse_report) -> None:
    parsed = parse_report("wazuh/v4-7_many_findings.json", expect="wazuh")
    assert _counts(parsed) == (13, 0, 1, 0)
    # The API answer does not name the agent it is about.
    assert parsed.targets == [Target()]
    first = parsed.findings[0]
    # "CVE-YYYY-fjiewof" is no CVE id: it stays the scanner id only.
    assert (first.scanner_id, first.cves, first.package, first.installed_version,
            first.fixed_version, first.severity, first.cvss_score) == (
        "CVE-YYYY-fjiewof", (), "123123", "2.11", None, "Critical", 9.8)
    assert [(i.fixed_version, i.severity) for i in parsed.findings[5:11]] == [
        ("15", "Medium"), ("2u2", "Unknown"), ("422", "Medium"), ("1:1238", "High"),
        ("1:1238", "High"), (None, "High")]
    # cvss3 0 and cvss2 0: no score.
    assert parsed.findings[1].cvss_score is None


def test_api_answer_one(parse_report) -> None:
    parsed = parse_report("wazuh/v4-7_one_finding.json", expect="wazuh")
    assert _counts(parsed) == (1, 0, 1, 0)
    item = parsed.findings[0]
    assert (item.scanner_id, item.cves, item.title, item.package, item.installed_version,
            item.fixed_version, item.severity, item.cvss_score) == (
        "CVE-1234-123123", ("CVE-1234-123123",), "CVE-YYYY-XXXXX affects asdf", "asdf",
        "4.3.1", "4.3.2", "Medium", 5.5)
    assert item.references == ("https://nvd.nist.gov/vuln/detail/CVE-YYYY-XXXXX",
                               "https://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-YYYY-XXXXX")


def test_api_answer_without_findings(parse_report) -> None:
    parsed = parse_report("wazuh/v4-7_no_findings.json", expect="wazuh")
    assert _counts(parsed) == (0, 0, 1, 0)
    assert parsed.targets[0].empty


def test_states_index_hits_name_the_agent() -> None:
    hit = {"_index": "wazuh-states-vulnerabilities-manager", "_source": {
        "agent": {"id": "001", "name": "web-01"},
        "host": {"os": {"full": "Ubuntu 22.04.4 LTS", "platform": "ubuntu",
                        "version": "22.04.4"}},
        "package": {"name": "openssl", "version": "3.0.2-0ubuntu1.15", "type": "deb"},
        "vulnerability": {"id": "CVE-2024-5535", "severity": "Medium",
                          "score": {"base": 5.9, "version": "3.1"},
                          "reference": "https://ubuntu.com/security/CVE-2024-5535"}}}
    report = orjson.dumps({"hits": {"total": {"value": 1}, "hits": [hit]}})
    target, item = wazuh.parse(io.BytesIO(report), "hits.json")
    assert target == Target(hostname="web-01", os="Ubuntu 22.04.4 LTS")
    assert (item.scanner_id, item.ecosystem, item.package, item.installed_version,
            item.severity, item.cvss_score, item.references) == (
        "CVE-2024-5535", "Ubuntu:22.04", "openssl", "3.0.2-0ubuntu1.15", "Medium", 5.9,
        ("https://ubuntu.com/security/CVE-2024-5535",))


def test_refusals() -> None:
    with pytest.raises(ReportError, match="answered an error: Permission denied"):
        list(wazuh.parse(io.BytesIO(
            b'{"data": {"affected_items": []}, "error": 1, "message": "Permission denied"}'),
            "x.json"))
    with pytest.raises(ReportError, match="not a Wazuh vulnerability report"):
        list(wazuh.parse(io.BytesIO(b'{"data": 1}'), "x.json"))
