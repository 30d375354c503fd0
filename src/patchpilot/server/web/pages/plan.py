"""The patch plan (``scans.plan_store``): a page of items by risk removed, each with its
host counts per priority and window and its first hosts; the rest of an item's hosts on
demand (hx.js); filters by group, service, priority, KEV and reboot.  Its CSV, Ansible and
Windows (KBs per host as CSV and PowerShell) downloads for a logged-in browser
(``server.downloads``, as the API's).
"""

from __future__ import annotations

import math
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Connection

from patchpilot.assets.queries import group_names, service_names
from patchpilot.reports.windows_updates import CSV_NAME, SCRIPT_NAME
from patchpilot.scans import plan_store
from patchpilot.scans.plan_store import PlanQuery, PlanStatus
from patchpilot.server.deps import EngineDep, scope_aware
from patchpilot.server.downloads import (
    plan_ansible_response,
    plan_csv_response,
    plan_windows_response,
)
from patchpilot.server.params import Name200, Page, Search
from patchpilot.server.security import Principal, reach
from patchpilot.server.web.render import User, render
from patchpilot.server.web.session import WebUser

router = APIRouter(include_in_schema=False)

# Items per page, and hosts per "more hosts" request.
ITEMS_PER_PAGE = 20
HOSTS_PER_PAGE = 100


def _filters(engine: EngineDep, user: WebUser, group: str, service: str, priority: str,
             kev: str, reboot: str) -> tuple[PlanStatus, PlanQuery, dict[str, str]]:
    """The plan, the query of the filters (of the user's part of the estate) and the
    filters given."""
    state = plan_store.ensure_current(engine)
    with engine.connect() as conn:
        query = plan_store.query_for(
            conn, group=group or None, service=service or None,
            priority=int(priority) if priority in ("1", "2", "3", "4") else None,
            kev=kev == "yes", reboot={"yes": True, "no": False}.get(reboot),
            reach=reach(conn, user.principal))
    params = {"group": group, "service": service, "priority": priority, "kev": kev,
              "reboot": reboot}
    return state, query, {k: v for k, v in params.items() if v}


def filter_choices(conn: Connection, principal: Principal) -> tuple[list[str], list[str]]:
    """The groups and services a filter offers: every one, or for a user limited to
    part of the estate, the groups and services of that part (others' names are not
    theirs to see)."""
    if not principal.scoped:
        return group_names(conn), service_names(conn)
    return ([name for kind, name in principal.scopes if kind == "group"],
            [name for kind, name in principal.scopes if kind == "service"])


@router.get("/plan")
@scope_aware
def plan_page(request: Request, user: User, engine: EngineDep, group: Name200 = "",
              service: Name200 = "", priority: Search = "", kev: Search = "",
              reboot: Search = "", page: Page = 1, upage: Page = 1) -> HTMLResponse:
    """A page of the patch plan and of what no fix removes yet."""
    state, query, params = _filters(engine, user, group, service, priority, kev, reboot)
    with engine.connect() as conn:
        pages = plan_store.read_pages(conn, state, query, {
            plan_store.FIX: (str((page - 1) * ITEMS_PER_PAGE), ITEMS_PER_PAGE,
                             plan_store.FIRST_HOSTS),
            plan_store.UNFIXED: (str((upage - 1) * ITEMS_PER_PAGE), ITEMS_PER_PAGE, 0)})
        items, unfixed = pages[plan_store.FIX], pages[plan_store.UNFIXED]
        groups, services = filter_choices(conn, user.principal)
    query_text = urlencode(params)

    def link(**kw: int) -> str:
        return "/plan?" + urlencode({**params, "page": page, "upage": upage, **kw})

    return render(request, "plan.html", user.language, {
        "state": state, "items": items, "unfixed": unfixed, "page": page, "upage": upage,
        "pages": max(1, math.ceil(items.total / ITEMS_PER_PAGE)),
        "upages": max(1, math.ceil(unfixed.total / ITEMS_PER_PAGE)),
        "offset": (page - 1) * ITEMS_PER_PAGE, "f": params, "groups": groups,
        "services": services, "query": query_text, "link": link}, user)


@router.get("/plan/items/{key}/hosts")
@scope_aware
def plan_hosts_fragment(request: Request, user: User, engine: EngineDep, key: Search,
                        group: Name200 = "", service: Name200 = "", priority: Search = "",
                        kev: Search = "", reboot: Search = "", cursor: Search = ""
                        ) -> HTMLResponse:
    """An item's hosts, a hundred at a time (an hx.js fragment: rows and a "more" button)."""
    state, query, params = _filters(engine, user, group, service, priority, kev, reboot)
    with engine.connect() as conn:
        hosts = plan_store.read_hosts(conn, state, key, query, limit=HOSTS_PER_PAGE,
                                      cursor=cursor if cursor.isdigit() else None)
    more = ("/plan/items/" + key + "/hosts?" + urlencode({**params, "cursor": hosts.next_cursor})
            if hosts.next_cursor else None)
    return render(request, "plan_hosts.html", user.language,
                  {"hosts": hosts, "more": more, "key": key}, user)


@router.get("/plan.csv")
@scope_aware
def plan_csv_page(user: User, engine: EngineDep, group: Name200 = "", service: Name200 = "",
                  priority: Search = "", kev: Search = "", reboot: Search = "") -> Response:
    """The plan as CSV for a logged-in browser (a link cannot send a bearer header): the
    same download as ``GET /api/plan.csv``, streamed."""
    return plan_csv_response(engine, _filters(engine, user, group, service, priority, kev,
                                              reboot)[1])


@router.get("/plan/ansible")
@scope_aware
def plan_ansible_page(user: User, engine: EngineDep, group: Name200 = "",
                      service: Name200 = "", priority: Search = "", kev: Search = "",
                      reboot: Search = "") -> Response:
    """The plan's Ansible export (a zip: playbook and inventory) for a logged-in browser:
    the same download as ``GET /api/plan/ansible``."""
    return plan_ansible_response(engine, _filters(engine, user, group, service, priority, kev,
                                                  reboot)[1])


@router.get("/plan/windows-kbs.csv")
@scope_aware
def plan_windows_kbs_page(user: User, engine: EngineDep, group: Name200 = "",
                          service: Name200 = "", priority: Search = "", kev: Search = "",
                          reboot: Search = "") -> Response:
    """The Windows hosts' KBs as CSV: the same download as ``GET /api/plan/windows-kbs.csv``."""
    return plan_windows_response(engine, _filters(engine, user, group, service, priority, kev,
                                                  reboot)[1], CSV_NAME)


@router.get("/plan/windows-updates.ps1")
@scope_aware
def plan_windows_script_page(user: User, engine: EngineDep, group: Name200 = "",
                             service: Name200 = "", priority: Search = "", kev: Search = "",
                             reboot: Search = "") -> Response:
    """The PowerShell script installing the Windows hosts' KBs: the same download as
    ``GET /api/plan/windows-updates.ps1``."""
    return plan_windows_response(engine, _filters(engine, user, group, service, priority, kev,
                                                  reboot)[1], SCRIPT_NAME)
