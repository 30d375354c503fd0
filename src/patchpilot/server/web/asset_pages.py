"""The dashboard's asset intake: a CMDB export (admins) and an SBOM or lock file
(analysts), uploaded from the browser.

Thin, as the other pages.  The CMDB form calls what ``patchpilot assets import`` and
``POST /api/assets/import`` call: :func:`patchpilot.assets.cmdb.parse_bytes`, then
:func:`patchpilot.assets.context.apply_records` (one transaction, audited there; a bad row
anywhere stores nothing).  The upload form reads the file as ``patchpilot scan file`` does
(:func:`patchpilot.inventory.transports.file.read_inventory_bytes`: the sources' own
detection) and stores it as ``POST /api/inventories`` does
(:func:`patchpilot.findings.ingest.ingest_inventory`, its match job queued in the same
transaction), then shows the asset.

The routes read the multipart body themselves, as it streams (:class:`_Form`), rather than
through ``File()`` parameters or ``request.form()``, so that the session and role are
checked before the body is read, the CSRF token before the file is, and an oversized
upload is refused at the limit (by its Content-Length before a byte is read; a chunked one
when the limit is passed), never spooled to disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from patchpilot.assets.cmdb import CmdbFormatError, parse_bytes
from patchpilot.assets.context import ApplyResult, apply_records
from patchpilot.audit import audit
from patchpilot.errors import PatchPilotError
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.findings.uploads import ReplacesScan
from patchpilot.inventory.sources.registry import SOURCES_BY_NAME
from patchpilot.inventory.transports.file import read_inventory_bytes
from patchpilot.server.api.cmdb import MAX_BODY as MAX_CMDB
from patchpilot.server.deps import EngineDep
from patchpilot.server.limits import FORM_OVERHEAD
from patchpilot.server.params import Search
from patchpilot.server.security import Role
from patchpilot.server.web import i18n
from patchpilot.server.web.pages import User, check_csrf, need, render
from patchpilot.server.web.session import WebUser

router = APIRouter(include_in_schema=False)

# The text fields of the forms (a CSRF token, an asset name of at most 300 characters, a
# distribution, a type, a checkbox): far below these.
_MAX_FIELDS = 20
_MAX_FIELD = 4 << 10


class _Refused(Exception):
    """An upload the page answers with its form and a message (not stored)."""

    def __init__(self, problems: list[str], status_code: int = 422) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.status_code = status_code


def _too_large(tr: Any, limit: int, name: str = "") -> _Refused:
    message = tr.gettext("The file is larger than %(mb)s MB.") % {"mb": limit >> 20}
    return _Refused([f"{name}: {message}" if name else message], 413)


class _Form:
    """A ``multipart/form-data`` body read as it streams (python-multipart's parser, fed
    chunk by chunk): its text fields, and its one file held in memory up to the limit.

    Starlette's ``request.form()`` would spool the file to a temporary file in full before
    the route sees a field: the CSRF token checked after a 300 MB upload was on disk.  Here
    the token is checked the moment its part has arrived, and a file part that comes before
    it is refused (403) before a byte of the file is kept; the browser sends the fields in
    the form's order and the token is the forms' first field.  A file over the limit stops
    the read at the limit (413).
    """

    def __init__(self, request: Request, limit: int, tr: Any, *, token_checked: bool) -> None:
        self.request = request
        self.limit = limit
        self.tr = tr
        self.token_checked = token_checked
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.data = bytearray()
        self._header = bytearray()
        self._value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._is_file = False
        self._text = bytearray()

    def callbacks(self) -> dict[str, Any]:
        """The parser's callbacks."""
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._part_end}

    def _part_begin(self) -> None:
        self._headers.clear()
        self._text.clear()
        self._name, self._is_file = "", False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._header).lower()] = bytes(self._value)
        self._header.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        self._is_file = b"filename" in options
        if self._is_file:
            if not self.token_checked:
                raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or wrong "
                                    "(the csrf field must come before the file)")
            if self.filename is not None:
                raise _Refused([self.tr.gettext("Choose a file.")], 400)  # a second file
            self.filename = options[b"filename"].decode("utf-8", "replace")
        elif len(self.fields) >= _MAX_FIELDS:
            raise _Refused([f"more than {_MAX_FIELDS} form fields"], 400)

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.data += data[start:end]
            if len(self.data) > self.limit:
                raise _too_large(self.tr, self.limit, self.display_name())
        else:
            self._text += data[start:end]
            if len(self._text) > _MAX_FIELD:
                raise _Refused([f"{self._name}: longer than {_MAX_FIELD} bytes"], 400)

    def _part_end(self) -> None:
        if self._is_file:
            return
        value = self._text.decode("utf-8", "replace")
        if self._name == "csrf" and not self.token_checked:
            check_csrf(self.request, value)  # 403 before any file part is read
            self.token_checked = True
        self.fields[self._name] = value.strip()

    def display_name(self) -> str:
        """The file's name as the browser gave it, never a path of the client's disk."""
        return Path((self.filename or "").replace("\\", "/")).name or "upload"


