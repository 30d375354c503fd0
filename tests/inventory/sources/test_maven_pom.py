"""pom.xml: pinned dependencies, properties resolved, entities never expanded.

The poms are real, from the test suites of osv-scalibr and syft
(../shared/data/inventories/maven-pom/).  Three cases no real pom shows are written
inline below (a nested property, ``${project.*}`` from the parent, an undefined
property), and tests/fixtures/maven-pom/entities.xml is a hand-made XXE attack, which no
project's pom is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.inventory.sources.maven_pom import SOURCE
from patchpilot.models import Package
from tests.inventory.sources.helpers import format_error, parse_file


@pytest.fixture(scope="module")
def poms(inventories: Path) -> Path:
    """The folder of real pom.xml files."""
    return inventories / "maven-pom"


def test_properties_and_a_version_range(poms: Path) -> None:
    path = poms / "osv-scalibr__interpolation.xml"
    parsed = parse_file(SOURCE, path)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("org.mine:mypackage", "1.0.0"),  # ${mypackageVersion}
        ("org.mine:my.package", "2.3.4"),  # ${my.package.version}: a dotted name
    ]
    assert parsed.packages[0] == Package(
        ecosystem="Maven", name="org.mine:mypackage", version="1.0.0",
        purl="pkg:maven/org.mine/mypackage@1.0.0", location=str(path))
    assert parsed.warnings == (
        f"{path}: org.mine:ranged-package has the version range [9.4.35.v20201120,9.5), "
        "not one version; not checked",)


def test_parent_and_dependency_management(poms: Path) -> None:
    path = poms / "osv-scalibr__with-parent.xml"
    parsed = parse_file(SOURCE, path)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("org.alice:alice", "1.0.0"), ("org.bob:bob", "2.0.0"),
        ("org.chuck:chuck", "3.0.0")]  # version from this pom's <dependencyManagement>
    # frank's version is in the parent pom, which is not here; the BOM import is no package.
    assert parsed.warnings == (
        f"{path}: org.frank:frank takes its version from a parent pom or BOM; not checked "
        "(scan the effective pom)",)


@pytest.mark.parametrize(("name", "expected"), [
    # An explicit version wins over <dependencyManagement>'s 4.1.42.Final; the managed
    # jsr305 that nothing uses is no package.
    ("osv-scalibr__with-dependency-management.xml",
     [("io.netty:netty-all", "4.1.9"), ("org.slf4j:slf4j-log4j12", "1.7.25")]),
    ("osv-scalibr__with-scope.xml", [("abc:xyz", "1.2.3"), ("junit:junit", "4.12")]),  # test
    ("osv-scalibr__multi-version.xml", [("abc:example.com", "1.0.0"),
                                        ("abc:example.com", "1.1.1")]),
    ("osv-scalibr__two-packages.xml", [("io.netty:netty-all", "4.1.42.Final"),
                                       ("org.slf4j:slf4j-log4j12", "1.7.25")]),
    ("osv-scalibr__encoding.xml", [("junit:junit", "4.12")]),  # declared iso-8859-1
    ("osv-scalibr__parent_pom.xml", [("org.dave:dave", "4.0.0")]),
    ("syft__pkg-coverage__pom.xml", [("joda-time:joda-time", "2.9.2"),
                                     ("junit:junit", "4.12")]),
    ("osv-scalibr__empty.xml", []),
])
def test_other_real_poms(poms: Path, name: str, expected: list[tuple[str, str]]) -> None:
    parsed = parse_file(SOURCE, poms / name)
    assert [(p.name, p.version) for p in parsed.packages] == expected
    assert parsed.warnings == ()


def test_nested_project_and_undefined_properties() -> None:
    # No real pom here shows these three: a property defined by another property,
    # ${project.version} inherited from <parent>, and a property defined nowhere.
    data = (b'<project xmlns="http://maven.apache.org/POM/4.0.0">'
            b"<parent><groupId>com.example</groupId><artifactId>platform</artifactId>"
            b"<version>2.3.0</version></parent><artifactId>orders</artifactId>"
            b"<properties><log4j2.version>2.14.1</log4j2.version>"
            b"<log4j.version>${log4j2.version}</log4j.version></properties>"
            b"<dependencies>"
            b"<dependency><groupId>org.apache.logging.log4j</groupId>"
            b"<artifactId>log4j-core</artifactId><version>${log4j.version}</version>"
            b"</dependency>"
            b"<dependency><groupId>${project.groupId}</groupId><artifactId>orders-api"
            b"</artifactId><version>${project.version}</version></dependency>"
            b"<dependency><groupId>commons-io</groupId><artifactId>commons-io</artifactId>"
            b"<version>${commons-io.version}</version></dependency>"
            b"</dependencies></project>")
    parsed = SOURCE.parse(data, "pom.xml", None)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("org.apache.logging.log4j:log4j-core", "2.14.1"), ("com.example:orders-api", "2.3.0")]
    assert parsed.warnings == (
        "pom.xml: commons-io:commons-io version ${commons-io.version} uses a property not "
        "defined in this pom; not checked",)


def test_entities_are_refused(fixtures: Path) -> None:
    # An XXE attempt (SYSTEM entity reading /etc/passwd): refused, never expanded.
    error = format_error(SOURCE, (fixtures / "maven-pom" / "entities.xml").read_bytes())
    assert error.detail == "DTDs and entities are refused in a pom.xml (EntitiesForbidden)"


def test_billion_laughs_is_refused() -> None:
    data = (b'<?xml version="1.0"?><!DOCTYPE project [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><project>&b;</project>')
    assert format_error(SOURCE, data).detail.startswith("DTDs and entities are refused")


def test_no_namespace_and_no_dependencies() -> None:
    aggregator = (b"<project><modelVersion>4.0.0</modelVersion><groupId>g</groupId>"
                  b"<artifactId>parent</artifactId><version>1</version>"
                  b"<packaging>pom</packaging><modules><module>a</module></modules>"
                  b"</project>")
    assert SOURCE.parse(aggregator, "pom.xml", None).packages == []
    plain = (b"<project><dependencies><dependency><groupId>g</groupId>"
             b"<artifactId>a</artifactId><version>1.0</version></dependency>"
             b"</dependencies></project>")
    assert [p.name for p in SOURCE.parse(plain, "pom.xml", None).packages] == ["g:a"]


def test_latin1_declared_encoding() -> None:
    data = ('<?xml version="1.0" encoding="ISO-8859-1"?><project><name>Café</name>'
            "<dependencies><dependency><groupId>g</groupId><artifactId>a</artifactId>"
            "<version>2</version></dependency></dependencies></project>").encode("latin-1")
    assert [(p.name, p.version) for p in SOURCE.parse(data, "pom.xml", None).packages] == [
        ("g:a", "2")]


def test_truncated_real_pom(poms: Path) -> None:
    # The real file cut inside its second dependency (line 14), as an interrupted copy
    # leaves it.
    data = (poms / "osv-scalibr__two-packages.xml").read_bytes()
    error = format_error(SOURCE, data[:data.index(b"slf4j-log4j12")])
    assert (error.detail, error.line) == ("invalid XML: no element found", 14)


def test_real_invalid_syntax(poms: Path) -> None:
    error = format_error(SOURCE, (poms / "osv-scalibr__invalid-syntax.xml").read_bytes())
    assert (error.detail, error.line) == ("invalid XML: not well-formed (invalid token)", 3)


@pytest.mark.parametrize(("data", "detail", "line"), [
    (b"", "empty Maven pom.xml file", None),
    (b"<bom><components/></bom>", "root element <bom>, not <project>: not a Maven pom.xml "
                                  "file", None),
    (b"not xml at all", "invalid XML: syntax error", 1),
])
def test_invalid(data: bytes, detail: str, line: int | None) -> None:
    error = format_error(SOURCE, data)
    assert (error.detail, error.line) == (detail, line)


def test_dependency_without_coordinates_is_a_warning(poms: Path) -> None:
    parsed = SOURCE.parse(b"<project>\n<dependencies><dependency><artifactId>a</artifactId>"
                          b"<version>1</version></dependency><dependency><groupId>g"
                          b"</groupId><artifactId>b</artifactId><version>2</version>"
                          b"</dependency></dependencies></project>", "pom.xml", None)
    assert [(p.name, p.version) for p in parsed.packages] == [("g:b", "2")]
    assert parsed.warnings == (
        "pom.xml: dependency number 1 without a groupId and artifactId (or with an "
        "undefined ${property} in them); skipped",)


def test_profile_active_by_default_is_read(poms: Path) -> None:
    data = (poms / "osv-scalibr__profiles.xml").read_bytes()
    parsed = SOURCE.parse(data, "pom.xml", None)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("org.profile:profile-dep", "1.2.3")]
    assert parsed.warnings == ()
    inactive = data.replace(b"<activeByDefault>true", b"<activeByDefault>false")
    parsed = SOURCE.parse(inactive, "pom.xml", None)
    assert (parsed.packages, parsed.warnings) == ([], (
        "pom.xml: profile my-profile is not active by default: its 1 dependency not checked",))
