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
``installations_changed`` an open (or triaged) finding's affected copies changed while
                          some remain: detail ``{"fixed": [[location, version], …],
                          "added": [[location, version], …]}`` (one of several pips
                          upgraded leaves the finding open; ``fixed`` comes when none is
                          left)
``sweep_finished``        an emergency sweep settled: ``asset_id`` NULL, detail
                          ``{"sweep_id", "vulns", "counts"}`` (counts per status)
``sla_breached``          its due date passed while it was open: detail ``{"priority"}``
                          (:func:`record_sla_breaches`, run by ``pipeline.upkeep``: so
                          within minutes of the due date, not at it)
``asset_stale``           an asset was not scanned within its group's schedule (the
                          overview's "not scanned on schedule"): ``finding_id`` NULL
                          (:func:`record_stale_assets`, run by ``pipeline.upkeep``)
``import_finished``       a scanner report was imported: ``finding_id`` and
                          ``asset_id`` NULL, ``producer`` the importer; ``detail``
                          the import's id, file, format and counts (``importers``)
``sla_due_soon``          an open finding's due date is within the warning period
                          (``PATCHPILOT_SLA_WARNING_DAYS``): detail ``{"priority", "due"}``
                          (:func:`record_sla_due_soon`, run by ``pipeline.upkeep``; once
                          per due date)
