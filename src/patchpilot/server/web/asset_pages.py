"""The dashboard's asset intake: a CMDB export (admins) and an SBOM or lock file
(analysts), uploaded from the browser.

Thin, as the other pages.  The CMDB form calls what ``patchpilot assets import`` and
``POST /api/assets/import`` call: :func:`patchpilot.assets.cmdb.parse_bytes`, then
:func:`patchpilot.assets.context.apply_records` (one transaction, audited there; a bad row
anywhere stores nothing).  The upload form reads the file as ``patchpilot scan file`` does
(:func:`patchpilot.inventory.transports.file.read_inventory_bytes`: the sources' own
detection) and stores it as ``POST /api/inventories`` does
(:func:`patchpilot.findings.lifecycle.ingest_inventory`, its match job queued in the same
transaction), then shows the asset.

The routes read the multipart body themselves (``request.form()``) rather than through
``File()`` parameters, so that the role is checked and an oversized upload refused (by its
Content-Length) before the body is parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from patchpilot.assets.cmdb import CmdbFormatError, parse_bytes
from patchpilot.assets.context import ApplyResult, apply_records
from patchpilot.db.tables import assets, inventories
from patchpilot.errors import PatchPilotError
from patchpilot.findings.lifecycle import audit, ingest_inventory
from patchpilot.inventory.sources.registry import SOURCES_BY_NAME
from patchpilot.inventory.transports.file import read_inventory_bytes
from patchpilot.server.api.cmdb import MAX_BODY as MAX_CMDB
from patchpilot.server.deps import EngineDep
from patchpilot.server.security import Role
from patchpilot.server.web import i18n
from patchpilot.server.web.pages import User, check_csrf, need, render
from patchpilot.server.web.session import WebUser

router = APIRouter(include_in_schema=False)

# The largest SBOM in ../shared/data (juice-shop's CycloneDX) is 3 MB; a container image's
# syft JSON can reach tens of MB.  Far above those, far below what would hurt the server.
MAX_UPLOAD = 50 << 20
# What a multipart body adds around the file: boundaries, the other fields, headers.
_FORM_OVERHEAD = 64 << 10


class _Refused(Exception):
    """An upload the page answers with its form and a message (not stored)."""

    def __init__(self, problems: list[str], status_code: int = 422) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.status_code = status_code


async def _read_upload(request: Request, limit: int, tr: Any
                       ) -> tuple[dict[str, str], str, bytes]:
    """The form's text fields, the uploaded file's name and content (at most ``limit``).

    Raises _Refused for a body or file over the limit and for a form without a file;
    HTTPException 403 for a missing or wrong CSRF token.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _FORM_OVERHEAD:
        raise _Refused([tr.gettext("The file is larger than %(mb)s MB.") % {"mb": limit >> 20}],
                       413)
    form = await request.form(max_files=1, max_fields=20)
    try:
        check_csrf(request, str(form.get("csrf") or ""))
        fields = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise _Refused([tr.gettext("Choose a file.")])
        # The browser's name for it, never a path of the client's disk.
        name = Path(upload.filename.replace("\\", "/")).name or "upload"
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise _Refused([f"{name}: " + tr.gettext("The file is larger than %(mb)s MB.")
                            % {"mb": limit >> 20}], 413)
        return fields, name, data
    finally:
        await form.close()


# --- CMDB import (admins) -----------------------------------------------------------

