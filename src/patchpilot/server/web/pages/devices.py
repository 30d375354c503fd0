"""The network devices: every asset whose latest inventory describes a device (from
``show version``, discovery, SNMP, declared, the CMDB), identified or not; ``?unidentified=1``
keeps those the CPE table does not name, which a person must identify
(``assets.devices.list_devices``).  A user limited to part of the estate sees theirs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from patchpilot.assets.devices import list_devices
from patchpilot.server.deps import EngineDep, scope_aware
from patchpilot.server.params import Search
from patchpilot.server.security import reach
from patchpilot.server.web.render import User, render

router = APIRouter(include_in_schema=False)


@router.get("/devices")
@scope_aware  # the user's devices only
def devices_page(request: Request, user: User, engine: EngineDep,
                 unidentified: Search = "") -> HTMLResponse:
    """Every device with its vendor, model, OS, firmware and how it was identified."""
    only = unidentified in ("1", "yes", "true")
    with engine.connect() as conn:
        rows = list_devices(conn, unidentified=only, reach=reach(conn, user.principal))
    return render(request, "devices.html", user.language,
                  {"rows": rows, "unidentified": only}, user)
