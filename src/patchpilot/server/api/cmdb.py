"""Asset context from the CMDB: import, unknown assets, one asset's context."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel

from patchpilot.assets.cmdb import (
    CmdbFormatError,
    parse_csv,
    parse_records,
    parse_yaml,
    record_from_mapping,
)
from patchpilot.assets.context import set_context, unknown_assets
from patchpilot.assets.devices import apply_cmdb
from patchpilot.server.deps import Admin, Analyst, EngineDep, Viewer, scope_aware
from patchpilot.server.params import DbId
from patchpilot.server.security import reach

router = APIRouter(tags=["assets"])

MAX_BODY = 20 * 1024 * 1024  # a 100,000-row CMDB export is ~15 MB of CSV


class ImportedAsset(BaseModel):
    """A record applied to an asset: where it was, how it was found, whether it changed."""

    where: str
    identity: str
    asset_id: int
    matched_by: str
    changed: bool


class UnmatchedRecord(BaseModel):
    """A record no asset matched (and none was created)."""

    where: str
    identity: str


class AmbiguousRecord(UnmatchedRecord):
    """A record that matched more than one asset, and why (left unapplied)."""

    asset_ids: list[int]
    reason: str


class ImportResult(BaseModel):
    """What a CMDB import did."""

    updated: int
    created: int
    changed: int
    defaulted: int
    assets: list[ImportedAsset]
    unmatched: list[UnmatchedRecord]
    ambiguous: list[AmbiguousRecord]
    devices: list[int] = []  # assets of the rows that declare a network device


class UnknownAssetOut(BaseModel):
    """An asset the CMDB does not describe (``defaulted``: it has the default context)."""

    id: int
    name: str
    fqdn: str | None
    ip_addresses: list[str]
    first_seen: str | None
    last_seen: str | None
    criticality: int | None
    defaulted: bool


class AssetContextOut(BaseModel):
    """One asset's stored context: the CMDB fields, its tags, where it came from
    (``cmdb-import``, ``manual``, ``default``, …) and when."""

    asset_id: int
    criticality: int | None
    environment: str | None
    exposure: str | None
    data_classification: str | None
    owner: str | None
    service: str | None
    location: str | None
    compensating_control: str | None
    tags: list[str]
    source: str
    updated_at: str | None


@router.post("/assets/import", response_model=ImportResult)
async def import_assets(request: Request, who: Admin, engine: EngineDep,
                        create_missing: bool = False) -> dict[str, Any]:
    """Apply a CMDB export: a JSON list of records, or CSV / YAML by Content-Type.

    Answers ``{updated, created, changed, unmatched: [...], ambiguous: [...]}``; a bad
    value anywhere rejects the whole body (422, every problem listed), nothing stored.
    """
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            f"body over {MAX_BODY} bytes; split the export")
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
    try:
        if kind in ("text/csv", "application/csv"):
            records = parse_csv(body.decode("utf-8-sig"), "body")
        elif kind in ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"):
            records = parse_yaml(body.decode("utf-8"), "body")
        elif kind == "application/json":
            data = orjson.loads(body or b"null")
            if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
                raise CmdbFormatError(["body: expected a JSON list of records (objects)"])
            records = parse_records(data, "body")
        else:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                                f"Content-Type {kind!r}: send application/json, text/csv "
                                "or application/yaml")
    except CmdbFormatError as exc:
        raise HTTPException(422, exc.problems) from exc
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(422,
                            [f"body: cannot be read: {exc}"]) from exc
    result = apply_cmdb(engine, records, source="cmdb-import", actor=who.name,
                        create_missing=create_missing, label="api")
    return result.to_dict()


@router.get("/assets/unknown", response_model=list[UnknownAssetOut])
@scope_aware  # of the caller's assets only
def list_unknown(who: Viewer, engine: EngineDep) -> list[dict[str, Any]]:
    """Assets the scans found that the CMDB does not describe (flagged 'unknown asset')."""
    with engine.connect() as conn:
        return unknown_assets(conn, reach(conn, who))


@router.put("/assets/{asset_id}/context", response_model=AssetContextOut)
@scope_aware  # an asset outside the caller's part is a 404, as an unknown id
def put_context(asset_id: DbId, body: dict[str, Any], who: Analyst,
                engine: EngineDep) -> dict[str, Any]:
    """Set one asset's context by hand (fields absent from the body are left as they are)."""
    try:
        record = record_from_mapping("body", body, require_identity=False)
    except ValueError as exc:
        raise HTTPException(422, [f"body: {exc}"]) from exc
    with engine.connect() as conn:
        seen = reach(conn, who)
    # UnknownAsset (an AssetContextError) is a NotFound: the one handler answers 404.
    return set_context(engine, asset_id, record, actor=who.name, reach=seen)