def _import_page(request: Request, user: WebUser, *, result: ApplyResult | None = None,
                 name: str = "", problems: list[str] | None = None,
                 create_missing: bool = False, status_code: int = 200) -> HTMLResponse:
    return render(request, "assets_import.html", user.language,
                  {"result": result, "name": name, "problems": problems or [],
                   "create_missing": create_missing, "max_mb": MAX_CMDB >> 20},
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
        fields, name, data = await _read_upload(request, MAX_CMDB, tr)
        create_missing = fields.get("create_missing") == "yes"
        result = await run_in_threadpool(_apply_cmdb, engine, user, name, data,
                                         create_missing)
    except _Refused as exc:
        return _import_page(request, user, name=name, problems=exc.problems,
                            create_missing=create_missing, status_code=exc.status_code)
    return _import_page(request, user, result=result, name=name,
                        create_missing=create_missing)


def _apply_cmdb(engine: Engine, user: WebUser, name: str, data: bytes,
                create_missing: bool) -> ApplyResult:
    try:
        records = parse_bytes(data, name)
    except CmdbFormatError as exc:
        raise _Refused(exc.problems) from exc
    return apply_records(engine, records, source="cmdb-import", actor=user.principal.name,
                         create_missing=create_missing, label=name)


# --- SBOM and lock file upload (analysts) -------------------------------------------

def _upload_page(request: Request, user: WebUser, *, form: dict[str, str] | None = None,
                 problems: list[str] | None = None, status_code: int = 200) -> HTMLResponse:
    return render(request, "assets_upload.html", user.language,
                  {"form": form or {}, "problems": problems or [],
                   "types": sorted(SOURCES_BY_NAME), "max_mb": MAX_UPLOAD >> 20},
                  user, status_code=status_code)


@router.get("/assets/upload")
def upload_page(request: Request, user: User, asset: str = "") -> HTMLResponse:
    """The form that uploads an SBOM, a lock file or a package list for an asset."""
    need(user, Role.ANALYST)
    return _upload_page(request, user, form={"asset": asset.strip()})


@router.post("/assets/upload")
async def upload_inventory(request: Request, user: User, engine: EngineDep) -> Response:
    """Read the uploaded file as ``patchpilot scan file`` does, store it as the named
    asset's inventory with its match queued (as ``POST /api/inventories`` does), and show
    the asset."""
    need(user, Role.ANALYST)
    tr = i18n.translations(user.language)
    fields: dict[str, str] = {}
    try:
        fields, name, data = await _read_upload(request, MAX_UPLOAD, tr)
        if not fields.get("asset"):
            raise _Refused([tr.gettext("Name the asset the file describes.")])
        if len(fields["asset"]) > 300:  # assets.name's width
            raise _Refused([tr.gettext("The asset name is longer than 300 characters.")])
        asset_id = await run_in_threadpool(_ingest_upload, engine, user, name, data, fields)
    except _Refused as exc:
        return _upload_page(request, user, form=fields, problems=exc.problems,
                            status_code=exc.status_code)
    return RedirectResponse(f"/assets/{asset_id}", status.HTTP_303_SEE_OTHER)


def _ingest_upload(engine: Engine, user: WebUser, name: str, data: bytes,
                   fields: dict[str, str]) -> int:
    """Parse, store, queue the match, audit; the asset's id."""
    kind = fields.get("type") or None
    if kind is not None and kind not in SOURCES_BY_NAME:
        raise _Refused([f"type must be one of {', '.join(sorted(SOURCES_BY_NAME))}"])
    try:
        inventory = read_inventory_bytes(data, name, fields.get("distro") or None,
                                         hostname=fields["asset"], source_type=kind)
    except PatchPilotError as exc:  # InventoryFormatError, a bad distribution
        raise _Refused([str(exc)]) from exc
    if inventory.collector.name == "file":
        _refuse_replacing_a_scan(engine, fields["asset"])
    result = ingest_inventory(engine, inventory, enqueue_match=True)
    with engine.begin() as conn:
        audit(conn, user.principal.name, "inventory.upload", fields["asset"],
              {"asset_id": result.asset_id, "inventory_id": result.inventory_id,
               "file": name, "packages": len(inventory.packages), "job_id": result.job_id})
    return result.asset_id


def _refuse_replacing_a_scan(engine: Engine, name: str) -> None:
    """An inventory is an asset's whole package list: a lock file uploaded under the name
    of a host an agent or SSH scan reports would replace its packages and close its
    findings as fixed.  Refused, with the way out."""
    with engine.connect() as conn:
        collector = conn.execute(
            select(inventories.c.collector)
            .join(assets, assets.c.last_inventory_id == inventories.c.id)
            .where(assets.c.name == name).order_by(assets.c.id)).scalar()
    if collector is not None and collector != "file":
        raise _Refused([f"asset: {name!r} is scanned by its {collector} collector; a file "
                        "uploaded under its name would replace that inventory and close "
                        f"its findings. Name the application instead, e.g. '{name}-app'."])
