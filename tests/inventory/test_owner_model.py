"""The inventory's ``owner`` and ``changelog_cves``: optional, round-tripped, validated."""

from __future__ import annotations

import orjson
import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import Inventory
from patchpilot.models import PackageOwner

OWNED = {"ecosystem": "PyPI", "name": "cryptography", "version": "38.0.4",
         "location": "/usr/lib/python3/dist-packages",
         "owner": {"name": "python3-cryptography", "version": "38.0.4-3+deb12u1"}}


def _doc(**fields: object) -> bytes:
    return orjson.dumps({"schema": 1, "collector": {"name": "agent"}, **fields})


def test_documents_without_the_fields_still_read() -> None:
    inv = Inventory.from_json(_doc(packages=[{"ecosystem": "PyPI", "name": "pip",
                                              "version": "23.0.1"}]))
    assert inv.changelog_cves == {}
    assert [p.owner for p in inv.to_packages()] == [None]


def test_owner_and_changelog_cves_round_trip() -> None:
    inv = Inventory.from_json(_doc(
        packages=[OWNED],
        changelog_cves={"python3-cryptography": ["CVE-2023-23931", "CVE-2023-49083"]}))
    [package] = inv.to_packages()
    assert package.owner == PackageOwner("python3-cryptography", "38.0.4-3+deb12u1")
    again = Inventory.from_json(Inventory.from_packages(
        inv.to_packages(), collector=inv.collector,
        changelog_cves=inv.changelog_cves).to_json())
    assert again.packages == inv.packages
    assert again.changelog_cves == inv.changelog_cves


def test_owner_without_version_is_refused() -> None:
    with pytest.raises(InventoryFormatError, match=r"packages\[0\]\.owner\.version: Field "
                                                   "required"):
        Inventory.from_json(_doc(packages=[{**OWNED, "owner": {"name": "python3-x"}}]))
