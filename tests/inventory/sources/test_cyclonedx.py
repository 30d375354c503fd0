"""CycloneDX JSON and XML: the real BOMs of ../shared/data, and broken or hostile ones."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources.cyclonedx import SOURCE
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.inventory.sources.registry import SOURCES_BY_NAME
from patchpilot.inventory.transports.file import kind_of, read_inventory_file
from patchpilot.models import Ecosystem, OsRelease, Package

JUICE = "bom-examples__SBOM__juice-shop__v11.1.2__bom"
JUICE_NPM = "bom-examples__SBOM__juice-shop__via_npm__bare__bom"
LARAVEL = "bom-examples__SBOM__laravel-7.12.0__bom"
ALPINE_XML = "osv-scanner__scan__source__sbom-insecure__alpine.cdx.xml"
ALPINE_16 = "osv-scanner__scan__source__sbom-insecure__alpine-zlib-16.cdx.json"


def parse(inventories: Path, name: str, distro: str | None = None) -> Parsed:
    path = inventories / "cyclonedx" / name
    return SOURCE.parse(path.read_bytes(), name, Ecosystem(distro) if distro else None)


def keys(parsed: Parsed) -> set[tuple[str, str, str]]:
    return {(p.ecosystem, p.name, p.version) for p in parsed.packages}


@pytest.mark.parametrize(("name", "ecosystems"), [
    ("bom-examples__SBOM__cern-lhc-vdm-editor-e564943__bom.json", {"npm": 43}),
    ("bom-examples__SBOM__dropwizard-1.3.15__bom.json", {"Maven": 167}),
    (f"{JUICE}.json", {"npm": 840}),
    (f"{JUICE}.xml", {"npm": 840}),
    # 837 top-level components plus 278 nested ones (bundled dependencies), 978 distinct.
    (f"{JUICE_NPM}.1.2.json", {"npm": 978}),
    (f"{JUICE_NPM}.1.3.json", {"npm": 978}),
    (f"{JUICE_NPM}.1.3.xml", {"npm": 978}),
    # 903 components; two purls differ only by ?type=jar / ?type=test-jar: one package.
    ("bom-examples__SBOM__keycloak-10.0.2__bom.json", {"Maven": 902}),
    (f"{LARAVEL}.1.1.xml", {"Packagist": 62}),
    (f"{LARAVEL}.1.2.json", {"Packagist": 62}),
    (f"{LARAVEL}.1.4.json", {"Packagist": 62}),
    (f"{LARAVEL}.1.4.xml", {"Packagist": 62}),
    ("bom-examples__SBOM__proton-bridge__proton-bridge-v1.6.3.bom.xml", {"Go": 201}),
    ("bom-examples__SBOM__proton-bridge__proton-bridge-v1.8.0.bom.json", {"Go": 201}),
    ("osv-scalibr__sbom__cdx__sbom-with-locations.cdx.json", {"npm": 1}),
    (ALPINE_XML, {"Alpine:3.17": 14}),
    (ALPINE_16, {"Alpine:3.22": 1}),
])
def test_counts(inventories: Path, name: str, ecosystems: dict[str, int]) -> None:
    parsed = parse(inventories, name)
    assert Counter(p.ecosystem for p in parsed.packages) == ecosystems
    assert all(p.location == name for p in parsed.packages)
    assert kind_of(name, (inventories / "cyclonedx" / name).read_bytes()[:8192]) == "cyclonedx"


def test_registered() -> None:
    assert SOURCES_BY_NAME["cyclonedx"] is SOURCE


def test_juice_shop_json_and_xml_agree(inventories: Path) -> None:
    json_bom, xml_bom = parse(inventories, f"{JUICE}.json"), parse(inventories, f"{JUICE}.xml")
    assert keys(json_bom) == keys(xml_bom)
    assert len(keys(json_bom)) == 840
    assert json_bom.packages[0] == Package(
        ecosystem=Ecosystem("npm"), name="body-parser", version="1.19.0",
        purl="pkg:npm/body-parser@1.19.0", location=f"{JUICE}.json")
    assert json_bom.warnings == xml_bom.warnings == ()


def test_spec_versions_agree(inventories: Path) -> None:
    """The same project written as CycloneDX 1.1 to 1.4, JSON and XML: one package set."""
    juice = [keys(parse(inventories, f"{JUICE_NPM}.{v}")) for v in ("1.2.json", "1.3.json",
                                                                      "1.3.xml")]
    assert juice[0] == juice[1] == juice[2]
    laravel = [keys(parse(inventories, f"{LARAVEL}.{v}")) for v in ("1.1.xml", "1.2.json",
                                                                     "1.4.json", "1.4.xml")]
    assert laravel[0] == laravel[1] == laravel[2] == laravel[3]
    assert ("Packagist", "laravel/framework", "v7.30.6") in laravel[0]


def test_nested_and_scoped_npm(inventories: Path) -> None:
    parsed = parse(inventories, f"{JUICE_NPM}.1.3.xml")
    helper = next(p for p in parsed.packages if p.name == "@babel/helper-string-parser")
    assert helper == Package(
        ecosystem=Ecosystem("npm"), name="@babel/helper-string-parser", version="7.19.4",
        purl="pkg:npm/%40babel/helper-string-parser@7.19.4#packages/babel-helper-string-parser",
        location=f"{JUICE_NPM}.1.3.xml")


def test_maven_and_go_names(inventories: Path) -> None:
    keycloak = parse(inventories, "bom-examples__SBOM__keycloak-10.0.2__bom.json")
    assert keycloak.packages[0].name == "org.bouncycastle:bcprov-jdk15on"
    assert keycloak.packages[0].version == "1.62"
    proton = parse(inventories, "bom-examples__SBOM__proton-bridge__proton-bridge-v1.6.3.bom.xml")
    assert (proton.packages[0].name, proton.packages[0].version) == (
        "github.com/0xAX/notificator", "v0.0.0-20191016112426-3962a5ea8da1")


def test_alpine_xml_os_and_apk_packages(inventories: Path) -> None:
    parsed = parse(inventories, ALPINE_XML)
    assert parsed.os == OsRelease("alpine", "3.17.2", None, "Alpine Linux v3.17")
    libssl = next(p for p in parsed.packages if p.name == "libssl3")
    assert libssl == Package(
        ecosystem=Ecosystem("Alpine:3.17"), name="libssl3", version="3.0.8-r0", arch="x86_64",
        source_name="openssl", source_version="3.0.8-r0",
        purl="pkg:apk/alpine/libssl3@3.0.8-r0?arch=x86_64&upstream=openssl"
             "&distro=alpine-3.17.2",
        location=ALPINE_XML)
    # syft's binary-cataloger finding has a CPE but no purl: named, not dropped.
    assert parsed.warnings == (
        f"{ALPINE_XML}: 1 component not matched (no purl): busybox@1.35.0",)


def test_alpine_cdx_1_6(inventories: Path) -> None:
    """osv-scalibr's 1.6 BOM: ``"type": ""`` on the metadata component, distro=3.22.0."""
    parsed = parse(inventories, ALPINE_16)
    assert parsed.packages == [Package(
        ecosystem=Ecosystem("Alpine:3.22"), name="zlib", version="1.2.12-r1", arch="x86_64",
        source_name="zlib", source_version="1.2.12-r1",
        purl="pkg:apk/alpine/zlib@1.2.12-r1?arch=x86_64&distro=3.22.0&origin=zlib",
        location=ALPINE_16)]
    assert parsed.os is None
    assert parsed.warnings == ()


