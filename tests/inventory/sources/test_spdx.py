"""SPDX 2.2/2.3 JSON and tag-value: the real documents of ../shared/data, and broken ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
import yaml

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.inventory.sources.registry import SOURCES_BY_NAME
from patchpilot.inventory.sources.spdx import SOURCE
from patchpilot.inventory.transports.file import kind_of, read_inventory_file
from patchpilot.models import Ecosystem, OsRelease, Package

SYFT_ALPINE = "syft__spdxjson__spdx__alpine-3.10.syft.spdx.json"
VENDOR_ALPINE = "syft__spdxjson__spdx__alpine-3.10.vendor.spdx.json"
UBUNTU = "osv-scanner__scan__source__sbom-insecure__only-unimportant.spdx.json"
GO_MODULES = "syft__spdxjson__spdx__example7-third-party-modules.spdx.json"
UNDETERMINED = "undetermined: no purl, nor an ecosystem in its references or download location"


def parse(inventories: Path, name: str) -> Parsed:
    return SOURCE.parse((inventories / "spdx" / name).read_bytes(), name, None)


@pytest.mark.parametrize(("name", "count", "warnings"), [
    ("osv-scalibr__sbom__spdx__ancestor_of.spdx.json", 1,
     (f"1 package not matched ({UNDETERMINED}): v1_2_15",)),
    ("osv-scalibr__sbom__spdx__overlapping_refs.spdx.json", 1,
     (f"1 package not matched ({UNDETERMINED}): v1_2_15",)),
    ("osv-scalibr__sbom__spdx__external_refs.spdx.json", 0,
     (f"2 packages not matched ({UNDETERMINED}): flatbuffers, custom-pkg@1.0.0",
      "1 package not matched (purl type 'generic' names no ecosystem advisories cover): "
      "flatbuffers@25.9.23")),
    ("osv-scalibr__sbom__spdx__minimal.spdx.json", 0, ("SPDX document lists no packages",)),
    ("osv-scalibr__sbom__spdx__sbom.spdx.json", 0,
     (f"1 package not matched ({UNDETERMINED} (a CPE only)): Nginx",
      "1 package not matched (purl type 'generic' names no ecosystem advisories cover): "
      "openssl")),
    # The same document in tag-value: the same answer.
    ("osv-scalibr__sbom__spdx__sbom.spdx", 0,
     (f"1 package not matched ({UNDETERMINED} (a CPE only)): Nginx",
      "1 package not matched (purl type 'generic' names no ecosystem advisories cover): "
      "openssl")),
    (UBUNTU, 1, ()),
    (SYFT_ALPINE, 3, ()),
    # SPDX 2.2 without purls: the described "alpine 3.10" is the OS, its packages' -rN
    # versions are Alpine's; Go modules are named by their go:// download locations.
    (VENDOR_ALPINE, 2,
     ("2 packages without a purl read as pkg:apk from the distribution the document "
      "describes: busybox@1.30.1-r5, ssl_client@1.30.1-r5",)),
    ("syft__spdxjson__spdx__example7-third-party-modules.spdx.json", 3,
     ("3 packages without a purl read as pkg:golang from their download location or "
      "references: golang.org/x/text, rsc.io/quote, rsc.io/sampler",)),
])
def test_real_documents(inventories: Path, name: str, count: int, warnings: tuple[str, ...]
                        ) -> None:
    parsed = parse(inventories, name)
    assert len(parsed.packages) == count
    assert parsed.warnings == tuple(f"{name}: {w}" for w in warnings)
    assert kind_of(name, (inventories / "spdx" / name).read_bytes()[:8192]) == "spdx"


def test_registered() -> None:
    assert SOURCES_BY_NAME["spdx"] is SOURCE


def test_syft_alpine_apk_purls(inventories: Path) -> None:
    parsed = parse(inventories, SYFT_ALPINE)
    assert parsed.packages == [
        Package(ecosystem=Ecosystem("Alpine:3.10"), name="busybox", version="1.30.1-r5",
                arch="x86_64", source_name="busybox", source_version="1.30.1-r5",
                purl="pkg:apk/alpine/busybox@1.30.1-r5?arch=x86_64&distro=alpine-3.10.9",
                location=SYFT_ALPINE),
        Package(ecosystem=Ecosystem("Alpine:3.10"), name="libssl1.1", version="1.1.1k-r0",
                arch="x86_64", source_name="libssl1.1", source_version="1.1.1k-r0",
                purl="pkg:apk/alpine/libssl1.1@1.1.1k-r0?arch=x86_64&distro=alpine-3.10.9",
                location=SYFT_ALPINE),
        Package(ecosystem=Ecosystem("Alpine:3.10"), name="ssl_client", version="1.30.1-r5",
                arch="x86_64", source_name="busybox", source_version="1.30.1-r5",
                purl="pkg:apk/alpine/ssl_client@1.30.1-r5?arch=x86_64&upstream=busybox"
                     "&distro=alpine-3.10.9",
                location=SYFT_ALPINE),
    ]


def test_osv_scalibr_ubuntu_deb(inventories: Path) -> None:
    """distro=focal (a codename), the epoch inside the version, source=."""
    assert parse(inventories, UBUNTU).packages == [Package(
        ecosystem=Ecosystem("Ubuntu:20.04"), name="pcre3", version="2:8.39-12ubuntu0.1",
        arch="amd64", source_name="pcre3", source_version="2:8.39-12ubuntu0.1",
        purl="pkg:deb/ubuntu/pcre3@2%3A8.39-12ubuntu0.1?arch=amd64&distro=focal&source=pcre3",
        location=UBUNTU)]


def test_maven_purl_and_category_spellings(inventories: Path) -> None:
    parsed = parse(inventories, "osv-scalibr__sbom__spdx__ancestor_of.spdx.json")
    assert [(p.ecosystem, p.name, p.version) for p in parsed.packages] == [
        ("Maven", "log4j:log4j", "1.2.15")]


TAG_VALUE = """\
SPDXVersion: SPDX-2.3
DataLicense: CC0-1.0
SPDXID: SPDXRef-DOCUMENT
DocumentName: image
# a comment
Creator: Tool: example

