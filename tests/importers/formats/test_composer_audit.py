"""composer audit --format=json."""

from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import composer_audit
from patchpilot.importers.model import ReportError, ReportItem, Skipped, Target


def test_one_vuln(parse_report) -> None:
    parsed = parse_report("composer_audit/composer_audit_one_vuln.json",
                          expect="composer-audit")
    assert parsed.targets == [Target()]
    assert (len(parsed.findings), len(parsed.informational), len(parsed.skipped)) == (1, 0, 0)
    item = parsed.findings[0]
    assert item.scanner_id == "PKSA-pwh8-d4fr-nywn"
    assert (item.cves, item.aliases) == (("CVE-2021-32708",), ("GHSA-9f46-5r25-5wfm",))
    assert (item.ecosystem, item.package, item.installed_version, item.fixed_version) == (
        "Packagist", "league/flysystem", None, None)  # two ranges, installed unknown
    assert item.severity == "Critical"
    assert item.title == "TOCTOU Race Condition enabling remote code execution"
    assert item.references == (
        "https://github.com/thephpleague/flysystem/security/advisories/GHSA-9f46-5r25-5wfm",)
    assert item.output == "affected versions: <1.1.4|>=2.0.0,<2.1.1"


def test_empty_php_list_and_abandoned() -> None:
    data = b'{"advisories": [], "abandoned": {"swiftmailer/swiftmailer": "symfony/mailer"}}'
    rows = list(composer_audit.FORMAT.parse(io.BytesIO(data), "c.json"))
    assert rows == [Target(), Skipped("abandoned package")]


def test_single_upper_bound_is_the_fix() -> None:
    data = (b'{"advisories": {"guzzlehttp/psr7": [{"advisoryId": "PKSA-1", "packageName": '
            b'"guzzlehttp/psr7", "affectedVersions": "<1.8.4", "cve": null, "severity": '
            b'"medium"}]}}')
    item = list(composer_audit.FORMAT.parse(io.BytesIO(data), "c.json"))[1]
    assert isinstance(item, ReportItem)
    assert (item.fixed_version, item.severity, item.cves) == ("1.8.4", "Medium", ())


def test_refused() -> None:
    with pytest.raises(ReportError, match="c.json: not a composer audit report"):
        list(composer_audit.FORMAT.parse(io.BytesIO(b'{"abandoned": []}'), "c.json"))
