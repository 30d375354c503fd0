"""Finding events: one ``finding_events`` row per lifecycle change, in its transaction.

Playbooks, notifications and the API read events (``GET /api/events?after=ID``) instead of
polling the findings table.  Every writer adds its events in the transaction of the change
it describes, so a rolled-back change leaves no event, and an event never describes a
change that did not happen.  Writes are set-based: one statement per transaction for a
batch of findings (:func:`write_events`, or an ``INSERT … SELECT`` in SQL-side writers such
as ``scoring.apply.reprioritise``), never a round trip per finding.

Kinds (``detail`` is a JSON object, or NULL):

========================  ===========================================================
``new``                   a finding first reported (``producer``: who reported it;
                          detail ``{"state": …}`` when a triage decision covered it)
``reopened``              a fixed finding reported again (detail as for ``new``)
``fixed``                 no producer reports it any more (``producer``: the last ones)
``triaged``               a decision changed its state: detail ``{"state", "from"}``;
                          ``"state": "open"`` when the covering decision expired or was
                          withdrawn (``actor``: who decided; NULL for an expiry)
``priority_changed``      re-prioritisation moved it: detail ``{"from", "to"}`` (1–4)
``known_exploited_added`` KEV now lists its vulnerability
``sweep_finished``        an emergency sweep settled (``detail``: sweep id and counts)
``sla_breached``          its due date passed while it was open (no writer yet: the
                          periodic job that would notice does not exist; TODO)
``asset_stale``           an asset stopped reporting (no writer yet; TODO)
========================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import finding_events
from patchpilot.errors import InvalidInput

NEW = "new"
REOPENED = "reopened"
FIXED_EVENT = "fixed"
TRIAGED_EVENT = "triaged"
PRIORITY_CHANGED = "priority_changed"
KNOWN_EXPLOITED_ADDED = "known_exploited_added"
SWEEP_FINISHED = "sweep_finished"
SLA_BREACHED = "sla_breached"
ASSET_STALE = "asset_stale"
KINDS = (NEW, REOPENED, FIXED_EVENT, TRIAGED_EVENT, PRIORITY_CHANGED, KNOWN_EXPLOITED_ADDED,
         SWEEP_FINISHED, SLA_BREACHED, ASSET_STALE)


@dataclass(frozen=True, slots=True)
class Event:
    """One stored event."""

    id: int
    at: datetime
    kind: str
    finding_id: int | None
    asset_id: int | None
    producer: str | None
    actor: str | None
    detail: dict[str, Any] | None


def event_row(kind: str, at: datetime, *, finding_id: int | None = None,
              asset_id: int | None = None, producer: str | None = None,
              actor: str | None = None, detail: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """One row for :func:`write_events` (a kind of :data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r} (one of {', '.join(KINDS)})")
    return {"at": at, "finding_id": finding_id, "asset_id": asset_id, "kind": kind,
            "producer": producer, "actor": actor,
            "detail": orjson.dumps(detail).decode() if detail is not None else None}


def write_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert event rows (of :func:`event_row`) in one statement, in the caller's
    transaction."""
    if rows:
        conn.execute(insert(finding_events), list(rows))


def record_event(conn: Connection, kind: str, *, finding_id: int | None = None,
                 asset_id: int | None = None, producer: str | None = None,
                 actor: str | None = None, detail: dict[str, Any] | None = None,
                 at: datetime | None = None) -> None:
    """Record one stage-level event (``sweep_finished``, ``asset_stale``, …) in the
    caller's transaction.  Per-finding changes are written in bulk by their stage."""
    write_events(conn, [event_row(kind, at or now_utc(), finding_id=finding_id,
                                  asset_id=asset_id, producer=producer, actor=actor,
                                  detail=detail)])


def events_after(conn: Connection, after: int = 0, limit: int = 100,
                 kinds: Sequence[str] = ()) -> list[Event]:
    """The events with an id above ``after``, oldest first, at most ``limit`` (of
    ``kinds``, when given).  Page on with the last id returned."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InvalidInput(f"kind: unknown event kind {unknown[0]!r} "
                           f"(one of {', '.join(KINDS)})", field="kind")
    stmt = select(finding_events).where(finding_events.c.id > after)
    if kinds:
        stmt = stmt.where(finding_events.c.kind.in_(list(kinds)))
    rows = conn.execute(stmt.order_by(finding_events.c.id).limit(limit)).all()
    return [Event(r.id, aware(r.at), r.kind, r.finding_id, r.asset_id,  # type: ignore[arg-type]
                  r.producer, r.actor, orjson.loads(r.detail) if r.detail else None)
            for r in rows]
