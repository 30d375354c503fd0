"""POST /api/inventories: an Inventory from an agent, an SSH scan or an uploaded file.

The body is the Inventory JSON, optionally gzip-compressed (``Content-Encoding: gzip``);
``Idempotency-Key`` makes a retried upload count once.  The inventory is stored and its
match job queued in one transaction; matching runs in a worker, not in the request.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status
from pydantic import BaseModel
from sqlalchemy import Engine

from patchpilot.errors import InventoryFormatError
from patchpilot.findings.lifecycle import ingest_inventory
from patchpilot.inventory.model import Inventory
from patchpilot.server.deps import AnalystOrAgent, EngineDep
from patchpilot.server.security import Principal

router = APIRouter(tags=["inventories"])

MAX_BODY = 64 << 20  # 64 MiB decompressed: far above any real host, far below a gzip bomb


class Ingested(BaseModel):
    """Where the inventory went."""

    asset_id: int
    inventory_id: int
    duplicate: bool
    job_id: int | None


async def read_body(request: Request) -> bytes:
    """The request body, gunzipped when sent so, bounded in size."""
    body = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            inflater = zlib.decompressobj(wbits=31)
            data = inflater.decompress(body, MAX_BODY + 1)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"bad gzip body: {exc}") from exc
        if len(data) > MAX_BODY or inflater.unconsumed_tail:
            raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                                f"inventory larger than {MAX_BODY >> 20} MiB")
        return data
    if len(body) > MAX_BODY:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                            f"inventory larger than {MAX_BODY >> 20} MiB")
    return body


@router.post("/inventories", status_code=202, response_model=Ingested)
async def upload_inventory(
    request: Request, who: AnalystOrAgent, engine: EngineDep,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> Ingested:
    """Store an inventory as its asset's latest and queue its matching."""
    data = await read_body(request)
    # Parsing and the ingest transaction are blocking work: they run on a thread so one
    # upload never holds up the event loop (and the other agents' uploads and polls).
    return await asyncio.to_thread(_ingest, engine, who, data, idempotency_key)


def _ingest(engine: Engine, who: Principal, data: bytes,
            idempotency_key: str | None) -> Ingested:
    try:
        inventory = Inventory.from_json(data, "request body")
    except InventoryFormatError as exc:
        raise HTTPException(422, str(exc)) from exc
    key = f"{who.kind}:{who.id}:{idempotency_key}" if idempotency_key else None
    asset_id = None
    if who.kind == "agent":
        from patchpilot.server.api.agents import agent_asset

        asset_id = agent_asset(engine, who.id)
    result = ingest_inventory(engine, inventory, idempotency_key=key, asset_id=asset_id,
                              enqueue_match=True)
    if who.kind == "agent" and asset_id is None:
        from patchpilot.server.api.agents import bind_agent_asset

        bind_agent_asset(engine, who.id, result.asset_id)
    return Ingested(asset_id=result.asset_id, inventory_id=result.inventory_id,
                    duplicate=result.duplicate, job_id=result.job_id)
