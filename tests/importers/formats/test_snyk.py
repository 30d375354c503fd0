from __future__ import annotations

import io
from collections import Counter

import pytest

from patchpilot.importers.formats import snyk
from patchpilot.importers.model import ReportError, Skipped, Target

XMLSEC = "SNYK-JAVA-ORGAPACHESANTUARIO-460281"


def test_single_project_without_vulns_keeps_its_target(parse_report) -> None:
    parsed = parse_report("snyk/single_project_no_vulns.json", expect="snyk")
    assert parsed.targets == [Target(artifact="com.test:maven-profiles")]
    assert parsed.items == [] and parsed.skipped == []


def test_single_project_one_vuln(parse_report) -> None:
    parsed = parse_report("snyk/single_project_one_vuln.json", expect="snyk")
    assert parsed.targets == [Target(artifact="com.test:myframework")]
    [item] = parsed.findings
    assert (item.scanner_id, item.cves, item.aliases) == (XMLSEC, ("CVE-2019-12400",), ())
    assert item.title == "XML External Entity (XXE) Injection"
    assert (item.ecosystem, item.package, item.installed_version, item.fixed_version) == (
        "Maven", "org.apache.santuario:xmlsec", "2.1.1", "2.1.4")
    assert item.location == "pom.xml"
    assert (item.severity, item.cvss_score) == ("Medium", 6.5)
    assert item.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:L"
    assert item.exploit_available is None  # "Not Defined"
    assert item.cwes == ("CWE-611",)


def test_all_projects_one_vuln(parse_report) -> None:
    parsed = parse_report("snyk/all-projects_one_vuln.json", expect="snyk")
    # Two of the three projects share a name: one target each name.
    assert parsed.targets == [Target(artifact="com.test:custom-rule"),
                              Target(artifact="com.test:maven-enforcer")]
    assert [(i.scanner_id, i.target.artifact) for i in parsed.findings] == [
        (XMLSEC, "com.test:custom-rule")]


def test_all_projects_many_vulns(parse_report) -> None:
    parsed = parse_report("snyk/all-projects_many_vulns.json", expect="snyk")
    assert [t.artifact for t in parsed.targets] == [
        "com.test:version-collision", "com.test:project-a", "com.test:project-b"]
    assert [(i.target.artifact, i.installed_version, i.fixed_version, i.location)
            for i in parsed.findings] == [
        ("com.test:version-collision", "29.0-jre", "30.0-jre", "pom.xml"),
        ("com.test:project-a", "22.0", "30.0-android", "project-a\\pom.xml"),
        ("com.test:project-a", "22.0", "24.1.1-android", "project-a\\pom.xml"),
        ("com.test:project-b", "29.0-jre", "30.0-jre", "project-b\\pom.xml")]
    item = parsed.findings[2]
    assert (item.scanner_id, item.cves, item.aliases) == (
        "SNYK-JAVA-COMGOOGLEGUAVA-32236", ("CVE-2018-10237",), ("GHSA-mvr2-9pj6-7w5j",))


def test_all_projects_dedupes_paths_and_skips_licenses(parse_report) -> None:
    parsed = parse_report("snyk/all_projects_issue4277.json", expect="snyk")
    assert parsed.targets == [Target(artifact="project"),
                              Target(artifact="email-template-manager")]
    # 24 + 57 dependency paths, 13 + 36 distinct (issue, package, version).
    assert Counter(i.target.artifact for i in parsed.findings) == {
        "project": 13, "email-template-manager": 36}
    assert parsed.skipped == [Skipped("license finding")]
    minimist = [(i.installed_version, i.fixed_version) for i in parsed.findings
                if i.scanner_id == "SNYK-JS-MINIMIST-559764"]
    assert minimist == [("1.2.0", "1.2.3"), ("0.0.8", "0.2.1")]
    item = parsed.findings[0]
    assert (item.scanner_id, item.ecosystem, item.package, item.fixed_version) == (
        "SNYK-DOTNET-MICROSOFTASPNETCORE-174184", "NuGet", "Microsoft.AspNetCore", None)


def test_all_containers_target_output(parse_report) -> None:
    parsed = parse_report("snyk/all_containers_target_output.json", expect="snyk")
    assert [t.artifact for t in parsed.targets] == [
        "Mobile-Security-Framework-MobSF", "@dependencytrack/frontend", "cyberspect",
        "TestFiles"]
    assert Counter(i.location for i in parsed.findings) == {
        "Mobile-Security-Framework-MobSF/requirements.txt": 6,
        "frontend/package-lock.json": 5, "sbom/SBOMTests/obj/project.assets.json": 6}
    item = parsed.findings[0]
    assert (item.scanner_id, item.cves, item.severity, item.cvss_score) == (
        "SNYK-PYTHON-DJANGO-2940618", ("CVE-2022-34265",), "Critical", 9.1)
    assert (item.ecosystem, item.package, item.installed_version, item.fixed_version) == (
        "PyPI", "django", "4.0.5", "4.0.6")


def test_container_image_and_its_application(parse_report) -> None:
    parsed = parse_report("snyk/snykcontainer_issue_9270.json", expect="snyk")
    assert parsed.targets == [Target(artifact="sarim04/juiceshop:latest")]
    assert Counter(i.ecosystem for i in parsed.findings) == {"Debian:11": 18, "npm": 12}
    item = parsed.findings[0]
    assert (item.scanner_id, item.cves) == ("SNYK-DEBIAN11-GCC10-5901313", ("CVE-2023-4039",))
    # "gcc-10/libgcc-s1": the binary package the image has installed.
    assert (item.package, item.installed_version, item.fixed_version) == (
        "libgcc-s1", "10.2.1-6", None)
    assert (item.severity, item.cvss_score) == ("Low", 4.8)
    assert [i.package for i in parsed.findings[:3]] == ["libgcc-s1", "libgomp1", "libstdc++6"]
    app = next(i for i in parsed.findings if i.scanner_id == "SNYK-JS-EXPRESSJWT-575022")
    assert (app.package, app.installed_version, app.fixed_version, app.location) == (
        "express-jwt", "0.1.3", "6.0.0", "/juice-shop/package.json")
    assert app.aliases == ("GHSA-6g6m-m6h5-w9gf",)


def test_snyk_error_output_is_refused() -> None:
    with pytest.raises(ReportError, match="a Snyk error, not a report: Authentication failed"):
        list(snyk.parse(io.BytesIO(b'{"ok": false, "error": "Authentication failed"}'), "s.json"))
