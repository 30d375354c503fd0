"""The overview: the estate's risk at a glance (``reports.overview``), its charts drawn by
plotly.js served from the plotly wheel (no CDN); for admins, the agents held for their
approval.  A user limited to part of the estate sees its figures only (and no held
agents: approving them is not theirs).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import plotly
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from patchpilot.assets.groups import narrow
from patchpilot.findings.agents import list_agents
from patchpilot.reports.overview import SEVERITIES, overview
from patchpilot.server.deps import EngineDep, scope_aware
from patchpilot.server.security import Role, reach
from patchpilot.server.web import i18n
from patchpilot.server.web.render import User, render

router = APIRouter(include_in_schema=False)


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js from the plotly wheel's package data: no CDN, works offline."""
    return FileResponse(Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
                        media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/overview")
@scope_aware
def overview_page(request: Request, user: User, engine: EngineDep) -> HTMLResponse:
    """The estate's risk at a glance (of the user's part of it); for admins of the whole
    estate, the agents held for their approval."""
    principal = user.principal
    with engine.connect() as conn:
        figures = overview(conn, asset_ids=narrow(None, reach(conn, principal)))
        held = (list_agents(conn, pending_only=True)
                if principal.may(Role.ADMIN) and not principal.scoped else [])
    tr = i18n.translations(user.language)
    charts = {
        "priority": {"labels": [k for k in ("P1", "P2", "P3", "P4") if k in figures.by_priority],
                     "values": [figures.by_priority[k] for k in ("P1", "P2", "P3", "P4")
                                if k in figures.by_priority]},
        "severity": {"keys": [s for s in SEVERITIES if s in figures.by_severity],
                     "labels": [tr.gettext(s) for s in SEVERITIES if s in figures.by_severity],
                     "values": [figures.by_severity[s] for s in SEVERITIES
                                if s in figures.by_severity]},
        "trend": {"weeks": [w["week"] for w in figures.trend],
                  "opened": [w["opened"] for w in figures.trend],
                  "fixed": [w["fixed"] for w in figures.trend],
                  "opened_label": tr.gettext("Opened"), "fixed_label": tr.gettext("Fixed")},
    }
    return render(request, "overview.html", user.language,
                  {"o": figures, "charts": orjson.dumps(charts).decode(), "held": held},
                  user)