@pytest.mark.parametrize("name", ["osv-scalibr__sbom__cdx__sbom.bom.json",
                                  "osv-scalibr__sbom__cdx__sbom.bom.xml"])
def test_unmatched_components_are_warnings(inventories: Path, name: str) -> None:
    parsed = parse(inventories, name)
    assert parsed.packages == []
    assert parsed.warnings == (
        f"{name}: 1 component not matched (purl type 'generic' names no ecosystem advisories "
        "cover): openssl@1.1.1",
        f"{name}: 1 component not matched (no purl): Nginx@1.21.1",
    )


JSON_WITH_OS = b"""{
  "bomFormat": "CycloneDX", "specVersion": "1.5",
  "metadata": {
    "tools": {"components": [{"type": "application", "name": "syft", "version": "1.0",
                              "purl": "pkg:golang/github.com/anchore/syft@v1.0.0"}]},
    "component": {"type": "container", "name": "debian:12",
                  "components": [{"type": "library", "name": "requests", "version": "2.31.0",
                                  "purl": "pkg:pypi/requests@2.31.0"}]}
  },
  "components": [
    {"type": "library", "name": "libc6", "version": "2.36-9",
     "purl": "pkg:deb/debian/libc6@2.36-9?arch=amd64&upstream=glibc",
     "components": [{"type": "library", "name": "zlib1g", "version": "1:1.2.13",
                     "purl": "pkg:deb/debian/zlib1g@1%3A1.2.13?distro=debian-11"}]},
    {"type": "file", "name": "/etc/passwd"},
    {"type": "operating-system", "name": "debian", "version": "12",
     "properties": [{"name": "syft:distro:versionCodename", "value": "bookworm"},
                    {"name": "syft:distro:prettyName", "value": "Debian GNU/Linux 12"}]}
  ]
}"""


