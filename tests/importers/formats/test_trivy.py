from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import trivy
from patchpilot.importers.model import ReportError


def _counts(parsed) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return (len(parsed.findings), len(parsed.informational), len(parsed.targets),
            len(parsed.skipped))


def test_all_statuses_image(parse_report) -> None:
    parsed = parse_report("trivy/all_statuses.json", expect="trivy")
    assert _counts(parsed) == (7, 0, 1, 1)
    # ArtifactName is empty: the image is named by the OS result's Target.
    assert parsed.targets[0].artifact == "noppaknopsta/example-app:main-159"
    assert parsed.targets[0].os == "debian 10.13"
    assert [s.reason for s in parsed.skipped] == ["not affected (Trivy status not_affected)"]
    item = parsed.findings[0]
    assert (item.scanner_id, item.cves, item.ecosystem, item.package,
            item.installed_version, item.fixed_version) == (
        "CVE-2011-3374", ("CVE-2011-3374",), "Debian:10", "apt", "1.8.2.3", None)
    assert item.severity == "Low"
    assert (item.cvss_vector, item.cvss_score) == (
        "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:L/A:N", 3.7)
    assert item.cwes == ("CWE-347",)
    assert item.target is parsed.targets[0]
    temp = parsed.findings[1]
    assert (temp.scanner_id, temp.cves, temp.package) == ("TEMP-0841856-B18BAF", (), "bash")
    assert [i.fixed_version for i in parsed.findings if i.package == "binutils"] == [
        None] * 5


def test_cvss_v4_of_the_severity_source_and_branch_fix(parse_report) -> None:
    parsed = parse_report("trivy/cvssv4_severity_source.json", expect="trivy")
    assert _counts(parsed) == (3, 0, 1, 0)
    assert parsed.targets[0].artifact == "lib/catalina.jar"
    item = parsed.findings[0]
    assert (item.scanner_id, item.aliases) == ("CVE-2025-66614", ("GHSA-fpj8-gq4v-p354",))
    assert (item.ecosystem, item.package, item.installed_version, item.location) == (
        "Maven", "org.apache.tomcat:tomcat-catalina", "9.0.109", "catalina.jar")
    # "11.0.14, 10.1.49, 9.0.112": the fix on the installed 9.0 branch.
    assert item.fixed_version == "9.0.112"
    assert (item.cvss_vector, item.cvss_score) == (
        "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N", 6.3)
    assert item.severity == "Medium"
    assert item.title == ("tomcat: Client certificate verification bypass due to virtual "
                          "host mapping")


def test_misconfiguration_only_filesystem(parse_report) -> None:
    parsed = parse_report("trivy/issue_14136.json", expect="trivy")
    assert _counts(parsed) == (0, 0, 1, 1)
    assert parsed.targets[0].artifact == "tofu/clusters/sandbox"
    assert parsed.skipped[0].reason == "misconfiguration"


def test_cluster_resources_with_misconfigurations_only(parse_report) -> None:
    parsed = parse_report("trivy/issue_9170.json", expect="trivy")
    assert _counts(parsed) == (0, 0, 0, 37)
    assert {s.reason for s in parsed.skipped} == {"misconfiguration"}


def test_sbom_input_with_deb_purl(parse_report) -> None:
    parsed = parse_report("trivy/severity_prio.json", expect="trivy")
    assert _counts(parsed) == (2, 0, 1, 0)
    assert parsed.targets[0].artifact == "sbom.json"
    curl, certifi = parsed.findings
    # The purl says Ubuntu 22.04 although the result's type is pip.
    assert (curl.ecosystem, curl.package, curl.installed_version, curl.fixed_version) == (
        "Ubuntu:22.04", "curl", "7.81.0-1ubuntu1.14", "7.81.0-1ubuntu1.15")
    assert curl.severity == "Low"
    assert (certifi.ecosystem, certifi.package, certifi.fixed_version, certifi.location) == (
        "PyPI", "certifi", "2023.7.22", "requirements.txt")
    assert certifi.severity == "Critical"
    assert certifi.cvss_score == 7.5


def test_v2_only_vector(parse_report) -> None:
    parsed = parse_report("trivy/issue_9263.json", expect="trivy")
    assert _counts(parsed) == (1, 0, 1, 0)
    item = parsed.findings[0]
    assert (item.scanner_id, item.package, item.installed_version, item.severity) == (
        "CVE-2013-7445", "linux-libc-dev", "6.1.55-1", "High")
    assert (item.cvss_vector, item.cvss_score) == ("AV:N/AC:L/Au:N/C:N/I:N/A:C", 7.8)
    # A reference with a trailing remark keeps the URL only.
    assert ("https://lists.freedesktop.org/archives/dri-devel/2015-September/089778.html"
            in item.references)


def test_kubernetes_cluster(parse_report) -> None:
    parsed = parse_report("trivy/kubernetes.json", expect="trivy")
    assert _counts(parsed) == (10, 0, 2, 10)
    assert [t.artifact for t in parsed.targets] == [
        "gcr.io/google_samples/gb-redis-follower:v2", "docker.io/redis:6.0.5"]
    item = parsed.findings[0]
    assert (item.scanner_id, item.aliases, item.ecosystem, item.package,
            item.installed_version, item.fixed_version, item.severity) == (
        "CVE-2020-27350", ("DSA-4808-1",), "Debian:10", "apt", "1.8.2.1", "1.8.2.2",
        "Medium")
    assert item.target.artifact == "gcr.io/google_samples/gb-redis-follower:v2"
    assert parsed.findings[5].target.artifact == "docker.io/redis:6.0.5"


def test_license_findings_are_skipped(parse_report) -> None:
    parsed = parse_report("trivy/license_scheme.json", expect="trivy")
    assert _counts(parsed) == (0, 0, 1, 19)
    assert parsed.targets[0].artifact == "alpine:3.11"
    assert parsed.targets[0].os == "alpine 3.11.13"
    assert {s.reason for s in parsed.skipped} == {"license finding"}


def test_legacy_null_is_a_scan_without_results(parse_report) -> None:
    parsed = parse_report("trivy/legacy_no_vuln.json", expect="trivy")
    assert _counts(parsed) == (0, 0, 0, 0)


def test_legacy_list() -> None:
    report = (b'[{"Target": "alpine:3.10 (alpine 3.10.2)", "Type": "alpine", '
              b'"Vulnerabilities": [{"VulnerabilityID": "CVE-2019-1549", "PkgName": '
              b'"openssl", "InstalledVersion": "1.1.1c-r0", "FixedVersion": "1.1.1d-r0", '
              b'"Severity": "MEDIUM"}]}]')
    rows = list(trivy.parse(io.BytesIO(report), "legacy.json"))
    target, item = rows
    assert target.artifact == "alpine:3.10"
    assert (item.scanner_id, item.ecosystem, item.package, item.fixed_version,
            item.severity) == ("CVE-2019-1549", "Alpine:3.10", "openssl", "1.1.1d-r0",
                               "Medium")


def test_malformed_and_empty_are_refused() -> None:
    with pytest.raises(ReportError, match=r"bad.json:2: malformed JSON"):
        list(trivy.parse(io.BytesIO(b'{"SchemaVersion": 2,\n "Results": [}'), "bad.json"))
    with pytest.raises(ReportError, match="the file is empty"):
        list(trivy.parse(io.BytesIO(b""), "empty.json"))
    with pytest.raises(ReportError, match="not a Trivy report"):
        list(trivy.parse(io.BytesIO(b'{"foo": 1}'), "other.json"))
