"""The Inventory document: JSON round trip, validation errors, published JSON Schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from patchpilot import __version__
from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import (
    AssetIdentity,
    Collector,
    Inventory,
    OsInfo,
    PackageEntry,
    field_path,
    inventory_json_schema,
)
from patchpilot.inventory.sources.dpkg import parse_dpkg_status
from patchpilot.models import Package

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "inventory-2.schema.json"


def _inventory(inventories: Path) -> Inventory:
    path = inventories / "debian12-dpkg-status"
    packages = parse_dpkg_status(path.read_text(encoding="utf-8"), "Debian:12", str(path))
    return Inventory.from_packages(
        packages,
        asset=AssetIdentity(hostname="web1", fqdn="web1.example.org", machine_id="ab" * 16,
                            ip_addresses=["192.0.2.10", "2001:db8::10"]),
        os=OsInfo(id="debian", version_id="12", codename="bookworm",
                  kernel_running="6.1.0-18-amd64", kernels_installed=["6.1.0-18-amd64"]),
        collected_at=datetime(2024, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=9))),
        collector=Collector(name="local"),
    )


def test_json_round_trip(inventories: Path) -> None:
    inventory = _inventory(inventories)
    data = inventory.to_json()
    raw = json.loads(data)
    assert raw["schema"] == 1 and "schema_" not in raw
    assert raw["collected_at"] == "2024-03-01T03:00:00Z"  # normalised to UTC
    assert raw["collector"] == {"name": "local", "version": __version__}
    again = Inventory.from_json(data)
    assert again == inventory
    assert again.collected_at.tzinfo == UTC
    packages = again.to_packages()
    assert len(packages) == 710
    assert all(isinstance(p, Package) for p in packages)
    assert packages == parse_dpkg_status(
        (inventories / "debian12-dpkg-status").read_text(encoding="utf-8"), "Debian:12",
        str(inventories / "debian12-dpkg-status"))


def _error(document: object) -> InventoryFormatError:
    with pytest.raises(InventoryFormatError) as raised:
        Inventory.from_json(json.dumps(document), "upload.json")
    assert raised.value.path == "upload.json"
    return raised.value


def _minimal(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "schema": 1, "collected_at": "2024-03-01T03:00:00Z", "collector": {"name": "file"},
        "packages": [{"ecosystem": "Debian:12", "name": "bash", "version": "5.2.15-2+b8"}],
    }
    document.update(changes)
    return document


def test_minimal_document_defaults() -> None:
    inventory = Inventory.from_json(json.dumps(_minimal()))
    assert inventory.complete is True and inventory.os is None
    assert inventory.asset == AssetIdentity()
    assert inventory.packages == [PackageEntry(ecosystem="Debian:12", name="bash",
                                               version="5.2.15-2+b8")]


@pytest.mark.parametrize(("changes", "detail"), [
    ({"packages": [{"ecosystem": "Debian:12", "name": "bash"}]},
     "packages[0].version: Field required"),
    ({"packages": [{"ecosystem": "Debian:12", "name": "bash", "version": ""}]},
     "packages[0].version: String should have at least 1 character"),
    ({"collected_at": "2024-03-01T03:00:00"},
     "collected_at: Input should have timezone info"),
    ({"asset": {"hostname": "a", "ip_adresses": []}},
     "asset.ip_adresses: Extra inputs are not permitted"),
    ({"complete": "maybe"}, "complete: Input should be a valid boolean, unable to interpret "
                            "input"),
    ({"schema": 3}, "schema: unsupported inventory schema 3 "
                    f"(this PatchPilot {__version__} reads schemas 1 and 2)"),
    ({"schema": True}, "schema: unsupported inventory schema True "
                       f"(this PatchPilot {__version__} reads schemas 1 and 2)"),
    ({"windows": {"build": 20348}}, "windows: Windows facts need schema 2 "
                                    "(this document says 1)"),
    ({"schema": 2, "windows": {"kbs": ["KB5075912", "5075913"]}},
     "windows.kbs: Value error, '5075913' is not a KB id (KB and 5 to 8 digits)"),
    ({"schema": 2, "windows": {"kbs": ["KB5075912"], "ubr": -1}},
     "windows.ubr: Input should be greater than or equal to 0"),
])
def test_from_json_names_the_field(changes: dict[str, object], detail: str) -> None:
    assert _error(_minimal(**changes)).detail == detail


def test_from_json_counts_further_errors() -> None:
    error = _error(_minimal(collector={}, complete="maybe"))
    assert error.detail == "collector.name: Field required (and 1 more errors)"


def test_from_json_not_an_inventory() -> None:
    assert _error(["a list"]).detail == "an inventory is a JSON object"
    assert _error({"packages": []}).detail == "schema: missing (not an inventory document)"
    with pytest.raises(InventoryFormatError) as raised:
        Inventory.from_json(b'{\n  "schema": 1,\n  oops\n}', "bad.json")
    assert raised.value.line == 3 and raised.value.detail.startswith("invalid JSON at column")


def test_field_path() -> None:
    assert field_path(("packages", 3, "name")) == "packages[3].name"
    assert field_path(()) == "(document)"


def test_published_schema_is_current(update_golden: bool) -> None:
    """schemas/inventory-2.schema.json is what the model generates.

    Refresh it after a deliberate change with ``pytest tests/inventory --update-golden``.
    """
    generated = json.dumps(inventory_json_schema(), indent=2, sort_keys=True) + "\n"
    if update_golden:
        SCHEMA_FILE.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_FILE.write_text(generated, encoding="utf-8")
    assert SCHEMA_FILE.read_text(encoding="utf-8") == generated
    schema = json.loads(generated)
    assert schema["properties"]["schema"] == {"default": 1, "enum": [1, 2], "title": "Schema",
                                              "type": "integer"}
    assert schema["properties"]["windows"]["anyOf"][0] == {"$ref": "#/$defs/WindowsInfo"}
    assert set(schema["required"]) == {"collector"}


def test_windows_document_is_schema_2_and_round_trips() -> None:
    """A document with Windows facts is written as schema 2 and reads back whole; one
    without stays schema 1, which a server that reads only schema 1 still takes."""
    from patchpilot.inventory.model import WindowsInfo, WindowsProgram

    windows = WindowsInfo(product_name="Windows Server 2022 Standard",
                          family="Windows Server 2022", release="21H2", edition="Standard",
                          installation_type="Server Core", build=20348, ubr=3270,
                          architecture="x64", kbs=["KB5075912", "KB5012170"],
                          programs=[WindowsProgram(name="7-Zip 23.01 (x64)", version="23.01",
                                                   publisher="Igor Pavlov", arch="x64")],
                          components={"sql-server": "15.0.4415.2"})
    inv = Inventory(windows=windows, collector=Collector(name="agent"))
    raw = json.loads(inv.to_json())
    assert raw["schema"] == 2 and raw["windows"]["ubr"] == 3270
    again = Inventory.from_json(inv.to_json(), "w.json")
    assert again == inv
    linux = Inventory(collector=Collector(name="agent"))
    assert json.loads(linux.to_json())["schema"] == 1
