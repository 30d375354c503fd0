from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import grype
from patchpilot.importers.model import ReportError, Target


def _counts(parsed) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return (len(parsed.findings), len(parsed.informational), len(parsed.targets),
            len(parsed.skipped))


def test_check_all_fields(parse_report) -> None:
    parsed = parse_report("anchore_grype/check_all_fields.json", expect="grype")
    assert _counts(parsed) == (6, 0, 1, 0)
    assert parsed.targets[0] == Target(artifact="vulnerable-image:latest", os="debian 10")
    first = parsed.findings[0]
    assert (first.scanner_id, first.cves, first.ecosystem, first.package,
            first.installed_version, first.fixed_version, first.location) == (
        "CVE-2004-0971", ("CVE-2004-0971",), "Debian:10", "libgssapi-krb5-2",
        "1.17-3+deb10u3", None, "/var/lib/dpkg/status")
    # Negligible is Low; the vector comes from the related NVD record.
    assert (first.severity, first.cvss_vector, first.cvss_score) == (
        "Low", "AV:L/AC:L/Au:N/C:N/I:P/A:N", 2.1)
    django = parsed.findings[4]
    assert (django.scanner_id, django.cves, django.ecosystem, django.package,
            django.installed_version, django.fixed_version, django.severity) == (
        "GHSA-v6rh-hp5x-86rv", ("CVE-2021-44420",), "PyPI", "Django", "3.2.9", "3.2.10",
        "High")
    assert django.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:L"
    # "wont-fix" lists versions that fix nothing here.
    redis = parsed.findings[1]
    assert (redis.package, redis.fixed_version, redis.cvss_score) == ("redis", None, 8.8)


def test_fix_not_available(parse_report) -> None:
    parsed = parse_report("anchore_grype/fix_not_available.json", expect="grype")
    assert _counts(parsed) == (1, 0, 1, 0)
    assert parsed.targets[0] == Target(artifact="REDACTED", os="ubuntu 20.04")
    item = parsed.findings[0]
    assert (item.scanner_id, item.package, item.ecosystem, item.fixed_version,
            item.location, item.severity, item.cvss_vector, item.cvss_score) == (
        "CVE-2009-3882", "java", "binary", None, "/opt/java/openjdk/bin/java", "High",
        "AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5)


def test_rpm_fix_without_zero_epoch(parse_report) -> None:
    parsed = parse_report("anchore_grype/issue_9618.json", expect="grype")
    assert _counts(parsed) == (35, 0, 1, 0)
    assert parsed.targets[0].artifact == (
        "quay.io/cloudservices/xjoin-kafka-connect-strimzi:latest")
    item = parsed.findings[0]
    assert (item.scanner_id, item.ecosystem, item.package, item.installed_version,
            item.fixed_version, item.severity, item.cvss_score) == (
        "CVE-2023-38473", "Red Hat:8", "avahi-libs", "0.7-20.el8", "0.7-21.el8_9.1",
        "Medium", 6.2)
    assert sum(1 for i in parsed.findings if i.ecosystem == "Maven") == 3
    assert sum(1 for i in parsed.findings if i.fixed_version) == 23


def test_old_schema_many_vulns(parse_report) -> None:
    # 3 MB with "matches" first: detected by its start, the other keys are out of sniff.
    parsed = parse_report("anchore_grype/many_vulns2.json", expect="grype")
    assert _counts(parsed) == (1567, 0, 1, 0)
    assert parsed.targets[0] == Target(artifact="python:3.7.10", os="debian 10")
    item = parsed.findings[0]
    assert (item.scanner_id, item.package, item.installed_version, item.ecosystem,
            item.severity, item.cvss_vector, item.cvss_score) == (
        "CVE-2019-9192", "libc6-dev", "2.28-10", "Debian:10", "Low",
        "AV:N/AC:L/Au:N/C:N/I:N/A:P", 5.0)
    fixed = next(i for i in parsed.findings if i.fixed_version)
    assert (fixed.scanner_id, fixed.package, fixed.fixed_version) == (
        "CVE-2020-17525", "libsvn1", "1.10.4-1+deb10u2")
    pip = next(i for i in parsed.findings if i.scanner_id == "CVE-2018-20225")
    assert pip.cvss_vector == "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H"
    assert sum(1 for i in parsed.findings if i.severity == "Unknown") == 104


def test_directory_scan_names_nothing(parse_report) -> None:
    parsed = parse_report("anchore_grype/many_vulns4.json", expect="grype")
    assert _counts(parsed) == (9, 0, 1, 0)
    assert parsed.targets[0].empty
    item = parsed.findings[0]
    assert (item.scanner_id, item.ecosystem, item.package, item.installed_version,
            item.location, item.severity) == (
        "CVE-1999-1338", "npm", "delegate", "3.2.0", "components/yarn.lock", "Medium")


def test_same_cve_on_two_paths(parse_report) -> None:
    parsed = parse_report("anchore_grype/same_cve_different_paths.json", expect="grype")
    assert _counts(parsed) == (2, 0, 1, 0)
    assert [(i.scanner_id, i.package, i.location, i.severity) for i in parsed.findings] == [
        ("CVE-2021-33574", "libc6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "Critical"),
        ("CVE-2021-33574", "libc6", "/lib/x86_64-linux-gnu/libc.so.6", "Critical")]


def test_refusals() -> None:
    with pytest.raises(ReportError, match="not a Grype report"):
        list(grype.parse(io.BytesIO(b'{"source": {}}'), "x.json"))
    with pytest.raises(ReportError, match=r"x.json:1: malformed JSON"):
        list(grype.parse(io.BytesIO(b'{"matches": [}'), "x.json"))
