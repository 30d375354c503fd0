"""Storing what network discovery found: one asset per live host, through the ingest.

Each discovered host's inventory (``nmap``, ``snmp`` or ``nmap+snmp``) goes through
``findings.ingest.ingest_inventory`` with its match job queued, so the asset, its CPE
packages and their findings follow the same path as any scan.  A host whose asset is
already inventoried by a host collector (an agent, an SSH or WinRM scan) is *kept*: its
package list is the better source, and a port scan must never replace it and close its
findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select

from patchpilot.db.tables import assets, inventories
from patchpilot.findings.ingest import find_asset, ingest_inventory
from patchpilot.inventory.model import Inventory

# The collectors of discovery: their inventories replace one another, nothing else.
DISCOVERY_COLLECTORS = ("nmap", "snmp", "nmap+snmp")


@dataclass(frozen=True, slots=True)
class StoredHost:
    """What became of one discovered host: stored (its asset and match job) or kept."""

    address: str
    asset_id: int | None
    inventory_id: int | None
    job_id: int | None
    kept_because: str | None = None  # why nothing was stored


def store_discovered(engine: Engine, found: Sequence[Inventory]) -> list[StoredHost]:
    """Store each discovered host's inventory as its asset's latest (one transaction per
    host, its match job queued), except over an asset a host collector inventories."""
    stored: list[StoredHost] = []
    for inv in found:
        address = inv.asset.ip_addresses[0] if inv.asset.ip_addresses else \
            inv.asset.hostname or "?"
        with engine.connect() as conn:
            asset_id = find_asset(conn, inv.asset)
            collector = None
            if asset_id is not None:
                collector = conn.execute(
                    select(inventories.c.collector)
                    .join(assets, assets.c.last_inventory_id == inventories.c.id)
                    .where(assets.c.id == asset_id)).scalar()
        if collector is not None and collector not in DISCOVERY_COLLECTORS:
            stored.append(StoredHost(address, asset_id, None, None,
                                     f"asset {asset_id} is inventoried by its {collector} "
                                     "collector; discovery does not replace that"))
            continue
        result = ingest_inventory(engine, inv, asset_id=asset_id, enqueue_match=True)
        stored.append(StoredHost(address, result.asset_id, result.inventory_id,
                                 result.job_id))
    return stored
