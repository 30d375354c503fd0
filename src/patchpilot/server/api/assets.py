"""Assets: list, one asset with its latest inventory and finding counts.

A user limited to part of the estate (issue 18) lists their assets only; another id is
a 404, as an unknown one is (``assets.queries``' ``reach``)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from pydantic import BaseModel

from patchpilot.assets.queries import (
    asset_row,
    assets_by_name,
    inventory_history,
    latest_inventory_warnings,
    open_by_severity,
)
from patchpilot.clock import iso
from patchpilot.findings.coverage import asset_coverage
from patchpilot.server.deps import EngineDep, Viewer, scope_aware
from patchpilot.server.params import DbId, Limit, Offset
from patchpilot.server.security import reach

router = APIRouter(tags=["assets"])


class AssetOut(BaseModel):
    """An asset as listed, with its open findings per severity band."""

    id: int
    name: str
    fqdn: str | None
    machine_id: str | None
    ip_addresses: list[str]
    os: str | None
    ecosystem: str | None
    tags: list[str]
    attributes: dict[str, Any]
    first_seen: str | None
    last_seen: str | None
    last_inventory_id: int | None
    open_findings: dict[str, int]


class InventorySummary(BaseModel):
    """One stored inventory of an asset (``complete``: a full scan, not a partial one)."""

    id: int
    collected_at: str | None
    collector: str | None
    packages: int
    complete: bool


class EcosystemCoverageOut(BaseModel):
    """One ecosystem of the asset's latest inventory: its packages, the advisories the
    knowledge base holds for it, and whether that covers it (``knowledge.coverage``)."""

    ecosystem: str
    packages: int
    advisories: int
    assets: int
    covered: bool


class AssetDetail(AssetOut):
    """One asset with the summaries of its stored inventories, the warnings of the latest
    one (what its collector or parser skipped or inferred), and its coverage."""

    inventories: list[InventorySummary]
    inventory_warnings: list[str] = []
    coverage: list[EcosystemCoverageOut] = []


def _asset(row: Any, counts: dict[str, int]) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "fqdn": row.fqdn, "machine_id": row.machine_id,
            "ip_addresses": orjson.loads(row.ip_addresses or "[]"), "os": row.os,
            "ecosystem": row.ecosystem, "tags": orjson.loads(row.tags or "[]"),
            "attributes": orjson.loads(row.attributes or "{}"),
            "first_seen": iso(row.first_seen),
            "last_seen": iso(row.last_seen),
            "last_inventory_id": row.last_inventory_id, "open_findings": counts}


@router.get("/assets", response_model=list[AssetOut])
@scope_aware  # the caller's assets only
def list_assets(who: Viewer, engine: EngineDep, limit: Limit = 100, offset: Offset = 0
                ) -> list[dict[str, Any]]:
    """Assets with their open findings per severity."""
    with engine.connect() as conn:
        rows = assets_by_name(conn, limit=limit, offset=offset, reach=reach(conn, who))
        counts = open_by_severity(conn, [r.id for r in rows])
    return [_asset(r, counts[r.id]) for r in rows]


@router.get("/assets/{asset_id}", response_model=AssetDetail)
@scope_aware  # an asset outside the caller's part is a 404, as an unknown id
def get_asset(asset_id: DbId, who: Viewer, engine: EngineDep) -> dict[str, Any]:
    """One asset, with its latest inventory's summary."""
    with engine.connect() as conn:
        row = asset_row(conn, asset_id, reach(conn, who))
        counts = open_by_severity(conn, [asset_id])[asset_id]
        history = inventory_history(conn, asset_id)
        latest = latest_inventory_warnings(conn, asset_id)
        coverage = asset_coverage(conn, asset_id)
    out = _asset(row, counts)
    out["inventory_warnings"] = list(latest.warnings)
    # Per ecosystem of its latest inventory: packages, advisories loaded, covered or not.
    out["coverage"] = [c.to_dict() for c in coverage]
    out["inventories"] = [{"id": h.id, "collected_at": iso(h.collected_at),
                           "collector": h.collector, "packages": h.packages,
                           "complete": h.complete} for h in history]
    return out
