"""syft's JSON: the real Alpine image SBOM of ../shared/data, and broken documents."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources.registry import SOURCES_BY_NAME
from patchpilot.inventory.sources.syft_json import SOURCE
from patchpilot.inventory.transports.file import kind_of, read_inventory_file
from patchpilot.models import Ecosystem, OsRelease, Package

ALPINE = "syft__sbom__alpine__syft-json__sbom.syft.json"


def test_alpine_image(inventories: Path) -> None:
    data = (inventories / "syft-json" / ALPINE).read_bytes()
    assert kind_of(ALPINE, data[:8192]) == "syft"
    parsed = SOURCE.parse(data, ALPINE, None)
    assert parsed.os == OsRelease("alpine", "3.16.3", None, "Alpine Linux v3.16")
    assert len(parsed.packages) == 14
    assert {p.ecosystem for p in parsed.packages} == {"Alpine:3.16"}
    assert [p.name for p in parsed.packages][:4] == [
        "alpine-baselayout", "alpine-baselayout-data", "alpine-keys", "apk-tools"]
    libcrypto = next(p for p in parsed.packages if p.name == "libcrypto1.1")
    assert libcrypto == Package(
        ecosystem=Ecosystem("Alpine:3.16"), name="libcrypto1.1", version="1.1.1s-r0",
        arch="x86_64", source_name="openssl", source_version="1.1.1s-r0",
        purl="pkg:apk/alpine/libcrypto1.1@1.1.1s-r0?arch=x86_64&upstream=openssl"
             "&distro=alpine-3.16.3",
        location=ALPINE)
    assert parsed.warnings == ()


def test_registered() -> None:
    assert SOURCES_BY_NAME["syft"] is SOURCE


def test_release_from_distro_section(inventories: Path) -> None:
    """Artifacts whose purls lack distro= take the release of the distro section."""
    document = orjson.loads((inventories / "syft-json" / ALPINE).read_bytes())
    for artifact in document["artifacts"]:
        artifact["purl"] = artifact["purl"].replace("&distro=alpine-3.16.3", "")
    document["artifacts"].append({"name": "busybox", "version": "1.35.0", "purl": ""})
    parsed = SOURCE.parse(orjson.dumps(document), "stripped.json", None)
    assert {p.ecosystem for p in parsed.packages} == {"Alpine:3.16"}
    assert parsed.warnings == (
        "stripped.json: 1 artifact not matched (no purl): busybox@1.35.0",)


@pytest.mark.parametrize(("content", "detail", "line"), [
    (b"", "empty syft JSON file", None),
    (b'{"artifacts": [{"name": "a"', "syft JSON: not valid JSON (unexpected end of data)", 1),
    (b'{"packages": []}', 'not a syft JSON document (no "artifacts")', None),
    (b'{"artifacts": [], "descriptor": {"name": "grype"}}',
     "not a syft JSON document (descriptor names 'grype')", None),
    (b'{"artifacts": {}}', "syft JSON: artifacts is not a list", None),
    (b'{"artifacts": [1]}', "syft JSON: artifacts[0] is not an object", None),
])
def test_invalid(tmp_path: Path, content: bytes, detail: str, line: int | None) -> None:
    path = tmp_path / "bad.syft.json"
    with pytest.raises(InventoryFormatError) as caught:
        SOURCE.parse(content, str(path), None)
    assert (caught.value.path, caught.value.detail, caught.value.line) == (
        str(path), detail, line)


def test_empty_artifacts_is_a_warning() -> None:
    parsed = SOURCE.parse(b'{"artifacts": [], "descriptor": {"name": "syft"}}', "e.json", None)
    assert parsed.packages == []
    assert parsed.warnings == ("e.json: syft JSON lists no artifacts",)


def test_read_file_with_its_os(inventories: Path) -> None:
    inventory = read_inventory_file(inventories / "syft-json" / ALPINE)
    assert len(inventory.packages) == 14