async def _read_upload(request: Request, limit: int, tr: Any
                       ) -> tuple[dict[str, str], str, bytes]:
    """The form's text fields, the uploaded file's name and content (at most ``limit``).

    The CSRF token is checked before the file is read: from an ``X-CSRF-Token`` header
    before a byte of the body, else from the form's ``csrf`` field, which must precede the
    file.  Raises _Refused for a body or file over the limit and for a form without a file;
    HTTPException 403 for a missing or wrong CSRF token.
    """
    declared = request.headers.get("content-length", "")
    header_token = request.headers.get("x-csrf-token")
    if header_token is not None:
        check_csrf(request, header_token)
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise _too_large(tr, limit)
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    form = _Form(request, limit, tr, token_checked=header_token is not None)
    if kind == b"multipart/form-data" and b"boundary" in params:
        parser = MultipartParser(params[b"boundary"], form.callbacks())  # type: ignore[arg-type]
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except MultipartParseError as exc:
            raise _Refused([f"the form cannot be read: {exc}"], 400) from exc
    else:
        # A form without a file (url-encoded): its fields only, bounded as a field is.
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_FIELDS * _MAX_FIELD:
                raise _Refused(["the form is too large"], 400)
        for key, value in parse_qsl(body.decode("utf-8", "replace"))[:_MAX_FIELDS]:
            form.fields[key] = value.strip()
    if not form.token_checked:
        check_csrf(request, form.fields.get("csrf"))  # a form without a file may lack one
    if not form.filename:
        raise _Refused([tr.gettext("Choose a file.")])
    return form.fields, form.display_name(), bytes(form.data)


def _upload_limit(request: Request) -> int:
    """The largest file the upload form takes: ``PATCHPILOT_MAX_UPLOAD_MB``.  The largest
    SBOM in ../shared/data (juice-shop's CycloneDX) is 3 MB; a container image's syft JSON
    can reach tens of MB."""
    return int(request.app.state.max_upload)


def _cmdb_limit(request: Request) -> int:
    """The largest CMDB export: the API's own limit, within the upload limit."""
    return min(MAX_CMDB, _upload_limit(request))


# --- CMDB import (admins) -----------------------------------------------------------

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
        fields, name, data = await _read_upload(request, _cmdb_limit(request), tr)
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
                   "types": sorted(SOURCES_BY_NAME), "max_mb": _upload_limit(request) >> 20},
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
        fields, name, data = await _read_upload(request, _upload_limit(request), tr)
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
    if not inventory.packages:
        # An uploaded Inventory JSON listing nothing (a lock file or SBOM from which no
        # package could be read is refused by the reader above): stored, it would replace
        # the asset's package list with nothing.
        raise _Refused([f"{name}: the inventory lists no package; it would mark every "
                        "finding of the asset fixed, so it is not stored"])
    try:
        # The ingest refuses a file's inventory over a scanned host's (ReplacesScan).
        result = ingest_inventory(engine, inventory, enqueue_match=True)
    except ReplacesScan as exc:
        raise _Refused([str(exc)]) from exc
    with engine.begin() as conn:
        audit(conn, user.principal.name, "inventory.upload", fields["asset"],
              {"asset_id": result.asset_id, "inventory_id": result.inventory_id,
               "file": name, "packages": len(inventory.packages), "job_id": result.job_id})
    return result.asset_id

