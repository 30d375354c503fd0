"""The imports page: a third-party scanner's report uploaded from the browser (analysts),
the imports running now with their progress, and the history of imports (everyone).

The upload is what ``POST /api/imports`` does (``web.imports.upload_report``: spooled
as it streams, recognised at once, its import queued as a job); the page then shows it in
the history, whose box polls itself with hx.js (``/imports/history``) while an import is
queued or running -- no inline script, which the CSP forbids.  The generic format's
templates download from here too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from patchpilot.errors import InvalidInput
from patchpilot.importers.apply import QUEUED, RUNNING
from patchpilot.importers.jobs import list_imports
from patchpilot.server.deps import EngineDep
from patchpilot.server.params import Search
from patchpilot.server.security import Role
from patchpilot.server.web import i18n
from patchpilot.server.web.imports import (
    TEMPLATES,
    format_table,
    import_limit,
    template_response,
    upload_report,
)
from patchpilot.server.web.render import User, need, render
from patchpilot.server.web.session import WebUser
from patchpilot.server.web.uploads import Refused

router = APIRouter(include_in_schema=False)

HISTORY = 50  # imports the history shows


def _history(engine: Engine) -> dict[str, Any]:
    rows = list_imports(engine, limit=HISTORY)
    return {"imports": rows, "polling": any(r.status in (QUEUED, RUNNING) for r in rows)}


def _page(request: Request, user: WebUser, engine: Engine, *,
          form: dict[str, str] | None = None, problems: list[str] | None = None,
          status_code: int = 200) -> HTMLResponse:
    return render(request, "imports.html", user.language,
                  {"form": form or {}, "problems": problems or [], "formats": format_table(),
                   "templates": sorted(TEMPLATES), "max_mb": import_limit(request) >> 20,
                   **_history(engine)}, user, status_code=status_code)


@router.get("/imports")
def imports_page(request: Request, user: User, engine: EngineDep) -> HTMLResponse:
    """The upload form (analysts), the running imports and the history."""
    return _page(request, user, engine)


@router.post("/imports")
async def upload_import(request: Request, user: User, engine: EngineDep) -> Response:
    """Spool the report, recognise it and queue its import (as ``POST /api/imports``),
    then show the imports page, where it runs."""
    need(user, Role.ANALYST)
    tr = i18n.translations(user.language)
    try:
        await upload_report(request, user.principal.name, tr, csrf=True)
    except Refused as exc:
        return _page(request, user, engine, problems=exc.problems,
                     status_code=exc.status_code)
    except InvalidInput as exc:  # no importer recognises the file; an unknown format
        return _page(request, user, engine, problems=[str(exc)], status_code=422)
    return RedirectResponse("/imports", status.HTTP_303_SEE_OTHER)


@router.get("/imports/history")
def imports_history(request: Request, user: User, engine: EngineDep) -> HTMLResponse:
    """The history box alone (what the page's hx.js polling swaps in)."""
    return render(request, "imports_history.html", user.language, _history(engine), user)


@router.get("/imports/templates/{name}")
def imports_template(name: Search, user: User) -> Response:
    """A generic findings template (CSV or JSON) as a download."""
    return template_response(name)
