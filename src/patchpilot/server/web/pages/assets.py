"""The assets list: open findings and last scan per asset, filtered by name, group,
criticality, OS, tag and last scan (``assets.queries.filter_assets``).  A user limited to
part of the estate sees their assets only, and is offered the groups and tags of those.
"""

from __future__ import annotations

import math
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from patchpilot.assets.queries import (
    DEFAULT_SCAN_DAYS,
    SCAN_FILTERS,
    AssetFilter,
    filter_assets,
    group_names,
    known_tags,
)
from patchpilot.clock import now_utc
from patchpilot.server.deps import EngineDep, scope_aware
from patchpilot.server.params import Page, Search
from patchpilot.server.security import reach
from patchpilot.server.web.render import PAGE_SIZE, User, render

router = APIRouter(include_in_schema=False)


@router.get("/assets")
@scope_aware  # the user's assets, groups and tags only
def assets_page(request: Request, user: User, engine: EngineDep, q: Search = "",
                group: Search = "", tier: Search = "", os: Search = "", tag: Search = "",
                scan: Search = "", days: Search = "", page: Page = 1) -> HTMLResponse:
    """Assets with their open findings and last scan, filtered by name, group,
    criticality, OS, tag and last scan (``assets.queries``)."""
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    days = (days if days.isascii() and days.isdigit() and 0 < int(days) <= 36500
            else str(DEFAULT_SCAN_DAYS))
    f = {"q": q.strip(), "group": group, "tier": tier, "os": os.strip(), "tag": tag.strip(),
         "scan": scan if scan in SCAN_FILTERS else "", "days": days}
    with engine.connect() as conn:
        seen = reach(conn, user.principal)
        flt = AssetFilter(q=f["q"], group=group, tier=tier, os=f["os"], tag=f["tag"],
                          scan=f["scan"], days=int(days), reach=seen)
        total, rows = filter_assets(conn, flt, now_utc(), limit=PAGE_SIZE,
                                    offset=(page - 1) * PAGE_SIZE)
        groups = group_names(conn, seen)
        tags = known_tags(conn, reach=seen)
    params = {k: v for k, v in f.items() if v and (k != "days" or f["scan"])}
    return render(request, "assets.html", user.language,
                  {"rows": rows, "total": total, "page": page, "f": f,
                   "query": lambda **kw: urlencode({**params, **kw}),
                   "groups": groups, "tags": tags, "scan_filters": SCAN_FILTERS,
                   "pages": max(1, math.ceil(total / PAGE_SIZE))}, user)
