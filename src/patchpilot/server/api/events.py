"""Finding events, oldest first, paged by id: what playbooks and integrations follow.

``GET /api/events?after=ID`` answers the events with an id above ``ID`` and ``next``, the
cursor to ask with next time (the last id answered; ``after`` itself when there is
nothing new, so a poller always asks again with ``next``).  Events are written in the
transaction of the change they describe (``findings/events.py``), so an id never
appears after a later one has been read: paging by id misses nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from fastapi import APIRouter, Query
from pydantic import BaseModel

from patchpilot.findings.events import events_after
from patchpilot.server.deps import EngineDep, Viewer, scope_aware
from patchpilot.server.params import MAX_DB_ID, DbId, Limit
from patchpilot.server.security import reach

router = APIRouter(tags=["events"])

# The id after which to answer: 0 (from the start) or any event id.
Cursor = Annotated[int, Ge(0), Le(MAX_DB_ID)]
# findings.events.KINDS, spelt out so that the OpenAPI schema lists them (a test checks
# that the two agree).
EventKind = Literal["new", "reopened", "fixed", "triaged", "priority_changed",
                    "known_exploited_added", "installations_changed", "sweep_finished",
                    "sla_breached", "asset_stale", "import_finished", "sla_due_soon",
                    "epss_crossed", "plan_verified", "hook_received", "scheduled",
                    "jvn_alert"]


class EventOut(BaseModel):
    """One event: what changed (``kind``), on which finding and asset, by whom."""

    id: int
    at: datetime
    kind: str
    finding_id: int | None
    asset_id: int | None
    producer: str | None
    actor: str | None
    detail: dict[str, Any] | None


class EventPage(BaseModel):
    """A page of events and the cursor to ask for the next one with (``after=next``)."""

    events: list[EventOut]
    next: int


@router.get("/events", response_model=EventPage)
@scope_aware  # a scoped caller gets their assets' events only (none without an asset)
def list_events(who: Viewer, engine: EngineDep, after: Cursor = 0, limit: Limit = 100,
                kind: Annotated[list[EventKind] | None, Query()] = None,
                asset_id: DbId | None = None) -> dict[str, Any]:
    """Events with an id above ``after``, oldest first (of the ``kind``s given, of
    ``asset_id`` when given); for a user limited to part of the estate, only those of
    their assets."""
    with engine.connect() as conn:
        found = events_after(conn, after, limit, kind or (), asset_id=asset_id,
                             reach=reach(conn, who))
    return {"events": [{"id": e.id, "at": e.at, "kind": e.kind, "finding_id": e.finding_id,
                        "asset_id": e.asset_id, "producer": e.producer, "actor": e.actor,
                        "detail": e.detail} for e in found],
            "next": found[-1].id if found else after}
