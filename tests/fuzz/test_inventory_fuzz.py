"""Fuzz ``Inventory.from_json``, the server's contract with every collector.

The server parses whatever an agent, a script or an attacker posts to /api/inventories.
Anything that is not a valid schema-1 document must be an ``InventoryFormatError`` (the
API's 422 naming the field), never a 500; anything accepted must be usable: its packages
convert to the matcher's values and the document survives a JSON round trip unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import (
    AssetIdentity,
    Collector,
    Inventory,
    OsInfo,
    PendingUpdate,
)
from patchpilot.inventory.sources import cyclonedx, dpkg, npm_lock
from patchpilot.models import Ecosystem
from tests.fuzz.conftest import EXAMPLES, FUZZ, mutated, random_input

# The server's one contract, and cheap to parse (a few ms): four times the budget.
FUZZ_INVENTORY = settings(FUZZ, max_examples=4 * EXAMPLES)

_seeds: list[bytes] = []


def real_inventories(shared_data: Path) -> list[bytes]:
    """Inventory documents built from real package lists, as the collectors build them."""
    if _seeds:
        return _seeds
    inventories = shared_data / "inventories"
    status = inventories / "dpkg-status/syft__debian__image-dpkg__var__lib__dpkg__status"
    debian = dpkg.SOURCE.parse(status.read_bytes(), str(status), Ecosystem("Debian:12"))
    lock = inventories / "npm-package-lock/syft__npm-lock__package-lock.json"
    npm = npm_lock.SOURCE.parse(lock.read_bytes(), str(lock), None)
    bom = inventories / "cyclonedx/osv-scalibr__sbom__cdx__sbom.bom.json"
    sbom = cyclonedx.SOURCE.parse(bom.read_bytes(), str(bom), None)
    moment = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    agent = Inventory.from_packages(
        debian.packages,
        asset=AssetIdentity(hostname="web1", machine_id="ab" * 16, ip_addresses=["192.0.2.1"]),
        os=OsInfo(id="debian", version_id="12", codename="bookworm",
                  kernel_running="6.1.0-18-amd64", kernels_installed=["6.1.0-18-amd64"],
                  reboot_required=False),
        pending_updates=[PendingUpdate(
            package="libssl3", source_name="openssl", installed_version="3.0.11-1~deb12u2",
            candidate_version="3.0.13-1~deb12u1", repository="bookworm-security",
            advisory_id="DSA-5678-1", cve_ids=["CVE-2024-0727"], severity="important")],
        collected_at=moment, collector=Collector(name="agent"), complete=True)
    upload = Inventory.from_packages(npm.packages + sbom.packages,
                                     asset=AssetIdentity(hostname="ci-build"),
                                     collected_at=moment, collector=Collector(name="file"),
                                     complete=False, warnings=["lock file only"])
    _seeds.extend([agent.to_json(), upload.to_json()])
    return _seeds


def from_json_or_format_error(data: bytes) -> None:
    """Parse ``data``; InventoryFormatError is the one allowed error; accepted ones are sound."""
    try:
        inventory = Inventory.from_json(data, "upload")
    except InventoryFormatError as exc:
        assert exc.path == "upload"
        return
    inventory.to_packages()  # what the matcher is given
    assert Inventory.from_json(inventory.to_json()) == inventory  # lossless round trip


def test_seeds_are_valid_inventories(shared_data: Path) -> None:
    seeds = real_inventories(shared_data)
    assert [len(Inventory.from_json(s).packages) for s in seeds][0] > 0
    assert all(Inventory.from_json(s).to_json() == s for s in seeds)


@FUZZ_INVENTORY
@given(data=random_input())
@example(data=b'{"schema": 1, "collector": {"name": "x"}, "packages": [[]]}')
@example(data=b'{"schema": true, "collector": {"name": "x"}}')
@example(data=b'{"schema": 1.0, "collector": {"name": "x"}, '
              b'"collected_at": "9999-12-31T23:59:59-23:59"}')  # was an OverflowError
def test_random_documents_raise_only_format_errors(data: bytes) -> None:
    from_json_or_format_error(data)


@FUZZ_INVENTORY
@given(draw=st.data())
def test_mutated_real_inventories_raise_only_format_errors(shared_data: Path,
                                                           draw: st.DataObject) -> None:
    seed = draw.draw(st.sampled_from(real_inventories(shared_data)), label="seed")
    from_json_or_format_error(draw.draw(mutated(seed), label="mutated"))
