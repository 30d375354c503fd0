"""One asset: its identity, business context, open findings, the warnings of its latest
inventory, its coverage per ecosystem, the language packages its OS installed, its
inventory history, what scanners' reports said about it besides vulnerabilities, and for
a Windows host its product, build, KBs and programs with an end-of-life banner, and for a
network device its vendor, model, firmware and services -- or, unidentified, what was seen
(``assets.queries``, ``assets.windows``, ``assets.devices``, ``findings.search``,
``findings.coverage``).  An asset outside a scoped user's part of the estate is the 404
page an unknown id gets.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from patchpilot.assets.devices import latest_device
from patchpilot.assets.queries import (
    asset_context_row,
    asset_row,
    inventory_history,
    latest_inventory_warnings,
    match_pending,
    owned_packages,
    scanner_facts,
)
from patchpilot.assets.windows import end_of_life, latest_windows
from patchpilot.findings.coverage import asset_coverage
from patchpilot.findings.search import FindingFilter, search_findings
from patchpilot.server.deps import EngineDep, scope_aware
from patchpilot.server.params import DbId
from patchpilot.server.security import reach
from patchpilot.server.web.render import User, render

router = APIRouter(include_in_schema=False)


@router.get("/assets/{asset_id}")
@scope_aware  # an asset outside the user's part is the 404 page
def asset_page(request: Request, asset_id: DbId, user: User, engine: EngineDep
               ) -> HTMLResponse:
    """One asset: identity, context, inventory history and open findings."""
    with engine.connect() as conn:
        row = asset_row(conn, asset_id, reach(conn, user.principal))  # NotFound: 404 page
        context = asset_context_row(conn, asset_id)
        history = inventory_history(conn, asset_id)
        inventory_warnings = latest_inventory_warnings(conn, asset_id)
        found = search_findings(conn, FindingFilter(asset_id=asset_id), limit=200)
        # An inventory stored but not matched yet (an upload a moment ago): its findings
        # are still to come, which the page says rather than showing the old ones as all.
        matching = match_pending(conn, asset_id)
        # Its ecosystems no advisory covers: "no findings" there is not "clean".
        coverage = asset_coverage(conn, asset_id)
        # Language packages an OS package installed: judged through their owner.
        owned = owned_packages(conn, asset_id)
        # Imported reports' informational items (open ports, OS, services): not findings.
        facts = scanner_facts(conn, asset_id)
        # A Windows host: product, build, KBs, programs from its latest inventory.
        windows = latest_windows(conn, asset_id)
        # Past its end of life: what the matcher says of the product.
        eol = end_of_life(conn, windows.info) if windows else ()
        # A network device: vendor, model, firmware, services; what was seen if unidentified.
        device = latest_device(conn, asset_id)
    return render(request, "asset.html", user.language,
                  {"a": row, "ctx": context, "history": history, "rows": found.rows,
                   "total": found.total, "matching": matching,
                   "inventory_warnings": inventory_warnings, "coverage": coverage,
                   "owned": owned, "facts": facts, "windows": windows,
                   "end_of_life": eol, "device": device}, user)
