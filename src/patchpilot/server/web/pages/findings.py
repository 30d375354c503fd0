"""The findings list: filtered, sorted and paged as ``GET /api/findings``
(``findings.search``); a request from static/hx.js gets only the table, so the filters stay.
A user limited to part of the estate sees their assets' findings only
(``FindingFilter.reach``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from patchpilot.assets.groups import group_members
from patchpilot.findings.model import STATES
from patchpilot.findings.search import SORTS, FindingFilter, search_findings
from patchpilot.reports.overview import SEVERITIES
from patchpilot.server.deps import EngineDep, scope_aware
from patchpilot.server.params import MAX_DB_ID, Page, Search
from patchpilot.server.security import reach
from patchpilot.server.web.render import PAGE_SIZE, User, render

router = APIRouter(include_in_schema=False)


def _flag(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


@router.get("/findings")
@scope_aware  # narrowed to the user's assets: rows and total
def findings_page(request: Request, user: User, engine: EngineDep, state: Search = "open",
                  priority: Search = "", severity: Search = "", kev: Search = "",
                  fix: Search = "", group: Search = "", q: Search = "", asset: Search = "",
                  sort: Search = "priority", order: Search = "asc", page: Page = 1
                  ) -> HTMLResponse:
    """The findings list; an hx.js request gets only the table (the filters stay)."""
    if state not in ("any", *STATES):
        state = "open"
    if sort not in SORTS:
        sort = "priority"
    flt = FindingFilter(state=None if state == "any" else state,
                        priority=int(priority) if priority in ("1", "2", "3", "4") else None,
                        severity=severity or None, known_exploited=_flag(kev),
                        fix_available=_flag(fix), group=group or None,
                        asset_id=_asset_id(asset), text=q or None)
    with engine.connect() as conn:
        flt = replace(flt, reach=reach(conn, user.principal))
        found = search_findings(conn, flt, sort=sort, descending=order == "desc",
                                limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
                                members=group_members(conn, group) if group else None)
    total, rows = found.total, found.rows
    params = {"state": state, "priority": priority, "severity": severity, "kev": kev,
              "fix": fix, "group": group, "q": q, "asset": asset}
    context = {"rows": rows, "total": total, "exact": found.exact, "page": page,
               "pages": max(1, math.ceil(total / PAGE_SIZE)), "sort": sort, "order": order,
               "f": params, "query": lambda **kw: urlencode({**params, "sort": sort,
                                                             "order": order, **kw}),
               "states": STATES, "severities": SEVERITIES}
    name = "findings_table.html" if request.headers.get("hx-request") else "findings.html"
    return render(request, name, user.language, context, user)


def _asset_id(asset: str) -> int | None:
    """The findings list's ``asset`` filter: empty for none, else an asset id (400)."""
    if not asset:
        return None
    if not (asset.isascii() and asset.isdigit() and 0 < int(asset) <= MAX_DB_ID):
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            f"asset: {asset[:40]!r} is not an asset id")
    return int(asset)
