"""The patch plan (``scans.plan``): one row per upgrade, most risk removed first; its CSV
and Ansible downloads for a logged-in browser (``server.downloads``, as the API's).
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from patchpilot.assets.queries import group_names
from patchpilot.scans.plan import build_plan
from patchpilot.server.deps import EngineDep
from patchpilot.server.downloads import plan_ansible_response, plan_csv_response
from patchpilot.server.params import Name200
from patchpilot.server.web.render import User, render

router = APIRouter(include_in_schema=False)


@router.get("/plan")
def plan_page(request: Request, user: User, engine: EngineDep, group: Name200 = ""
              ) -> HTMLResponse:
    """The patch plan (``scans.plan``): one row per upgrade, most risk removed first."""
    with engine.connect() as conn:
        plan = build_plan(conn, group=group or None)
        groups = group_names(conn)
    return render(request, "plan.html", user.language,
                  {"plan": plan, "group": group, "groups": groups,
                   "query": urlencode({"group": group}) if group else ""}, user)


@router.get("/plan.csv")
def plan_csv_page(user: User, engine: EngineDep, group: Name200 = "") -> Response:
    """The plan as CSV for a logged-in browser (a link cannot send a bearer header): the
    same download as ``GET /api/plan.csv``."""
    with engine.connect() as conn:
        return plan_csv_response(build_plan(conn, group=group or None))


@router.get("/plan/ansible")
def plan_ansible_page(user: User, engine: EngineDep, group: Name200 = "") -> Response:
    """The plan's Ansible export (a zip: playbook and inventory) for a logged-in browser:
    the same download as ``GET /api/plan/ansible``."""
    with engine.connect() as conn:
        return plan_ansible_response(build_plan(conn, group=group or None))