PackageName: debian
SPDXID: SPDXRef-os
PackageVersion: 12
PrimaryPackagePurpose: OPERATING-SYSTEM

PackageName: openssl
SPDXID: SPDXRef-openssl
PackageVersion: 3.0.11-1~deb12u2
PackageDescription: <text>A multi-line
description: with a colon
</text>
ExternalRef: PACKAGE-MANAGER purl pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64
ExternalRef: SECURITY cpe23Type cpe:2.3:a:openssl:openssl:3.0.11:*:*:*:*:*:*:*

FileName: ./usr/bin/openssl
SPDXID: SPDXRef-file
"""


def test_tag_value_with_os_package() -> None:
    parsed = SOURCE.parse(TAG_VALUE.encode(), "image.spdx", None)
    assert parsed.os == OsRelease("debian", "12")
    assert parsed.packages == [Package(
        ecosystem=Ecosystem("Debian:12"), name="openssl", version="3.0.11-1~deb12u2",
        arch="amd64", source_name="openssl", source_version="3.0.11-1~deb12u2",
        purl="pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64", location="image.spdx")]
    assert parsed.warnings == ()


@pytest.mark.parametrize(("content", "detail", "line"), [
    (b"", "empty SPDX file", None),
    (b'{"spdxVersion": "SPDX-2.3", "packages": [',
     "SPDX: not valid JSON (unexpected end of data)", 1),
    (b'{"name": "x"}', 'not an SPDX document (no "spdxVersion")', None),
    (b'{"spdxVersion": "SPDX-1.2"}',
     "SPDX: spdxVersion 'SPDX-1.2' is not SPDX-2.x (2.2 and 2.3 are read)", None),
    (b'{"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld", "@graph": []}',
     "SPDX 3 (JSON-LD) is not supported; export SPDX 2.3 JSON", None),
    (b'{"spdxVersion": "SPDX-2.3", "packages": {}}', "SPDX: packages is not a list", None),
    (b"PackageName: x\n", "not an SPDX document (no SPDXVersion line)", None),
    (b"\x00\x01\x02binary", "binary data, not an SPDX document", None),
])
def test_invalid(tmp_path: Path, content: bytes, detail: str, line: int | None) -> None:
    path = tmp_path / "bad.spdx.json"
    path.write_bytes(content)
    with pytest.raises(InventoryFormatError) as caught:
        SOURCE.parse(content, str(path), None)
    assert (caught.value.path, caught.value.detail, caught.value.line) == (
        str(path), detail, line)


def test_read_file_names_the_truncated_file(tmp_path: Path, inventories: Path) -> None:
    path = tmp_path / "cut.spdx.json"
    path.write_bytes((inventories / "spdx" / SYFT_ALPINE).read_bytes()[:1500])
    with pytest.raises(InventoryFormatError) as caught:
        read_inventory_file(path)
    assert str(caught.value).startswith(f"{path}:")
    assert caught.value.detail == "SPDX: not valid JSON (unexpected end of data)"


def test_a_bad_package_or_line_is_a_warning(inventories: Path) -> None:
    document = json.loads((inventories / "spdx" / SYFT_ALPINE).read_bytes())
    document["packages"].insert(0, "x")
    parsed = SOURCE.parse(json.dumps(document).encode(), "image.spdx.json", None)
    assert len(parsed.packages) == 3
    assert parsed.warnings == ("image.spdx.json: SPDX packages[0] is not an object; skipped",)
    text = (inventories / "spdx" / "osv-scalibr__sbom__spdx__sbom.spdx").read_text()
    text = text.replace("PackageName: openssl\n", "PackageName: openssl\nthis is garbage\n")
    text = text.replace("pkg:generic/openssl@1.1.1l", "pkg:deb/debian/openssl@1.1.1l-1?distro="
                                                      "debian-11")
    parsed = SOURCE.parse(text.encode(), "sbom.spdx", None)
    assert [(p.ecosystem, p.name) for p in parsed.packages] == [("Debian:11", "openssl")]
    line = text.splitlines().index("this is garbage") + 1
    assert parsed.warnings == (
        f"sbom.spdx:{line}: SPDX: not a 'Tag: value' line: 'this is garbage'; skipped",
        f"sbom.spdx: 1 package not matched ({UNDETERMINED} (a CPE only)): Nginx")


def _rdf(document: dict[str, Any]) -> bytes:
    """``document`` (SPDX JSON) written as SPDX RDF/XML, as the SPDX tools write it."""
    ns = ('xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
          'xmlns:spdx="http://spdx.org/rdf/terms#"')
    base = document["documentNamespace"]
    packages = []
    for package in document["packages"]:
        refs = "".join(
            f"<spdx:externalRef><spdx:ExternalRef><spdx:referenceCategory rdf:resource="
            f'"http://spdx.org/rdf/terms#referenceCategory_packageManager"/>'
            f'<spdx:referenceType rdf:resource="http://spdx.org/rdf/references/'
            f'{escape(ref["referenceType"])}"/><spdx:referenceLocator>'
            f"{escape(ref['referenceLocator'])}</spdx:referenceLocator></spdx:ExternalRef>"
            f"</spdx:externalRef>" for ref in package.get("externalRefs", []))
        packages.append(
            f'<spdx:Package rdf:about="{base}#{package["SPDXID"]}"><spdx:name>'
            f"{escape(package['name'])}</spdx:name><spdx:versionInfo>"
            f"{escape(package.get('versionInfo', ''))}</spdx:versionInfo>"
            f"<spdx:downloadLocation>{escape(package['downloadLocation'])}"
            f"</spdx:downloadLocation>{refs}</spdx:Package>")
    described = "".join(f'<spdx:describesPackage rdf:resource="{base}#{d}"/>'
                        for d in document.get("documentDescribes", []))
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rdf:RDF {ns}>'
            f'<spdx:SpdxDocument rdf:about="{base}#SPDXRef-DOCUMENT"><spdx:specVersion>'
            f'{document["spdxVersion"]}</spdx:specVersion>{described}</spdx:SpdxDocument>'
            f'{"".join(packages)}</rdf:RDF>\n').encode()


@pytest.mark.parametrize("name", [SYFT_ALPINE, VENDOR_ALPINE, GO_MODULES])
def test_rdf_xml_and_yaml_read_as_json(inventories: Path, name: str) -> None:
    data = (inventories / "spdx" / name).read_bytes()
    document = json.loads(data)
    from_json = SOURCE.parse(data, "sbom", None)
    assert from_json.packages
    for encoded, file_name in ((_rdf(document), "sbom.spdx.rdf"),
                               (yaml.safe_dump(document).encode(), "sbom.spdx.yaml")):
        assert kind_of(file_name, encoded[:8192]) == "spdx"
        assert kind_of("renamed", encoded[:8192]) == "spdx"
        parsed = SOURCE.parse(encoded, "sbom", None)
        assert (parsed.packages, parsed.os, parsed.warnings) == (
            from_json.packages, from_json.os, from_json.warnings)


def test_rdf_entities_never_expanded() -> None:
    bomb = (b'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
            b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            b'xmlns:spdx="http://spdx.org/rdf/terms#"><spdx:SpdxDocument><spdx:specVersion>'
            b'SPDX-2.3</spdx:specVersion></spdx:SpdxDocument><spdx:Package><spdx:name>&b;'
            b'</spdx:name></spdx:Package></rdf:RDF>\n')
    with pytest.raises(InventoryFormatError) as caught:
        SOURCE.parse(bomb, "bomb.spdx.rdf", None)
    assert caught.value.detail.startswith("SPDX RDF/XML refused: ")


def test_yaml_safe_loader_refuses_python_tags() -> None:
    data = b"spdxVersion: SPDX-2.3\npackages: !!python/object/apply:os.system ['true']\n"
    with pytest.raises(InventoryFormatError) as caught:
        SOURCE.parse(data, "evil.spdx.yaml", None)
    assert caught.value.detail.startswith("SPDX: not valid YAML (")


DEBIAN_WITHOUT_PURLS = """SPDXVersion: SPDX-2.2
DataLicense: CC0-1.0
SPDXID: SPDXRef-DOCUMENT
DocumentName: debian-12
Relationship: SPDXRef-DOCUMENT DESCRIBES SPDXRef-os

