"""Evaluate finding events against the enabled playbooks and queue their actions.

:func:`evaluate_events` reads the events after the stored cursor (``events_after``),
builds their contexts set-based (:mod:`.context`), matches each playbook's trigger kinds
and CEL condition, and writes the outbox rows with one ``INSERT … ON CONFLICT DO
NOTHING`` on the unique (playbook, event, action) key -- in the transaction that moves
the cursor, so a crash between the two cannot lose or repeat an action.  Two evaluators
at once: the second waits for the first's cursor lock and reads on from where it ended
(and the cursor moves by compare-and-set besides).

The cursor starts at the newest event when the first playbook is stored
(``store.ensure_cursor``): playbooks act on what happens from then on, not on history.

A condition that fails on an event (a null compared with a number, a missing map key) does
not match it; the failures are counted in the result, so a broken condition shows.

:func:`simulate` is the dry run: the same matching over stored events since a moment,
for a document not (yet) stored, writing nothing.

Schedule triggers are validated and stored but not evaluated here (later: the digest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import celpy
import orjson
from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from patchpilot.automation.context import activation, contexts, subject_of
from patchpilot.automation.playbook import Playbook, parse_playbook
from patchpilot.automation.store import ensure_cursor, list_playbooks
from patchpilot.clock import now_utc
from patchpilot.db.tables import finding_events, outbox, playbook_cursor
from patchpilot.findings.events import Event, events_after

BATCH = 5000
QUEUED = "queued"


@dataclass(frozen=True, slots=True)
class Match:
    """One action a playbook takes for one event."""

    playbook: str
    event: Event
    action_index: int
    action_type: str
    subject: str
    payload: dict[str, Any]


@dataclass(slots=True)
class Evaluation:
    """What one evaluation round did."""

    events: int = 0
    queued: int = 0  # outbox rows written (not those already there)
    matches: int = 0
    condition_errors: dict[str, int] = field(default_factory=dict)  # by playbook
    cursor: int = 0


def matches(playbook: Playbook, events: Sequence[Event],
            context: dict[int, dict[str, Any]], errors: dict[str, int] | None = None
            ) -> list[Match]:
    """The actions ``playbook`` takes for ``events`` (their contexts by event id)."""
    out: list[Match] = []
    kinds = set(playbook.events)
    for e in events:
        if e.kind not in kinds:
            continue
        ctx = context[e.id]
        if playbook.program is not None:
            try:
                hit = playbook.program.evaluate(activation(ctx))
            except celpy.CELEvalError:
                hit = None
            if not isinstance(hit, bool | celpy.celtypes.BoolType):
                if errors is not None:
                    errors[playbook.name] = errors.get(playbook.name, 0) + 1
                continue
            if not bool(hit):
                continue
        payload = {"playbook": playbook.name, **ctx}
        out.extend(Match(playbook.name, e, i, a.type, subject_of(ctx), payload)
                   for i, a in enumerate(playbook.actions))
    return out


def _insert_ignoring(conn: Connection, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(outbox).on_conflict_do_nothing(
        index_elements=["playbook_id", "event_id", "action_index"]).returning(outbox.c.id)
    written = 0
    for start in range(0, len(rows), 1000):
        written += len(conn.execute(stmt.values(rows[start:start + 1000])).all())
    return written


def evaluate_batch(conn: Connection, *, limit: int = BATCH, now: datetime | None = None
                   ) -> Evaluation:
    """Evaluate the next ``limit`` events after the cursor, in the caller's transaction
    (commit it to keep the rows and the cursor together)."""
    now = now or now_utc()
    # Take the cursor's row lock (PostgreSQL) / the write lock (SQLite) before reading
    # anything: a second evaluator waits here and then reads the moved cursor, instead
    # of evaluating the same batch (or, on SQLite, failing to write from a stale read).
    conn.execute(update(playbook_cursor).where(playbook_cursor.c.id == 1)
                 .values(event_id=playbook_cursor.c.event_id))
    after = ensure_cursor(conn)
    result = Evaluation(cursor=after)
    events = events_after(conn, after, limit)
    if not events:
        return result
    stored = list_playbooks(conn, enabled_only=True)
    wanted = {k for sp in stored for k in sp.playbook.events}
    context = contexts(conn, [e for e in events if e.kind in wanted])
    rows = [{"playbook_id": sp.id, "playbook_version": sp.version,
             "event_id": m.event.id, "action_index": m.action_index,
             "action_type": m.action_type, "subject": m.subject,
             "payload": orjson.dumps(m.payload).decode(), "state": QUEUED,
             "attempts": 0, "next_attempt_at": now, "created_at": now}
            for sp in stored
            for m in matches(sp.playbook, events, context, result.condition_errors)]
    result.events, result.matches = len(events), len(rows)
    result.queued = _insert_ignoring(conn, rows)
    last = events[-1].id
    moved = conn.execute(update(playbook_cursor).where(
        playbook_cursor.c.id == 1, playbook_cursor.c.event_id == after)
        .values(event_id=last)).rowcount
    if moved != 1:
        raise CursorMoved(f"playbook cursor moved past {after} meanwhile")
    result.cursor = last
    return result


class CursorMoved(Exception):
    """Another evaluator took the same batch first (its transaction must roll back)."""


def evaluate_events(engine: Engine, *, limit: int = BATCH, now: datetime | None = None
                    ) -> Evaluation:
    """Evaluate every event after the cursor, a batch per transaction; the totals."""
    total = Evaluation()
    while True:
        try:
            with engine.begin() as conn:
                done = evaluate_batch(conn, limit=limit, now=now)
        except CursorMoved:
            continue  # the other evaluator queued that batch: read on from its cursor
        total.events += done.events
        total.queued += done.queued
        total.matches += done.matches
        total.cursor = max(total.cursor, done.cursor)
        for name, n in done.condition_errors.items():
            total.condition_errors[name] = total.condition_errors.get(name, 0) + n
        if done.events < limit:
            return total


def simulate(conn: Connection, document: str, since: datetime, *,
             source: str = "playbook", limit: int = BATCH) -> list[Match]:
    """What ``document`` would have queued over the events stored since ``since``: read
    only, whether the playbook is stored or enabled or not."""
    playbook = parse_playbook(document, source=source)
    if not playbook.events:
        return []
    first = conn.execute(select(func.min(finding_events.c.id))
                         .where(finding_events.c.at >= since)).scalar()
    if first is None:
        return []
    out: list[Match] = []
    after = int(first) - 1
    while True:
        events = events_after(conn, after, limit, playbook.events)
        if not events:
            return out
        out.extend(matches(playbook, events, contexts(conn, events)))
        after = events[-1].id