``epss_crossed``          a feed update raised the EPSS score of an open finding's
                          vulnerability across a threshold (``PATCHPILOT_EPSS_THRESHOLDS``):
                          detail ``{"from", "to", "threshold"}`` (the highest threshold
                          crossed; written by ``findings.lifecycle`` as the re-match
                          refreshes the score, and by ``importers.kb_refresh`` for
                          imported findings; a finding's first score is no crossing)
``plan_verified``         a plan item's host was found fixed: ``asset_id`` the host,
                          ``finding_id`` NULL, detail ``{"item", "title", "vulns"}``
                          (``scans.plan_store.rebuild``: a host pending in the previous
                          plan and verified in the new one)
``hook_received``         an inbound webhook (``POST /api/hooks/{name}``) was accepted:
                          ``finding_id``/``asset_id`` set when its body named a known
                          host (and CVE); detail ``{"hook", "body"}``
``scheduled``             a playbook's schedule came due: detail ``{"playbook", "due"}``
                          (only that playbook acts on it)
``jvn_alert``             a feed update brought a MyJVN alert (注意警戒情報) not seen before:
                          ``finding_id``/``asset_id`` NULL, ``producer`` "jvn"; detail
                          ``{"id", "title", "summary", "link", "cves", "cpes"}`` (written by
                          ``knowledge.store.write_jvn`` in the update's transaction)
========================  ===========================================================

``sla_breached``, ``sla_due_soon`` and ``asset_stale`` are noticed, not caused, so they are
written once per occurrence: a finding's breach and its warning once per due date (a
reopening or a re-prioritisation gives it a new one), an asset's staleness once per last
scan.  The first run on a database that already has overdue findings, findings due soon or
late assets records each of them once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import DateTime, String, and_, cast, exists, insert, literal, select
from sqlalchemy.engine import Connection

from patchpilot.clock import aware, iso, now_utc
from patchpilot.db.dialect import insert_rows
from patchpilot.db.tables import assets, finding_events, finding_priority, findings
from patchpilot.errors import InvalidInput
from patchpilot.findings.search import in_reach
from patchpilot.knowledge.store import JVN_ALERT

NEW = "new"
REOPENED = "reopened"
FIXED_EVENT = "fixed"
TRIAGED_EVENT = "triaged"
PRIORITY_CHANGED = "priority_changed"
KNOWN_EXPLOITED_ADDED = "known_exploited_added"
INSTALLATIONS_CHANGED = "installations_changed"
SWEEP_FINISHED = "sweep_finished"
SLA_BREACHED = "sla_breached"
ASSET_STALE = "asset_stale"
IMPORT_FINISHED = "import_finished"
SLA_DUE_SOON = "sla_due_soon"
EPSS_CROSSED = "epss_crossed"
PLAN_VERIFIED = "plan_verified"
HOOK_RECEIVED = "hook_received"
SCHEDULED = "scheduled"
KINDS = (NEW, REOPENED, FIXED_EVENT, TRIAGED_EVENT, PRIORITY_CHANGED, KNOWN_EXPLOITED_ADDED,
         INSTALLATIONS_CHANGED, SWEEP_FINISHED, SLA_BREACHED, ASSET_STALE, IMPORT_FINISHED,
         SLA_DUE_SOON, EPSS_CROSSED, PLAN_VERIFIED, HOOK_RECEIVED, SCHEDULED, JVN_ALERT)


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
    insert_rows(conn, finding_events, rows)


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
                 kinds: Sequence[str] = (), *, asset_id: int | None = None,
                 reach: frozenset[int] | None = None) -> list[Event]:
    """The events with an id above ``after``, oldest first, at most ``limit`` (of
    ``kinds``, when given; of ``asset_id``, when given).  Page on with the last id
    returned.  ``reach``: the asset ids a user limited to part of the estate sees; only
    their assets' events then (none of the estate-wide ones without an asset: a sweep's
    or an import's counts, a JVN alert); None for every event."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InvalidInput(f"kind: unknown event kind {unknown[0]!r} "
                           f"(one of {', '.join(KINDS)})", field="kind")
    stmt = select(finding_events).where(finding_events.c.id > after)
    if kinds:
        stmt = stmt.where(finding_events.c.kind.in_(list(kinds)))
    if asset_id is not None:
        stmt = stmt.where(finding_events.c.asset_id == asset_id)
    if reach is not None:
        stmt = stmt.where(in_reach(finding_events.c.asset_id, reach))
    rows = conn.execute(stmt.order_by(finding_events.c.id).limit(limit)).all()
    return [Event(r.id, aware(r.at), r.kind, r.finding_id, r.asset_id,  # type: ignore[arg-type]
                  r.producer, r.actor, orjson.loads(r.detail) if r.detail else None)
            for r in rows]


_EVENT_COLUMNS = ("at", "finding_id", "asset_id", "kind", "detail")


def record_sla_breaches(conn: Connection, now: datetime | None = None) -> int:
    """Write ``sla_breached`` for every open finding whose due date has passed and that
    has no such event since that due date; how many.  One ``INSERT … SELECT``."""
    now = now or now_utc()
    f, fp, e = findings, finding_priority, finding_events
    at = literal(now, DateTime(timezone=True))
    recorded = exists().where(e.c.finding_id == f.c.id, e.c.kind == SLA_BREACHED,
                              e.c.at >= fp.c.due_date)
    detail = literal('{"priority": ', String) + cast(fp.c.priority, String) + literal("}")
    breached = (select(at, f.c.id, f.c.asset_id, literal(SLA_BREACHED, String), detail)
                .select_from(f.join(fp, fp.c.finding_id == f.c.id))
                .where(f.c.state == "open", fp.c.due_date < at, ~recorded))
    # (rowcount of an INSERT … SELECT is -1 through psycopg: the ids are counted.)
    return len(conn.execute(insert(e).from_select(list(_EVENT_COLUMNS), breached)
                            .returning(e.c.id)).all())


def record_stale_assets(conn: Connection, late: Any, now: datetime | None = None) -> int:
    """Write ``asset_stale`` for every asset meeting ``late`` (a condition on ``assets``:
    ``reports.overview.not_scanned_condition``) that has no such event since its last scan; how
    many.  One ``INSERT … SELECT``."""
    now = now or now_utc()
    e = finding_events
    at = literal(now, DateTime(timezone=True))
    recorded = exists().where(e.c.asset_id == assets.c.id, e.c.kind == ASSET_STALE,
                              e.c.finding_id.is_(None), e.c.at >= assets.c.last_seen)
    stale = (select(at, literal(None, e.c.finding_id.type), assets.c.id,
                    literal(ASSET_STALE, String), literal(None, String))
             .where(and_(late, ~recorded)))
    # (rowcount of an INSERT … SELECT is -1 through psycopg: the ids are counted.)
    return len(conn.execute(insert(e).from_select(list(_EVENT_COLUMNS), stale)
                            .returning(e.c.id)).all())


def record_sla_due_soon(conn: Connection, warning: timedelta,
                        now: datetime | None = None) -> int:
    """Write ``sla_due_soon`` for every open finding due within ``warning`` from ``now``
    (not yet overdue: that is :func:`record_sla_breaches`) that has no such event for its
    current due date; how many.

    The due date is kept in the event's detail, so a finding re-prioritised to another due
    date (earlier or later) is warned again, and one that keeps its date never twice.  Two
    set-based reads (the findings due soon, and their earlier warnings) and one insert:
    the comparison of the due dates is made here rather than in SQL, where SQLite and
    PostgreSQL would print a timestamp differently.
    """
    if warning <= timedelta(0):
        return 0
    now = now or now_utc()
    f, fp, e = findings, finding_priority, finding_events
    due_soon = (select(f.c.id, f.c.asset_id, fp.c.priority, fp.c.due_date)
                .select_from(f.join(fp, fp.c.finding_id == f.c.id))
                .where(f.c.state == "open", fp.c.due_date >= now,
                       fp.c.due_date < now + warning))
    candidates = conn.execute(due_soon).all()
    if not candidates:
        return 0
    warned: set[tuple[int, str]] = set()
    for finding_id, detail in conn.execute(
            select(e.c.finding_id, e.c.detail).where(
                e.c.kind == SLA_DUE_SOON,
                e.c.finding_id.in_(due_soon.with_only_columns(f.c.id).scalar_subquery()))):
        due = orjson.loads(detail).get("due") if detail else None
        warned.add((finding_id, str(due)))
    rows = []
    for r in candidates:
        due = iso(r.due_date)
        if (r.id, str(due)) not in warned:
            rows.append(event_row(SLA_DUE_SOON, now, finding_id=r.id, asset_id=r.asset_id,
                                  detail={"priority": r.priority, "due": due}))
    write_events(conn, rows)
    return len(rows)


def epss_crossing(before: float | None, after: float | None,
                  thresholds: Sequence[float]) -> dict[str, float] | None:
    """The detail of an ``epss_crossed`` event when a score moved from ``before`` to
    ``after``: ``{"from", "to", "threshold"}`` with the highest threshold crossed upwards
    (below it before, at or above it now), or None.

    A first score (``before`` None) is no crossing: the first load of the EPSS feed on an
    estate would otherwise announce every scored finding at once.
    """
    if before is None or after is None or after <= before:
        return None
    crossed = [t for t in thresholds if before < t <= after]
    if not crossed:
        return None
    return {"from": before, "to": after, "threshold": max(crossed)}
