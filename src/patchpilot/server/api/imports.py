"""Third-party scanner reports over HTTP: upload one as an import job, follow it, list the
imports, the formats the importers read and the generic format's templates.

``POST /api/imports`` takes ``multipart/form-data``: ``file`` (the report), and optional
``format`` (a name of ``GET /api/imports/formats``; detected from the content when
absent), ``scope`` (its findings belong to ``importer:<scanner>:<scope>``, so a re-import
closes only that scope's) and ``asset`` (for reports that name no host or image).  The
report is spooled to disk as it arrives (``server.web.imports``), recognised at once, and
imported by a worker (:mod:`patchpilot.importers.jobs`): 202 with the import's row and its
``Location``; ``GET /api/imports/{id}`` shows its status, progress (bytes read of
``total``) and, once settled, its summary or error.

Errors by kind: a report over ``PATCHPILOT_MAX_IMPORT_MB`` is 413; a file no importer
recognises, a format, scope or asset that cannot be, is 422 saying which (the formats
tried); an import id that names none is 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel

from patchpilot.clock import aware
from patchpilot.importers.jobs import ImportRow, get_import, list_imports
from patchpilot.server.deps import Analyst, EngineDep, Viewer
from patchpilot.server.params import DbId, Limit, Search
from patchpilot.server.web import i18n
from patchpilot.server.web.imports import (
    TEMPLATES,
    format_table,
    template_response,
    upload_report,
)
from patchpilot.server.web.uploads import Refused

router = APIRouter(tags=["imports"])


class ImportOut(BaseModel):
    """One import: its file, format, producer, scope, status (queued, running, done,
    failed, duplicate), progress (bytes read of ``total``) and, once settled, its summary
    (assets, findings new / reopened / fixed / unchanged, informational, skipped) or
    error; ``url``: where to follow it."""

    id: int
    file_name: str
    format: str | None
    producer: str | None
    scope: str | None
    status: str
    created_by: str | None
    created_at: datetime
    finished_at: datetime | None
    progress: int
    total: int | None
    summary: dict[str, Any] | None
    error: str | None
    url: str


class FormatOut(BaseModel):
    """A report format the importers read."""

    name: str
    producer: str
    title: str
    extensions: list[str]
    notes: str


def _out(row: ImportRow) -> dict[str, Any]:
    # SQLite gives naive datetimes: they are UTC, say so (RFC 3339).
    return {**row.to_dict(), "created_at": aware(row.created_at),
            "finished_at": aware(row.finished_at), "url": f"/api/imports/{row.id}"}


@router.post("/imports", status_code=202, response_model=ImportOut,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {
                     "type": "object", "required": ["file"],
                     "properties": {"file": {"type": "string", "format": "binary"},
                                    "format": {"type": "string", "maxLength": 50},
                                    "scope": {"type": "string", "maxLength": 64},
                                    "asset": {"type": "string", "maxLength": 300}}}}}}},
             responses={413: {"description": "the report is larger than "
                                             "PATCHPILOT_MAX_IMPORT_MB"},
                        422: {"description": "no importer recognises the file, or a "
                                             "format, scope or asset it cannot have"}})
async def upload_import(request: Request, who: Analyst, response: Response) -> dict[str, Any]:
    """Upload a scanner report and queue its import (analysts); 202 with the import, whose
    ``url`` (also ``Location``) shows its progress and then its summary."""
    try:
        row = await upload_report(request, who.name, i18n.translations("en"), csrf=False)
    except Refused as exc:
        detail = "; ".join(exc.problems)
        if exc.status_code == 413:
            detail += " (the import limit: PATCHPILOT_MAX_IMPORT_MB)"
        raise HTTPException(exc.status_code, detail) from exc
    response.headers["Location"] = f"/api/imports/{row.id}"
    return _out(row)


@router.get("/imports", response_model=list[ImportOut])
def imports_list(who: Viewer, engine: EngineDep, limit: Limit = 50) -> list[dict[str, Any]]:
    """The latest imports, newest first."""
    return [_out(r) for r in list_imports(engine, limit=limit)]


# Before /imports/{import_id}: "formats" and "templates" are not ids.
@router.get("/imports/formats", response_model=list[FormatOut])
def imports_formats(who: Viewer) -> list[dict[str, Any]]:
    """Every report format the importers read, in the registry's order (the ``format``
    field of an upload takes its ``name``)."""
    return format_table()


@router.get("/imports/templates/{name}", response_class=Response,
            responses={200: {"description": "the template",
                             "content": {kind.split(";")[0]: {}
                                         for kind in TEMPLATES.values()}},
                       404: {"description": "no such template"}})
def imports_template(name: Search, who: Viewer) -> Response:
    """A template of the generic findings format (``generic-findings.csv`` or
    ``generic-findings.json``; docs/generic-findings.md) for results no importer reads."""
    return template_response(name)


@router.get("/imports/{import_id}", response_model=ImportOut)
def import_status(import_id: DbId, who: Viewer, engine: EngineDep) -> dict[str, Any]:
    """One import: its status and progress; once settled, its summary or error."""
    return _out(get_import(engine, import_id))
