"""POST /api/inventories: an Inventory from an agent, an SSH scan or an uploaded file.

The body is the Inventory JSON, or a Windows host's saved ``systeminfo``, ``wmic qfe
list``, ``Get-HotFix | ConvertTo-Json`` or update-history output (told by its content;
the asset is the host the file names), optionally gzip-compressed (``Content-Encoding:
gzip``);
``Idempotency-Key`` makes a retried upload count once.  The inventory is stored and its
match job queued in one transaction; matching runs in a worker, not in the request.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status
from pydantic import BaseModel
from sqlalchemy import Engine

from patchpilot.errors import InventoryFormatError
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.findings.uploads import refuse_empty_file
from patchpilot.inventory.model import Inventory
from patchpilot.inventory.windows.files import is_windows_file, windows_inventory
from patchpilot.server.deps import AnalystOrAgent, EngineDep
from patchpilot.server.security import Principal

router = APIRouter(tags=["inventories"])


class Ingested(BaseModel):
    """Where the inventory went."""

    asset_id: int
    inventory_id: int
    duplicate: bool
    job_id: int | None


async def read_body(request: Request) -> bytes:
    """The request body, gunzipped when sent so, read as it streams and bounded twice: at
    most the upload limit (``PATCHPILOT_MAX_UPLOAD_MB``) as sent and again once inflated,
    so a gzip bomb stops at the limit instead of being inflated in full.

    415 for a content coding other than gzip; 400 for a body that is not one whole gzip
    member (corrupt, cut short, or with bytes after its end); 413 over the limit.
    """
    limit: int = request.app.state.max_upload
    coding = request.headers.get("content-encoding", "").strip().lower()
    if coding not in ("", "identity", "gzip"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            f"Content-Encoding {coding!r}: send the inventory as it is or "
                            "gzip-compressed")
    too_large = HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                              f"inventory larger than {limit >> 20} MiB")
    # wbits=31: a gzip member (header and CRC-32 checked), not a raw zlib stream.
    inflater = zlib.decompressobj(wbits=31) if coding == "gzip" else None
    parts: list[bytes] = []
    sent = size = 0
    async for chunk in request.stream():
        sent += len(chunk)
        if sent > limit:
            raise too_large
        if inflater is None:
            parts.append(chunk)
            continue
        if inflater.eof:
            if chunk:  # the member ended in an earlier chunk
                raise _bad_gzip(f"{len(chunk)} bytes after the end of the gzip stream")
            continue
        try:
            # At most one byte past the limit: enough to know it is over.
            out = inflater.decompress(chunk, limit - size + 1)
        except zlib.error as exc:
            raise _bad_gzip(str(exc)) from exc
        size += len(out)
        if size > limit or inflater.unconsumed_tail:
            raise too_large
        if inflater.unused_data:
            raise _bad_gzip(f"{len(inflater.unused_data)} bytes after the end of the gzip "
                            "stream")
        parts.append(out)
    if inflater is not None and not inflater.eof:
        raise _bad_gzip("the body ends before the gzip stream does")
    return b"".join(parts)


def _bad_gzip(why: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, f"bad gzip body: {why}")


@router.post("/inventories", status_code=202, response_model=Ingested)
async def upload_inventory(
    request: Request, who: AnalystOrAgent, engine: EngineDep,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> Ingested:
    """Store an inventory as its asset's latest and queue its matching.

    An agent reports only for the asset it is bound to (its first inventory binds it);
    409 when an unbound agent's inventory names an asset another active agent reports
    for (held for an admin's approval, nothing stored).  422 for an inventory read from a
    file (collector ``file``) that lists no package: nothing could be read from it.
    A Windows file as the body (``systeminfo`` output, …) is stored as the inventory of
    the host it names; 422 for one that names no host (a QFE list without ``CSName``).
    """
    data = await read_body(request)
    # Parsing and the ingest transaction are blocking work: they run on a thread so one
    # upload never holds up the event loop (and the other agents' uploads and polls).
    return await asyncio.to_thread(_ingest, engine, who, data, idempotency_key)


def _read(data: bytes, where: str) -> Inventory:
    """The Inventory of a body: an Inventory document, or a Windows file told by content."""
    if not is_windows_file(data):
        return Inventory.from_json(data, where)
    inventory = windows_inventory([(data, where)])
    if not inventory.asset.hostname:
        raise InventoryFormatError(where, "the Windows file names no host (a QFE list "
                                          "without its CSName column): send the host's "
                                          "systeminfo output, which names it")
    return inventory


def _ingest(engine: Engine, who: Principal, data: bytes,
            idempotency_key: str | None) -> Ingested:
    # The stage's errors are answered by the app's one handler: an unreadable body
    # (InventoryFormatError) and an empty file's inventory (NothingRead) 422, an asset
    # another agent reports for (AssetClaimedError) 409.
    inventory = _read(data, "request body")
    refuse_empty_file(inventory, "request body")
    key = f"{who.kind}:{who.id}:{idempotency_key}" if idempotency_key else None
    result = ingest_inventory(engine, inventory, idempotency_key=key, enqueue_match=True,
                              agent_id=who.id if who.kind == "agent" else None)
    return Ingested(asset_id=result.asset_id, inventory_id=result.inventory_id,
                    duplicate=result.duplicate, job_id=result.job_id)
