"""One sweep: its counts, live from the event stream (``server.streams``, the API's, the
session authorising it), and every asset's result -- of the assets a user limited to part
of the estate may see only.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from patchpilot.scans.sweeps import close_sweeps, get_sweep
from patchpilot.server.deps import EngineDep, scope_aware
from patchpilot.server.params import DbId
from patchpilot.server.security import reach
from patchpilot.server.streams import sweep_event_stream
from patchpilot.server.web.render import User, render

router = APIRouter(include_in_schema=False)


@router.get("/sweeps/{sweep_id}")
@scope_aware
def sweep_page(request: Request, sweep_id: DbId, user: User, engine: EngineDep
               ) -> HTMLResponse:
    """One sweep: its counts (live, from the event stream) and every asset's result."""
    close_sweeps(engine, sweep_id=sweep_id)
    with engine.connect() as conn:
        sweep = get_sweep(conn, sweep_id, reach=reach(conn, user.principal))
    if sweep is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no sweep {sweep_id}")
    return render(request, "sweep.html", user.language, {"s": sweep.to_dict()}, user)


@router.get("/sweeps/{sweep_id}/events")
@scope_aware
async def sweep_events_page(request: Request, sweep_id: DbId, user: User, engine: EngineDep
                            ) -> Response:
    """The API's event stream, for a logged-in browser: EventSource cannot send a bearer
    header, so the page's session authorises it instead (same stream, same code)."""
    return await sweep_event_stream(engine, sweep_id, request, user.principal)
