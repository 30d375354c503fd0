from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import clair
from patchpilot.importers.model import ReportError, Target


def _counts(parsed) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return (len(parsed.findings), len(parsed.informational), len(parsed.targets),
            len(parsed.skipped))


def test_clair_scanner_report(parse_report) -> None:
    parsed = parse_report("clair/clair_few_vuln.json", expect="clair")
    assert _counts(parsed) == (4, 0, 1, 0)
    assert parsed.targets == [Target(
        artifact="default-docker-3rdparty.bahnhub.tech.rz.db.de:443/ubuntu:bionic-20190912.1")]
    systemd, e2fsprogs = parsed.findings[:2]
    assert (systemd.scanner_id, systemd.cves, systemd.ecosystem, systemd.package,
            systemd.installed_version, systemd.fixed_version, systemd.severity) == (
        "CVE-2018-20839", ("CVE-2018-20839",), "Ubuntu:18.04", "systemd",
        "237-3ubuntu10.29", None, "Medium")
    assert systemd.references == (
        "http://people.ubuntu.com/~ubuntu-security/cve/CVE-2018-20839",)
    assert (e2fsprogs.package, e2fsprogs.fixed_version) == ("e2fsprogs", "1.44.1-1ubuntu1.2")


def test_klar_empty_report(parse_report) -> None:
    parsed = parse_report("clair/clairklar_empty.json", expect="clair")
    assert _counts(parsed) == (0, 0, 1, 0)
    assert parsed.targets[0].empty


def test_klar_severity_groups(parse_report) -> None:
    parsed = parse_report("clair/clairklar_mixed.json", expect="clair")
    assert _counts(parsed) == (6, 0, 1, 0)
    assert [(i.package, i.severity) for i in parsed.findings] == [
        ("perl-libs", "Critical"), ("systemd-libs", "Critical"), ("perl-Pod-Escapes", "High"),
        ("perl", "Medium"), ("systemd", "Low"), ("perl-macros", "Unknown")]
    systemd = parsed.findings[1]
    # An RHSA: its CVEs are those its description names; the 0: epoch is dropped.
    assert (systemd.scanner_id, systemd.cves, systemd.ecosystem, systemd.installed_version,
            systemd.fixed_version) == (
        "RHSA-2019:0049", ("CVE-2018-15688", "CVE-2018-16864", "CVE-2018-16865"),
        "CentOS:7", "219-62.el7", "219-62.el7_6.2")
    perl = parsed.findings[0]
    assert (perl.installed_version, perl.fixed_version) == (
        "4:5.16.3-293.el7", "4:5.16.3-294.el7_6")


def test_refusal() -> None:
    with pytest.raises(ReportError, match="not a Clair report"):
        list(clair.parse(io.BytesIO(b'{"image": "x"}'), "x.json"))
