"""The crashes the fuzz found, each kept as its minimal reproducing input.

Each of these raised something other than the module's own error type before its fix
(a ``TypeError`` or ``zlib.error`` out of a parser); each now asserts the exact error.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest

from patchpilot.errors import FeedError, InventoryFormatError
from patchpilot.inventory.model import Inventory
from patchpilot.inventory.sources import cyclonedx
from patchpilot.knowledge.feeds import debian_tracker, osv


@pytest.mark.parametrize("where", ["components[0]", "metadata.component"])
def test_cyclonedx_properties_that_are_not_a_list(where: str) -> None:
    # "properties": true made _json_component iterate a bool (TypeError).
    component = '{"type": "library", "name": "x", "properties": true}'
    head = '"bomFormat": "CycloneDX", "specVersion": "1.4"'
    if where == "metadata.component":
        bom = f'{{{head}, "metadata": {{"component": {component}}}}}'
    else:
        bom = f'{{{head}, "components": [{component}]}}'
    with pytest.raises(InventoryFormatError) as raised:
        cyclonedx.SOURCE.parse(bom.encode(), "bom.json", None)
    assert raised.value.path == "bom.json"
    assert raised.value.detail == f"CycloneDX: {where}.properties is not a list"


def _corrupt_deflate(member: str, data: bytes) -> bytes:
    """A zip of one deflated member whose compressed stream is damaged (headers intact)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, data)
    raw = bytearray(buffer.getvalue())
    start = 30 + len(member)  # the local file header, then the member's name
    for i in range(start, start + 40):
        raw[i] ^= 0xFF
    return bytes(raw)


def test_osv_zip_member_with_a_damaged_deflate_stream(shared_data: Path,
                                                      tmp_path: Path) -> None:
    # zipfile raises zlib.error (not BadZipFile) when the deflate data itself is broken.
    record = (shared_data / "osv/go/GO-2024-3200.json").read_bytes()
    path = tmp_path / "all.zip"
    path.write_bytes(_corrupt_deflate("GO-2024-3200.json", record))
    with pytest.raises(FeedError) as raised:
        list(osv.FEED.read(path))
    assert raised.value.path == f"{path}!GO-2024-3200.json"
    assert raised.value.detail.startswith("corrupt zip member: Error -3 while decompressing")


def test_debian_tracker_gzip_with_a_damaged_deflate_stream(shared_data: Path,
                                                           tmp_path: Path) -> None:
    # A valid gzip header followed by a broken deflate stream: zlib.error, not BadGzipFile.
    data = bytearray(gzip.compress(
        (shared_data / "distro/vunnel-fixtures/debian/input/debian.json").read_bytes(),
        mtime=0))
    for i in range(12, 52):  # past the 10-byte gzip header
        data[i] ^= 0xFF
    path = tmp_path / "debian.json.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(FeedError) as raised:
        list(debian_tracker.FEED.read(path))
    assert raised.value.path == str(path)
    assert raised.value.detail.startswith("cannot read file: Error -3 while decompressing")


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
def test_inventory_collected_at_out_of_range_in_utc(moment: str) -> None:
    # A valid ISO time whose UTC equivalent is past datetime.max (or before .min) raised
    # OverflowError from the UTC validator: the API answered 500 instead of 422.
    document = f'{{"schema": 1, "collector": {{"name": "agent"}}, "collected_at": "{moment}"}}'
    with pytest.raises(InventoryFormatError) as raised:
        Inventory.from_json(document, "upload")
    assert raised.value.path == "upload"
    assert raised.value.detail == ("collected_at: Value error, date out of range once "
                                   "converted to UTC")
