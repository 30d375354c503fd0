"""Assets: list, one asset with its latest inventory and finding counts."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, status
from sqlalchemy import func, select

from patchpilot.clock import iso
from patchpilot.db.tables import assets, findings, inventories
from patchpilot.server.deps import EngineDep, Viewer
from patchpilot.server.params import DbId, Limit, Offset

router = APIRouter(tags=["assets"])


def _asset(row: Any, counts: dict[str, int]) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "fqdn": row.fqdn, "machine_id": row.machine_id,
            "ip_addresses": orjson.loads(row.ip_addresses or "[]"), "os": row.os,
            "ecosystem": row.ecosystem, "tags": orjson.loads(row.tags or "[]"),
            "attributes": orjson.loads(row.attributes or "{}"),
            "first_seen": iso(row.first_seen),
            "last_seen": iso(row.last_seen),
            "last_inventory_id": row.last_inventory_id, "open_findings": counts}


@router.get("/assets")
def list_assets(who: Viewer, engine: EngineDep, limit: Limit = 100, offset: Offset = 0
                ) -> list[dict[str, Any]]:
    """Assets with their open findings per severity."""
    with engine.connect() as conn:
        rows = conn.execute(select(assets).order_by(assets.c.name, assets.c.id)
                            .limit(limit).offset(offset)).all()
        ids = [r.id for r in rows]
        counts: dict[int, dict[str, int]] = {i: {} for i in ids}
        for asset_id, severity, n in conn.execute(
                select(findings.c.asset_id, findings.c.severity, func.count())
                .where(findings.c.asset_id.in_(ids), findings.c.state == "open")
                .group_by(findings.c.asset_id, findings.c.severity)):
            counts[asset_id][severity or "Unknown"] = n
    return [_asset(r, counts[r.id]) for r in rows]


@router.get("/assets/{asset_id}")
def get_asset(asset_id: DbId, who: Viewer, engine: EngineDep) -> dict[str, Any]:
    """One asset, with its latest inventory's summary."""
    with engine.connect() as conn:
        row = conn.execute(select(assets).where(assets.c.id == asset_id)).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no asset {asset_id}")
        counts: dict[str | None, int] = dict(conn.execute(  # type: ignore[arg-type]
            select(findings.c.severity, func.count()).where(
                findings.c.asset_id == asset_id, findings.c.state == "open")
            .group_by(findings.c.severity)).all())
        history = conn.execute(
            select(inventories.c.id, inventories.c.collected_at, inventories.c.collector,
                   inventories.c.packages, inventories.c.complete)
            .where(inventories.c.asset_id == asset_id)
            .order_by(inventories.c.id.desc()).limit(20)).all()
    out = _asset(row, {str(k or "Unknown"): int(v) for k, v in counts.items()})
    out["inventories"] = [{"id": h.id, "collected_at": iso(h.collected_at),
                           "collector": h.collector, "packages": h.packages,
                           "complete": h.complete} for h in history]
    return out