def test_os_component_gives_the_release_and_tools_are_skipped() -> None:
    parsed = SOURCE.parse(JSON_WITH_OS, "image.cdx.json", None)
    assert parsed.os == OsRelease("debian", "12", "bookworm", "Debian GNU/Linux 12")
    assert [(p.ecosystem, p.name, p.version, p.source_name) for p in parsed.packages] == [
        ("PyPI", "requests", "2.31.0", None),  # nested in metadata.component
        ("Debian:12", "libc6", "2.36-9", "glibc"),  # release from the OS component
        ("Debian:11", "zlib1g", "1:1.2.13", "zlib1g"),  # its own qualifier wins
    ]
    assert parsed.warnings == ()
    # --distro wins over the BOM's OS for purls without a qualifier.
    forced = SOURCE.parse(JSON_WITH_OS, "image.cdx.json", Ecosystem("Ubuntu:22.04"))
    assert forced.packages[1].ecosystem == "Ubuntu:22.04"


def test_xml_nesting_metadata_and_tools(tmp_path: Path) -> None:
    xml = b"""<?xml version="1.0"?>
<bom xmlns="http://cyclonedx.org/schema/bom/1.5" version="1">
  <metadata>
    <tools><components><component type="application"><name>t</name><version>1</version>
      <purl>pkg:pypi/cyclonedx-bom@4.0.0</purl></component></components></tools>
    <component type="application"><name>app</name><version>1.0</version>
      <purl>pkg:pypi/app@1.0</purl>
      <components><component type="library"><name>idna</name><version>3.4</version>
        <purl>pkg:pypi/idna@3.4</purl></component></components>
    </component>
  </metadata>
  <components>
    <component type="library"><name>outer</name><version>1</version>
      <purl>pkg:cargo/outer@1</purl>
      <components><component type="library"><name>inner</name><version>2</version>
        <purl>pkg:cargo/inner@2</purl></component></components>
    </component>
  </components>
  <dependencies><dependency ref="x"/></dependencies>
</bom>"""
    parsed = SOURCE.parse(xml, "app.cdx.xml", None)
    assert [(p.ecosystem, p.name) for p in parsed.packages] == [
        ("PyPI", "idna"), ("crates.io", "inner"), ("crates.io", "outer")]
    assert parsed.warnings == ()


def test_no_components_is_empty_with_warning() -> None:
    parsed = SOURCE.parse(b'{"bomFormat": "CycloneDX", "specVersion": "1.6"}', "x.cdx.json",
                          None)
    assert parsed == Parsed([], None, ("x.cdx.json: CycloneDX BOM lists no components",))


