"""Scanner report uploads, shared by ``POST /api/imports`` and the imports page: the form
read and spooled to disk as it streams, its fields checked, the import queued
(:func:`patchpilot.importers.jobs.queue_import`); the formats table as the form lists it;
the generic format's templates as downloads.

The upload is bounded by ``PATCHPILOT_MAX_IMPORT_MB`` while it arrives (413 naming the
limit), spooled under the server's home (``imports/``, 0700) and recognised before the
answer -- a file no importer reads is a 422 naming the formats tried, and its spooled copy
is removed -- so a job never starts on a file that cannot be read.
"""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from patchpilot.importers import registry
from patchpilot.importers.apply import spool_dir
from patchpilot.importers.jobs import ImportRow, queue_import
from patchpilot.server.downloads import content_disposition
from patchpilot.server.web.uploads import Refused, spool_upload

# The generic findings format's templates (docs/generic-findings.md), by file name.
TEMPLATES = {"generic-findings.csv": "text/csv; charset=utf-8",
             "generic-findings.json": "application/json"}

# A scope becomes part of the producer, ``importer:<scanner>:<scope>`` (100 characters):
# a name without spaces or colons, short enough for any scanner's name in front.
_SCOPE = re.compile(r"[^\s:\x00-\x1f\x7f]{1,64}")
_MAX_ASSET = 300  # assets.name


def import_limit(request: Request) -> int:
    """The largest report an upload takes, in bytes: ``PATCHPILOT_MAX_IMPORT_MB``."""
    return int(request.app.state.max_import)


def format_table() -> list[dict[str, Any]]:
    """Every registry format as the API and the form list it, in the registry's order."""
    return [{"name": f.name, "producer": f.producer, "title": f.title,
             "extensions": list(f.extensions), "notes": f.notes} for f in registry.FORMATS]


def check_fields(fields: dict[str, str], tr: Any) -> tuple[str | None, str | None, str | None]:
    """The form's format, scope and asset (None when empty); Refused (422) naming the
    field that cannot be stored.  An unknown format is the registry's own refusal."""
    fmt = fields.get("format") or None
    scope = fields.get("scope") or None
    asset = fields.get("asset") or None
    problems = []
    if fmt is not None:
        try:
            registry.by_name(fmt)
        except registry.UnknownFormat as exc:
            problems.append(str(exc))
    if scope is not None and not _SCOPE.fullmatch(scope):
        problems.append(tr.gettext("The scope: at most 64 characters, no spaces or colons."))
    if asset is not None and (len(asset) > _MAX_ASSET or "\x00" in asset):
        problems.append(tr.gettext("The asset name is longer than 300 characters."))
    if problems:
        raise Refused(problems)
    return fmt, scope, asset


async def upload_report(request: Request, actor: str, tr: Any, *, csrf: bool) -> ImportRow:
    """Read the upload (spooled to disk), check its fields, queue its import: the queued
    ``imports`` row.  Refused for a form or file the server will not take (413 over the
    limit); the registry's ``UnknownFormat`` (422) for a file no importer recognises.
    ``csrf=False`` for the API (a bearer token, no session)."""
    folder = spool_dir(request.app.state.home)
    fields, name, spooled = await spool_upload(request, import_limit(request), tr, folder,
                                               csrf=csrf)
    try:
        fmt, scope, asset = check_fields(fields, tr)
    except Refused:
        spooled.unlink(missing_ok=True)
        raise
    # Recognising the file reads its head, recording it writes a row: off the event loop.
    # queue_import removes the spooled file when it refuses it.
    return await run_in_threadpool(queue_import, request.app.state.engine, spooled, name,
                                   format=fmt, scope=scope, asset=asset, actor=actor)


def template_response(name: str) -> Response:
    """A generic findings template as a download; 404 for any other name."""
    if name not in TEMPLATES:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no template {name!r}; the templates are: {', '.join(TEMPLATES)}")
    content = (files("patchpilot.importers") / "templates" / name).read_bytes()
    return Response(content, media_type=TEMPLATES[name],
                    headers={"Content-Disposition": content_disposition(name)})