PackageName: debian
SPDXID: SPDXRef-os
PackageVersion: 12

PackageName: openssl
SPDXID: SPDXRef-openssl
PackageVersion: 3.0.11-1~deb12u2

PackageName: zlib1g
SPDXID: SPDXRef-zlib
PackageVersion: 1:1.2.13.dfsg-1
PackageSupplier: Organization: Debian

PackageName: requests
SPDXID: SPDXRef-requests
PackageVersion: 2.31.0
"""


def test_distribution_packages_without_purls() -> None:
    # Debian's own packages are told by a +debNNuM marker or a supplier naming Debian; a
    # package with neither (a PyPI one here) is undetermined, not taken for a deb.
    parsed = SOURCE.parse(DEBIAN_WITHOUT_PURLS.encode(), "image.spdx", None)
    assert parsed.os == OsRelease("debian", "12")
    assert [(p.ecosystem, p.name, p.version, p.purl) for p in parsed.packages] == [
        ("Debian:12", "openssl", "3.0.11-1~deb12u2", "pkg:deb/debian/openssl@3.0.11-1~deb12u2"),
        ("Debian:12", "zlib1g", "1:1.2.13.dfsg-1", "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1")]
    assert parsed.warnings == (
        "image.spdx: 2 packages without a purl read as pkg:deb from the distribution the "
        "document describes: openssl@3.0.11-1~deb12u2, zlib1g@1:1.2.13.dfsg-1",
        f"image.spdx: 1 package not matched ({UNDETERMINED}): requests@2.31.0")


@pytest.mark.parametrize(("name", "version", "location", "purl", "ecosystem"), [
    ("@babel/core", "", "https://registry.npmjs.org/@babel/core/-/core-7.23.0.tgz",
     "pkg:npm/%40babel/core@7.23.0", "npm"),
    ("requests", "2.31.0", "https://files.pythonhosted.org/packages/9d/be/10918a2eac4ae9f0"
     "2f6cfe6414b7a155ccd8f7f9d4380d62fd5b955065c3/requests-2.31.0-py3-none-any.whl",
     "pkg:pypi/requests@2.31.0", "PyPI"),
    ("log4j-core", "", "https://repo1.maven.org/maven2/org/apache/logging/log4j/log4j-core/"
     "2.14.1/log4j-core-2.14.1.jar", "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
     "Maven"),
    ("regex", "", "https://crates.io/api/v1/crates/regex/1.10.3/download",
     "pkg:cargo/regex@1.10.3", "crates.io"),
    ("golang.org/x/net", "", "https://proxy.golang.org/golang.org/x/net/@v/v0.19.0.zip",
     "pkg:golang/golang.org/x/net@v0.19.0", "Go"),
])
def test_registry_download_location_names_the_package(
        inventories: Path, name: str, version: str, location: str, purl: str,
        ecosystem: str) -> None:
    # syft's example7 document with its one package's name and download location replaced.
    document = json.loads((inventories / "spdx" / GO_MODULES).read_bytes())
    document["packages"] = [{**document["packages"][0], "name": name,
                             "downloadLocation": location}]
    if version:
        document["packages"][0]["versionInfo"] = version
    parsed = SOURCE.parse(json.dumps(document).encode(), "sbom.spdx.json", None)
    assert [(p.ecosystem, p.purl) for p in parsed.packages] == [(ecosystem, purl)]