@pytest.mark.parametrize(("content", "detail", "line"), [
    (b"", "empty CycloneDX file", None),
    (b"  \n", "empty CycloneDX file", None),
    (b'{\n  "bomFormat": "CycloneDX",\n  "specVersion": "1.4",\n  "components": [\n    {"na',
     "CycloneDX: not valid JSON (unexpected end of data)", 5),
    (b'{"bomFormat": "SPDX"}', 'not a CycloneDX BOM (no "bomFormat": "CycloneDX")', None),
    (b'{"bomFormat": "CycloneDX"}', "CycloneDX: missing specVersion", None),
    (b'{"bomFormat": "CycloneDX", "specVersion": "2.0"}',
     "CycloneDX: unknown specVersion '2.0' (known: 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7)",
     None),
    (b'{"bomFormat": "CycloneDX", "specVersion": "1.4", "components": {"a": 1}}',
     "CycloneDX: components is not a list", None),
    (b'{"bomFormat": "CycloneDX", "specVersion": "1.4", "components": [{"components": [1]}]}',
     "CycloneDX: components[0].components[0] is not an object", None),
    (b'<?xml version="1.0"?>\n<bom xmlns="http://cyclonedx.org/schema/bom/1.4">\n'
     b'<components><component type="library"><name>x',
     "CycloneDX: not well-formed XML (Premature end of data in tag name line 3, line 3, "
     "column 46)", 3),
    (b'<project xmlns="http://maven.apache.org/POM/4.0.0"/>',
     "not a CycloneDX BOM (root element '{http://maven.apache.org/POM/4.0.0}project', "
     "expected <bom> in the http://cyclonedx.org/schema/bom/<version> namespace)", None),
    (b'<bom xmlns="http://cyclonedx.org/schema/bom/3.0"/>',
     "CycloneDX: unknown specVersion '3.0' (known: 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7)",
     None),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a CycloneDX BOM (neither JSON nor XML)", None),
    (b"hello, world", "not a CycloneDX BOM (neither JSON nor XML)", None),
])
def test_invalid(tmp_path: Path, content: bytes, detail: str, line: int | None) -> None:
    with pytest.raises(InventoryFormatError) as caught:
        SOURCE.parse(content, str(tmp_path / "bad.cdx.json"), None)
    assert caught.value.path == str(tmp_path / "bad.cdx.json")
    assert caught.value.detail == detail
    assert caught.value.line == line


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE bom [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<bom xmlns="http://cyclonedx.org/schema/bom/1.4" version="1">
  <components><component type="library"><name>&lol9;</name><version>1</version>
    <purl>pkg:npm/lol@1</purl></component></components>
</bom>
"""
REFUSED = ("CycloneDX XML with a DOCTYPE (DTD or entity declarations) refused: CycloneDX "
           "never uses one, and entities can expand without bound")


def _xxe(secret: Path) -> bytes:
    return (b'<?xml version="1.0"?>\n<!DOCTYPE bom [ <!ENTITY xxe SYSTEM "'
            + secret.as_uri().encode() + b'"> ]>\n'
            b'<bom xmlns="http://cyclonedx.org/schema/bom/1.4" version="1"><components>'
            b'<component type="library"><name>&xxe;</name><version>1</version>'
            b'<purl>pkg:npm/x@1</purl></component></components></bom>')


def test_hostile_xml_is_refused_unexpanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    external_dtd = (b'<?xml version="1.0"?>\n'
                    b'<!DOCTYPE bom SYSTEM "http://127.0.0.1:9/cyclonedx.dtd">\n'
                    b'<bom xmlns="http://cyclonedx.org/schema/bom/1.4"/>')
    for name, content in [("laughs.cdx.xml", BILLION_LAUGHS), ("xxe.cdx.xml", _xxe(secret)),
                          ("dtd.cdx.xml", external_dtd)]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InventoryFormatError) as caught:
            read_inventory_file(path)
        assert str(caught.value) == f"{path}: {REFUSED}"
        assert "lollol" not in str(caught.value) and "TOP-SECRET" not in str(caught.value)


def test_hostile_xml_hidden_from_the_byte_check(tmp_path: Path) -> None:
    """UTF-16 text is decoded for the byte check; a comment that looks like an element
    slips past it and is caught by libxml2's own DOCTYPE check."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    utf16 = BILLION_LAUGHS.replace(b'<?xml version="1.0"?>',
                                   b'<?xml version="1.0" encoding="UTF-16"?>'
                                   ).decode().encode("utf-16")
    commented = _xxe(secret).replace(b"<!DOCTYPE", b"<!-- <a --> <!DOCTYPE")
    expected = {utf16: "sneaky.xml: CycloneDX XML with a DOCTYPE (DTD or entity "
                       "declarations) refused: CycloneDX never uses one, and entities can "
                       "expand without bound",
                commented: "sneaky.xml: CycloneDX XML with a DOCTYPE refused"}
    for content, message in expected.items():
        with pytest.raises(InventoryFormatError) as caught:
            SOURCE.parse(content, "sneaky.xml", None)
        assert str(caught.value) == message
        assert "TOP-SECRET" not in str(caught.value)


def test_undeclared_entity_is_an_error() -> None:
    content = (b'<bom xmlns="http://cyclonedx.org/schema/bom/1.4"><components>'
               b'<component type="library"><name>&xxe;</name></component></components></bom>')
    with pytest.raises(InventoryFormatError, match="not well-formed XML"):
        SOURCE.parse(content, "x.xml", None)


def test_read_file_names_the_file(tmp_path: Path, inventories: Path) -> None:
    truncated = tmp_path / "truncated.cdx.json"
    truncated.write_bytes((inventories / "cyclonedx" / f"{JUICE}.json").read_bytes()[:5000])
    with pytest.raises(InventoryFormatError) as caught:
        read_inventory_file(truncated)
    assert caught.value.path == str(truncated)
    assert caught.value.detail == "CycloneDX: not valid JSON (unexpected end of data)"
    inventory = read_inventory_file(inventories / "cyclonedx" / ALPINE_XML)
    assert len(inventory.packages) == 14
