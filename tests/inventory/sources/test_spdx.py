"""SPDX 2.2/2.3 JSON and tag-value: the real documents of ../shared/data, and broken ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.inventory.sources.registry import SOURCES_BY_NAME
from patchpilot.inventory.sources.spdx import SOURCE
from patchpilot.inventory.transports.file import kind_of, read_inventory_file
from patchpilot.models import Ecosystem, OsRelease, Package

SYFT_ALPINE = "syft__spdxjson__spdx__alpine-3.10.syft.spdx.json"
VENDOR_ALPINE = "syft__spdxjson__spdx__alpine-3.10.vendor.spdx.json"
UBUNTU = "osv-scanner__scan__source__sbom-insecure__only-unimportant.spdx.json"


def parse(inventories: Path, name: str) -> Parsed:
    return SOURCE.parse((inventories / "spdx" / name).read_bytes(), name, None)


@pytest.mark.parametrize(("name", "count", "warnings"), [
    ("osv-scalibr__sbom__spdx__ancestor_of.spdx.json", 1,
     ("1 package not matched (no purl): v1_2_15",)),
    ("osv-scalibr__sbom__spdx__overlapping_refs.spdx.json", 1,
     ("1 package not matched (no purl): v1_2_15",)),
    ("osv-scalibr__sbom__spdx__external_refs.spdx.json", 0,
     ("2 packages not matched (no purl): flatbuffers, custom-pkg@1.0.0",
      "1 package not matched (purl type 'generic' names no ecosystem advisories cover): "
      "flatbuffers@25.9.23")),
    ("osv-scalibr__sbom__spdx__minimal.spdx.json", 0, ("SPDX document lists no packages",)),
    ("osv-scalibr__sbom__spdx__sbom.spdx.json", 0,
     ("1 package not matched (no purl): Nginx",
      "1 package not matched (purl type 'generic' names no ecosystem advisories cover): "
      "openssl")),
    # The same document in tag-value: the same answer.
    ("osv-scalibr__sbom__spdx__sbom.spdx", 0,
     ("1 package not matched (no purl): Nginx",
      "1 package not matched (purl type 'generic' names no ecosystem advisories cover): "
      "openssl")),
    (UBUNTU, 1, ()),
    (SYFT_ALPINE, 3, ()),
    (VENDOR_ALPINE, 0,
     ("3 packages not matched (no purl): alpine@3.10, busybox@1.30.1-r5, "
      "ssl_client@1.30.1-r5",)),
    ("syft__spdxjson__spdx__example7-third-party-modules.spdx.json", 0,
     ("3 packages not matched (no purl): golang.org/x/text, rsc.io/quote, rsc.io/sampler",)),
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
    (b'{"spdxVersion": "SPDX-2.3", "packages": ["x"]}',
     "SPDX: packages[0] is not an object", None),
    (b"SPDXVersion: SPDX-2.3\nthis is not a tag line\n",
     "SPDX: not a 'Tag: value' line: 'this is not a tag line'", 2),
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
