"""bundler-audit check: the text output and --format json."""

from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import bundler_audit
from patchpilot.importers.model import ReportError, ReportItem, Skipped, Target


def test_text_v0_6_1(parse_report) -> None:
    parsed = parse_report("bundler_audit/bundler-audit_v0.6.1.txt", expect="bundler-audit")
    assert parsed.targets == [Target()]
    assert (len(parsed.findings), len(parsed.informational), len(parsed.skipped)) == (2, 0, 0)
    rack, sprockets = parsed.findings
    assert (rack.scanner_id, rack.cves, rack.line) == ("CVE-2018-16471", ("CVE-2018-16471",), 1)
    assert (rack.ecosystem, rack.package, rack.installed_version, rack.fixed_version) == (
        "RubyGems", "rack", "1.4.7", "1.6.11")
    assert (rack.severity, rack.title) == ("Unknown", "Possible XSS vulnerability in Rack")
    assert rack.solution == "upgrade to ~> 1.6.11, >= 2.0.6"
    assert rack.references == (
        "https://groups.google.com/forum/#!topic/ruby-security-ann/NAalCee8n6o",)
    assert (sprockets.scanner_id, sprockets.installed_version, sprockets.fixed_version,
            sprockets.line) == ("CVE-2018-3760", "2.2.3", "2.12.5", 9)


def test_json_v0_9(parse_report) -> None:
    parsed = parse_report("bundler_audit/version_9.0.json", expect="bundler-audit-json")
    assert parsed.targets == [Target()]
    assert (len(parsed.findings), len(parsed.informational), len(parsed.skipped)) == (4, 0, 0)
    assert [(i.scanner_id, i.cves, i.aliases, i.package, i.installed_version, i.fixed_version)
            for i in parsed.findings] == [
        ("CVE-2020-8161", ("CVE-2020-8161",), ("GHSA-5f9h-9pjv-v6j7",), "rack", "1.6.13",
         "2.1.3"),
        ("CVE-2020-8184", ("CVE-2020-8184",), ("GHSA-j6w9-fv6q-3q52",), "rack", "1.6.13",
         "2.1.4"),
        ("CVE-2018-3760", ("CVE-2018-3760",), ("GHSA-pr3h-jjhj-573x",), "sprockets", "2.2.3",
         "2.12.5"),
        ("GHSA-xc9x-jj77-9p9j", (), (), "nokogiri", "1.15.2", "1.16.2"),
    ]
    item = parsed.findings[0]
    assert item.title == "Directory traversal in Rack::Directory app bundled with Rack"
    assert (item.severity, item.cvss_score, item.ecosystem) == ("Unknown", None, "RubyGems")


def test_text_insecure_source_and_no_vulnerabilities() -> None:
    data = (b"Insecure Source URI found: git://github.com/rails/rails.git\n"
            b"No vulnerabilities found\n")
    rows = list(bundler_audit.FORMAT.parse(io.BytesIO(data), "b.txt"))
    assert rows == [Target(), Skipped("insecure gem source", line=1)]


def test_json_scores_and_insecure_source() -> None:
    data = (b'{"version": "0.9.1", "created_at": "x", "results": [{"type": "unpatched_gem", '
            b'"gem": {"name": "rails", "version": "5.2.0"}, "advisory": {"id": "CVE-2019-5418"'
            b', "cve": "2019-5418", "cvss_v3": 7.5, "criticality": null, "patched_versions": '
            b'[">= 5.2.2.1"]}}, {"type": "insecure_source", "source": "http://rubygems.org/"}]}')
    rows = list(bundler_audit.FORMAT_JSON.parse(io.BytesIO(data), "b.json"))
    item = rows[1]
    assert isinstance(item, ReportItem)
    assert (item.severity, item.cvss_score, item.fixed_version) == (
        "High", 7.5, "5.2.2.1")
    assert rows[2] == Skipped("insecure gem source")


@pytest.mark.parametrize(("data", "message"), [
    (b"\n\n", "b.txt: the file is empty"),
    (b"hello world\n", "b.txt: not a bundler-audit report"),
    (b"Name: rack\nVersion: 1.4.7\nTitle: x\n", "b.txt:1: an entry without an advisory id"),
])
def test_text_refused(data: bytes, message: str) -> None:
    with pytest.raises(ReportError) as caught:
        list(bundler_audit.FORMAT.parse(io.BytesIO(data), "b.txt"))
    assert str(caught.value).startswith(message)
