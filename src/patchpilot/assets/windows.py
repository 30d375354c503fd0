"""A Windows asset's own facts, as its latest stored inventory tells them (the asset page).

The inventory document's ``windows`` part (schema 2: product, edition, release, build,
UBR, KBs, programs, server components) is read back for people to see; matching reads
the same document elsewhere.  Whether the product is past its end of life is decided by
:func:`end_of_life_warning` alone, so the rule can change in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Connection

from patchpilot.db.tables import inventories
from patchpilot.inventory.model import WindowsInfo

# The words a warning uses for a product Microsoft no longer updates (the matcher writes
# it into the scan result and the inventory's warnings).
_END_OF_LIFE = "end of life"


@dataclass(frozen=True, slots=True)
class WindowsAsset:
    """The Windows part of an asset's latest inventory, with its OS version."""

    inventory_id: int
    info: WindowsInfo
    version: str | None  # "10.0.20348" (the OS version systeminfo prints), else the build

    @property
    def full_build(self) -> str | None:
        """``10.0.20348.3270`` (version and UBR), or the version alone when the UBR is
        unknown (``systeminfo`` does not print it)."""
        if self.version is None:
            return None
        return self.version if self.info.ubr is None else f"{self.version}.{self.info.ubr}"


def latest_windows(conn: Connection, asset_id: int) -> WindowsAsset | None:
    """The Windows facts of asset ``asset_id``'s latest stored inventory; None when it has
    none (not a Windows asset, no inventory, or a document this version cannot read)."""
    row = conn.execute(
        select(inventories.c.id, inventories.c.document)
        .where(inventories.c.asset_id == asset_id)
        .order_by(inventories.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    try:
        document = orjson.loads(row.document)
        info = WindowsInfo.model_validate(document.get("windows"))
    except (orjson.JSONDecodeError, AttributeError, ValidationError):
        return None  # no windows part (None does not validate), or not an object
    os_part = document.get("os") or {}
    version = os_part.get("version_id") if isinstance(os_part, dict) else None
    if version is None and info.build is not None:
        version = str(info.build)
    return WindowsAsset(row.id, info, version)


def end_of_life_warning(warnings: Sequence[str]) -> str | None:
    """The warning that says the product is past its end of life (no more security
    updates from Microsoft), or None.  The one place that decides it."""
    return next((w for w in warnings if _END_OF_LIFE in w.lower()), None)
