"""The CMDB import page (admins): a CMDB export uploaded from the browser.

The form calls what ``patchpilot assets import`` and ``POST /api/assets/import`` call:
:func:`patchpilot.assets.cmdb.parse_bytes`, then
:func:`patchpilot.assets.context.apply_records` (one transaction, audited there; a bad row
anywhere stores nothing).  The body is read as it streams (``web.uploads``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from patchpilot.assets.cmdb import CmdbFormatError, parse_bytes
from patchpilot.assets.context import ApplyResult
from patchpilot.assets.devices import apply_cmdb
from patchpilot.server.api.cmdb import MAX_BODY as MAX_CMDB
from patchpilot.server.deps import EngineDep
from patchpilot.server.security import Role
from patchpilot.server.web import i18n
from patchpilot.server.web.render import User, need, render
from patchpilot.server.web.session import WebUser
from patchpilot.server.web.uploads import Refused, read_upload, upload_limit

router = APIRouter(include_in_schema=False)


def _cmdb_limit(request: Request) -> int:
    """The largest CMDB export: the API's own limit, within the upload limit."""
    return min(MAX_CMDB, upload_limit(request))


def _import_page(request: Request, user: WebUser, *, result: ApplyResult | None = None,
                 name: str = "", problems: list[str] | None = None,
                 create_missing: bool = False, status_code: int = 200) -> HTMLResponse:
    return render(request, "assets_import.html", user.language,
                  {"result": result, "name": name, "problems": problems or [],
                   "create_missing": create_missing, "max_mb": _cmdb_limit(request) >> 20},
                  user, status_code=status_code)


@router.get("/assets/import")
def import_page(request: Request, user: User) -> HTMLResponse:
    """The CMDB import form (admins)."""
    need(user, Role.ADMIN)
    return _import_page(request, user)


@router.post("/assets/import")
async def import_cmdb(request: Request, user: User, engine: EngineDep) -> Response:
    """Apply an uploaded CMDB export (CSV, JSON or YAML, by its extension) as
    ``patchpilot assets import`` does; the answer lists what matched and what did not."""
    need(user, Role.ADMIN)
    tr = i18n.translations(user.language)
    create_missing = False
    name = ""
    try:
        fields, name, data = await read_upload(request, _cmdb_limit(request), tr)
        create_missing = fields.get("create_missing") == "yes"
        result = await run_in_threadpool(_apply_cmdb, engine, user, name, data,
                                         create_missing)
    except Refused as exc:
        return _import_page(request, user, name=name, problems=exc.problems,
                            create_missing=create_missing, status_code=exc.status_code)
    return _import_page(request, user, result=result, name=name,
                        create_missing=create_missing)


def _apply_cmdb(engine: Engine, user: WebUser, name: str, data: bytes,
                create_missing: bool) -> ApplyResult:
    try:
        records = parse_bytes(data, name)
    except CmdbFormatError as exc:
        raise Refused(exc.problems) from exc
    return apply_cmdb(engine, records, source="cmdb-import", actor=user.principal.name,
                      create_missing=create_missing, label=name)
