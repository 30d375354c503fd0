"""pom.xml: pinned dependencies, properties resolved, entities never expanded.

Maven Central is not reachable here, so the fixtures are hand-written after
https://maven.apache.org/pom.html (each says so in its header comment).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.inventory.sources.maven_pom import SOURCE
from patchpilot.models import Package
from tests.inventory.sources.helpers import format_error, parse_file


def test_many_packages(fixtures: Path) -> None:
    path = fixtures / "maven-pom" / "many_packages.xml"
    parsed = parse_file(SOURCE, path)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("org.apache.logging.log4j:log4j-core", "2.14.1"),  # ${log4j.version} -> ${log4j2…}
        ("com.fasterxml.jackson.core:jackson-databind", "2.13.4"),
        ("org.yaml:snakeyaml", "1.33"),  # from <dependencyManagement>
        ("com.example:orders-api", "2.3.0"),  # ${project.*} from <parent>
        ("junit:junit", "4.12"),  # test scope kept
    ]
    assert parsed.packages[0] == Package(
        ecosystem="Maven", name="org.apache.logging.log4j:log4j-core", version="2.14.1",
        purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", location=str(path))
    assert parsed.warnings == (
        f"{path}: org.springframework:spring-core takes its version from a parent pom or "
        "BOM; not checked (scan the effective pom)",
        f"{path}: commons-io:commons-io version ${{commons-io.version}} uses a property not "
        "defined in this pom; not checked",
        f"{path}: com.google.guava:guava has the version range [30.0-jre,), not one "
        "version; not checked",
    )


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


def test_truncated_fixture(fixtures: Path) -> None:
    error = format_error(SOURCE, (fixtures / "maven-pom" / "truncated.xml").read_bytes())
    assert (error.detail, error.line) == ("invalid XML: unclosed token", 24)


@pytest.mark.parametrize(("data", "detail", "line"), [
    (b"", "empty Maven pom.xml file", None),
    (b"<bom><components/></bom>", "root element <bom>, not <project>: not a Maven pom.xml "
                                  "file", None),
    (b"<project>\n<dependencies><dependency><artifactId>a</artifactId><version>1"
     b"</version></dependency></dependencies></project>",
     "dependency number 1 without a groupId and artifactId (or with an undefined "
     "${property} in them)", None),
    (b"not xml at all", "invalid XML: syntax error", 1),
])
def test_invalid(data: bytes, detail: str, line: int | None) -> None:
    error = format_error(SOURCE, data)
    assert (error.detail, error.line) == (detail, line)
