"""The upload page (analysts): an SBOM, a lock file, a package list or a Windows host's
saved ``systeminfo`` / ``wmic qfe`` / ``Get-HotFix`` output uploaded from the browser as
an asset's inventory.  A Windows file is told by its content and names its own host
(:mod:`patchpilot.inventory.windows.files`): the asset name may then be left empty.

The file is read as ``patchpilot scan file`` reads it
(:func:`patchpilot.inventory.transports.file.read_inventory_bytes`: the sources' own
detection) and stored as ``POST /api/inventories`` stores it
(:func:`patchpilot.findings.ingest.ingest_inventory`, its match job queued in the same
transaction; a file's inventory never replaces a scanned host's), then the asset is
shown.  The body is read as it streams (``web.uploads``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from patchpilot.audit import audit
from patchpilot.errors import PatchPilotError
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.findings.uploads import ReplacesScan
from patchpilot.inventory.model import Inventory
from patchpilot.inventory.sources.registry import SOURCES_BY_NAME
from patchpilot.inventory.transports.file import read_inventory_bytes
from patchpilot.inventory.windows.files import is_windows_file, windows_inventory
from patchpilot.server.deps import EngineDep
from patchpilot.server.params import Search
from patchpilot.server.security import Role
from patchpilot.server.web import i18n
from patchpilot.server.web.render import User, need, render
from patchpilot.server.web.session import WebUser
from patchpilot.server.web.uploads import Refused, read_upload, upload_limit

router = APIRouter(include_in_schema=False)


def _upload_page(request: Request, user: WebUser, *, form: dict[str, str] | None = None,
                 problems: list[str] | None = None, status_code: int = 200) -> HTMLResponse:
    return render(request, "assets_upload.html", user.language,
                  {"form": form or {}, "problems": problems or [],
                   "types": sorted(SOURCES_BY_NAME), "max_mb": upload_limit(request) >> 20},
                  user, status_code=status_code)


@router.get("/assets/upload")
def upload_page(request: Request, user: User, asset: Search = "") -> HTMLResponse:
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
        fields, name, data = await read_upload(request, upload_limit(request), tr)
        if not fields.get("asset") and not is_windows_file(data):
            raise Refused([tr.gettext("Name the asset the file describes.")])
        if len(fields.get("asset", "")) > 300:  # assets.name's width
            raise Refused([tr.gettext("The asset name is longer than 300 characters.")])
        asset_id = await run_in_threadpool(_ingest_upload, engine, user, name, data, fields)
    except Refused as exc:
        return _upload_page(request, user, form=fields, problems=exc.problems,
                            status_code=exc.status_code)
    return RedirectResponse(f"/assets/{asset_id}", status.HTTP_303_SEE_OTHER)


def _ingest_upload(engine: Engine, user: WebUser, name: str, data: bytes,
                   fields: dict[str, str]) -> int:
    """Parse, store, queue the match, audit; the asset's id."""
    kind = fields.get("type") or None
    if kind is not None and kind not in SOURCES_BY_NAME:
        raise Refused([f"type must be one of {', '.join(sorted(SOURCES_BY_NAME))}"])
    try:
        inventory = _read(data, name, fields, kind)
    except PatchPilotError as exc:  # InventoryFormatError, a bad distribution
        raise Refused([str(exc)]) from exc
    if not inventory.packages and inventory.windows is None:
        # An uploaded Inventory JSON listing nothing (a lock file or SBOM from which no
        # package could be read is refused by the reader above): stored, it would replace
        # the asset's package list with nothing.
        raise Refused([f"{name}: the inventory lists no package; it would mark every "
                        "finding of the asset fixed, so it is not stored"])
    asset = inventory.asset.hostname or fields["asset"]
    try:
        # The ingest refuses a file's inventory over a scanned host's (ReplacesScan).
        result = ingest_inventory(engine, inventory, enqueue_match=True)
    except ReplacesScan as exc:
        raise Refused([str(exc)]) from exc
    with engine.begin() as conn:
        audit(conn, user.principal.name, "inventory.upload", asset,
              {"asset_id": result.asset_id, "inventory_id": result.inventory_id,
               "file": name, "packages": len(inventory.packages), "job_id": result.job_id,
               **({"kbs": len(inventory.windows.kbs)} if inventory.windows else {})})
    return result.asset_id


def _read(data: bytes, name: str, fields: dict[str, str], kind: str | None) -> Inventory:
    """The uploaded file's Inventory: a Windows file's (its host the asset; a name typed
    in the form must agree), else as ``patchpilot scan file`` reads the others."""
    if kind is None and is_windows_file(data):
        inventory = windows_inventory([(data, name)], fields.get("asset") or None)
        if not inventory.asset.hostname:
            raise Refused([f"{name}: the file names no host (a QFE list without its CSName "
                           "column): name the asset"])
        return inventory
    return read_inventory_bytes(data, name, fields.get("distro") or None,
                                hostname=fields["asset"], source_type=kind)
