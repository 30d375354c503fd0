from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import twistlock
from patchpilot.importers.model import ReportError, Target


def _counts(parsed) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return (len(parsed.findings), len(parsed.informational), len(parsed.targets),
            len(parsed.skipped))


def test_json_with_packages_and_compliances(parse_report) -> None:
    parsed = parse_report("twistlock/findings_include_packages.json", expect="twistlock")
    assert _counts(parsed) == (4, 0, 1, 2)
    assert parsed.targets == [Target(
        artifact="sha256:f4c0503d26c8da0a04e6190c9d4f2a30f38958852b9fb80bcd2b819a7571e7f7",
        os="Debian GNU/Linux 9 (stretch)")]
    assert {s.reason for s in parsed.skipped} == {"compliance check"}
    glibc = parsed.findings[1]
    # The source package, without the binaries it builds.
    assert (glibc.scanner_id, glibc.package, glibc.installed_version, glibc.fixed_version,
            glibc.severity, glibc.cvss_vector, glibc.cvss_score) == (
        "CVE-2018-6485", "glibc", "2.24-11+deb9u4", None, "High",
        "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8)
    # The report's own severity, not the score's band.
    assert [(i.scanner_id, i.severity) for i in parsed.findings][3] == ("CVE-2018-9234", "Low")


def test_json_prisma_id_without_link(parse_report) -> None:
    parsed = parse_report("twistlock/one_vuln_no_link_no_description.json",
                          expect="twistlock")
    assert _counts(parsed) == (1, 0, 1, 1)
    item = parsed.findings[0]
    assert (item.scanner_id, item.cves, item.package, item.installed_version,
            item.fixed_version, item.severity, item.references, item.description) == (
        "PRISMA-2021-0013", (), "marked", "0.3.9", "1.1.1", "Medium", (), None)


def test_json_named_image_and_branch_fixes(parse_report) -> None:
    parsed = parse_report("twistlock/packagename.json", expect="twistlock")
    assert _counts(parsed) == (1, 0, 1, 0)
    assert parsed.targets == [Target(artifact="some-docker-image",
                                     os="Rocky Linux 9.5 (Blue Onyx)")]
    item = parsed.findings[0]
    # "fixed in 4.1.3, 4.0.9, 3.6.8" for 3.5.11: the 3.x fix.
    assert (item.scanner_id, item.package, item.installed_version, item.fixed_version,
            item.location, item.severity) == (
        "CVE-2025-48913", "org.apache.cxf_cxf-core", "3.5.11", "3.6.8",
        "/opt/vendor/component-kit/libs/cxf-core-3.5.11.jar", "Critical")


def test_csv_many(parse_report) -> None:
    parsed = parse_report("twistlock/scan_report_many_vuln.csv", expect="twistlock-csv")
    assert _counts(parsed) == (3, 0, 3, 0)
    assert [t.artifact for t in parsed.targets] == [
        "provisioner-docker.cloud.thdm.local/acme/acme-image-root:1.1.2",
        "provisioner-docker.cloud.thdm.local/acme/acme-image-ultimate:1.1.2",
        "provisioner-docker./acme/acme-image-beta:1.1.2"]
    first, second, third = parsed.findings
    assert (first.scanner_id, first.ecosystem, first.package, first.installed_version,
            first.fixed_version, first.severity, first.cvss_score, first.line) == (
        "CVE-2023-12334", "Maven", "io.class_class", "1.1.1.Release", "1.2.11", "Critical",
        1.2, 2)
    assert first.target.os == "FancyOS"
    # "fixed in the future 1.0., 2.3.45": only the version is read.
    assert (second.fixed_version, second.ecosystem, second.severity) == (
        "2.3.45", "langua", "High")
    assert (third.fixed_version, third.package) == ("0.0.1", "load")


def test_csv_one_and_none(parse_report) -> None:
    parsed = parse_report("twistlock/scan_report_one_vuln.csv", expect="twistlock-csv")
    assert _counts(parsed) == (1, 0, 1, 0)
    assert parsed.findings[0].description.startswith("HttpObjectDecoder.java in a complex")
    empty = parse_report("twistlock/scan_report_no_vuln.csv", expect="twistlock-csv")
    assert _counts(empty) == (0, 0, 0, 0)


def test_refusals() -> None:
    with pytest.raises(ReportError, match="not a Twistlock report"):
        list(twistlock.parse(io.BytesIO(b'{"results": 3}'), "x.json"))
    with pytest.raises(ReportError, match="not a Twistlock CSV"):
        list(twistlock.parse_csv(io.BytesIO(b"a,b,c\n1,2,3\n"), "x.csv"))
    with pytest.raises(ReportError, match="the file is empty"):
        list(twistlock.parse_csv(io.BytesIO(b""), "x.csv"))
