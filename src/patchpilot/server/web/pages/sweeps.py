"""The sweeps list, newest first, and the form that starts a sweep for a vulnerability id
(analysts; ``scans.sweeps.start_sweep``).  A user limited to part of the estate sweeps
that part, and sees each sweep's counts of it only (as the API's).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from patchpilot.audit import audit
from patchpilot.scans.sweeps import SweepError, SweepQuery, list_sweeps
from patchpilot.scans.sweeps import start_sweep as start_sweep_stage
from patchpilot.server.deps import EngineDep, scope_aware
from patchpilot.server.params import Search, Text
from patchpilot.server.security import Role, reach
from patchpilot.server.web.render import User, check_csrf, need, render

router = APIRouter(include_in_schema=False)


@router.get("/sweeps")
@scope_aware
def sweeps_page(request: Request, user: User, engine: EngineDep,
                error: Search | None = None) -> HTMLResponse:
    """Sweeps, newest first, and the form that starts one (analysts)."""
    with engine.connect() as conn:
        found = list_sweeps(conn, limit=50, reach=reach(conn, user.principal))
    return render(request, "sweeps.html", user.language,
                  {"sweeps": [s.to_dict(results=False) for s in found], "error": error}, user)


@router.post("/sweeps")
@scope_aware
def start_sweep(request: Request, user: User, engine: EngineDep,
                vuln: Annotated[Text, Form()] = "", csrf: Annotated[str, Form()] = ""
                ) -> Response:
    """Start a sweep for a vulnerability id and show it live."""
    check_csrf(request, csrf)
    need(user, Role.ANALYST)
    query = SweepQuery(vuln.strip() or None, None, None, None)
    with engine.connect() as conn:
        seen = reach(conn, user.principal)
    try:
        sweep = start_sweep_stage(engine, query, created_by=user.principal.name,
                                  deadline_minutes=60, reach=seen)
    except SweepError as exc:
        return sweeps_page(request, user, engine, error=str(exc))
    with engine.begin() as conn:
        audit(conn, user.principal.name, "sweep.start", str(sweep.id),
              {"query": query.to_dict(), "initial": sweep.initial})
    return RedirectResponse(f"/sweeps/{sweep.id}", status.HTTP_303_SEE_OTHER)
