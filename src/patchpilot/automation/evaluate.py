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

**Schedules and digests.**  A playbook's schedule comes due as a ``scheduled`` event
naming it (:mod:`.schedule`); only that playbook acts on it, without its condition (which
speaks of findings, and a scheduled event has none).  On it a playbook with ``digest``
actions runs only those (they send what they collected); one without runs every action.
On a finding event a ``digest`` action's row is written ``collected`` instead of
``queued``: it waits for the playbook's next scheduled event, which gathers it.

**Speed.**  Events are read a batch at a time, their contexts set-based; each playbook
sees only the events of its trigger's kinds; each event's fields are flattened once for
every condition; a condition's results are kept by the values of the fields it reads and
its plain comparisons run in Python (:mod:`.conditions`, exact as celpy); the outbox rows
are written by one executemany, each event's context encoded to JSON once.

A stored playbook that no longer validates is set aside (``store.usable_playbooks``),
named in the round's ``invalid``, and the others are evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress
from operator import attrgetter
from typing import Any

import orjson
from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from patchpilot.automation.actions.digest import NAME as DIGEST
from patchpilot.automation.conditions import Condition, Table, condition
from patchpilot.automation.context import contexts, subject_of
from patchpilot.automation.playbook import Playbook, parse_playbook
from patchpilot.automation.store import ensure_cursor, usable_playbooks
from patchpilot.clock import now_utc
from patchpilot.db.tables import finding_events, outbox, playbook_cursor
from patchpilot.findings.events import SCHEDULED, Event, events_after

BATCH = 5000
QUEUED = "queued"
COLLECTED = "collected"  # a digest's row, waiting for its playbook's scheduled event


@dataclass(frozen=True, slots=True)
class Match:
    """One action a playbook takes for one event."""

    playbook: str
    event: Event
    action_index: int
    action_type: str
    subject: str
    payload: dict[str, Any]
    collect: bool = False  # a digest's row: written ``collected``, sent by the schedule


@dataclass(slots=True)
class Evaluation:
    """What one evaluation round did."""

    events: int = 0
    queued: int = 0  # outbox rows written (not those already there)
    matches: int = 0
    condition_errors: dict[str, int] = field(default_factory=dict)  # by playbook
    cursor: int = 0
    collected: int = 0  # of ``queued``: digest rows written ``collected``
    invalid: dict[str, str] = field(default_factory=dict)  # set-aside playbooks' problems


def by_kind(events: Iterable[Event]) -> dict[str, list[Event]]:
    """The events by kind, each list in the given order."""
    out: dict[str, list[Event]] = {}
    for e in events:
        out.setdefault(e.kind, []).append(e)
    return out


def _acting(playbook: Playbook, kinds: dict[str, list[Event]]) -> list[Event]:
    """The events of the kinds the playbook's trigger names, and the scheduled events
    naming it, in id order."""
    parts = [kinds[kind] for kind in playbook.events if kinds.get(kind)]
    if playbook.schedule is not None:
        parts.append([e for e in kinds.get(SCHEDULED, ())
                      if (e.detail or {}).get("playbook") == playbook.name])
    parts = [p for p in parts if p]
    if len(parts) == 1:
        return parts[0]
    return sorted((e for p in parts for e in p), key=attrgetter("id"))


def condition_of(playbook: Playbook) -> Condition | None:
    """The playbook's compiled :class:`~.conditions.Condition` (shared by playbooks of
    the same text, its results kept from batch to batch), or None without one."""
    return condition(playbook.condition) if playbook.condition is not None else None


def matches(playbook: Playbook, events: Sequence[Event] | dict[str, list[Event]],
            context: dict[int, dict[str, Any]], errors: dict[str, int] | None = None,
            table: Table | None = None) -> list[Match]:
    """The actions ``playbook`` takes for ``events`` (a list, or :func:`by_kind`'s map;
    their contexts by event id; ``table``: their :class:`~.conditions.Table` with at least
    the condition's fields, made here when not given)."""
    kinds = events if isinstance(events, dict) else by_kind(events)
    test = condition_of(playbook)
    digests = [i for i, a in enumerate(playbook.actions) if a.type == DIGEST]
    every = range(len(playbook.actions))
    acting = _acting(playbook, kinds)
    scheduled = ([e for e in acting if e.kind == SCHEDULED]
                 if playbook.schedule is not None else [])
    findings = [e for e in acting if e.kind != SCHEDULED] if scheduled else acting
    if test is not None and findings:
        if table is None:
            table = Table.of({e.id: context[e.id] for e in findings}, test.keys)
        results = test.test_many(table, list(map(table.rows.__getitem__,
                                                  map(attrgetter("id"), findings))))
        failed = results.count(None)
        if failed and errors is not None:
            errors[playbook.name] = errors.get(playbook.name, 0) + failed
        findings = list(compress(findings, results))  # (None, False: no match)
    chosen = (sorted(findings + scheduled, key=attrgetter("id")) if scheduled and findings
              else findings or scheduled)
    out: list[Match] = []
    for e in chosen:
        # Its own schedule: no condition (it speaks of findings); the digests send, or
        # every action acts when there is no digest.  A finding event: every action, a
        # digest's row collected.
        if e.kind == SCHEDULED:
            steps, collect = (digests or every), False
        else:
            steps, collect = every, True
        ctx = context[e.id]
        payload = {"playbook": playbook.name, **ctx}
        subject = subject_of(ctx)
        out.extend(Match(playbook.name, e, i, playbook.actions[i].type, subject, payload,
                         collect and playbook.actions[i].type == DIGEST)
                   for i in steps)
    return out


_OUTBOX_COLUMNS = ("playbook_id", "playbook_version", "event_id", "action_index",
                   "action_type", "subject", "payload", "state", "attempts",
                   "next_attempt_at", "created_at")


def _insert_ignoring(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Write outbox rows but those already there (the unique key); how many written."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        return _copy_ignoring(conn, rows)
    stmt = sqlite.insert(outbox).on_conflict_do_nothing(
        index_elements=["playbook_id", "event_id", "action_index"]).returning(outbox.c.id)
    # One statement executed for many rows: SQLAlchemy batches them into multi-row
    # INSERTs ("insertmanyvalues") without compiling a statement per batch.
    return len(conn.execute(stmt, rows).all())


def _copy_ignoring(conn: Connection, rows: list[dict[str, Any]]) -> int:
    # PostgreSQL: COPY into a temporary table, then one INSERT … SELECT … ON CONFLICT DO
    # NOTHING.  A multi-row INSERT of tens of thousands of rows spends most of its time in
    # the driver turning placeholders into PostgreSQL's (seconds per 10,000 rows); COPY
    # sends the rows as data.  The table lives until the transaction ends.
    columns = ", ".join(_OUTBOX_COLUMNS)
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE outbox_incoming ON COMMIT DROP AS "
                         f"SELECT 0 AS n, {columns} FROM outbox WITH NO DATA")
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]
            f"COPY outbox_incoming (n, {columns}) FROM STDIN") as copy:
        for n, row in enumerate(rows):
            copy.write_row([n, *(row[c] for c in _OUTBOX_COLUMNS)])
    written = conn.exec_driver_sql(
        f"INSERT INTO outbox ({columns}) SELECT {columns} FROM outbox_incoming "
        "ORDER BY n "  # (the ids in the order of the rows, as on SQLite)
        "ON CONFLICT (playbook_id, event_id, action_index) DO NOTHING RETURNING id").all()
    conn.exec_driver_sql("DROP TABLE outbox_incoming")
    return len(written)


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
    stored, result.invalid = usable_playbooks(conn)
    kinds = by_kind(events)
    wanted = {k for sp in stored for k in sp.playbook.events}
    context = contexts(conn, [e for e in events if e.kind in wanted or e.kind == SCHEDULED])
    # The fields every condition reads, as columns, once for the batch.
    keys = sorted({k for sp in stored if (c := condition_of(sp.playbook)) for k in c.keys})
    table = Table.of(context, keys)
    encoded: dict[int, bytes] = {}
    rows: list[dict[str, Any]] = []
    for sp in stored:
        name = orjson.dumps(sp.playbook.name)
        for m in matches(sp.playbook, kinds, context, result.condition_errors, table):
            # The context's JSON once per event, the playbook's name put in front.
            body = encoded.get(m.event.id)
            if body is None:
                body = encoded[m.event.id] = orjson.dumps(context[m.event.id])
            rows.append({"playbook_id": sp.id, "playbook_version": sp.version,
                         "event_id": m.event.id, "action_index": m.action_index,
                         "action_type": m.action_type, "subject": m.subject,
                         "payload": (b'{"playbook":' + name + b"," + body[1:]).decode(),
                         "state": COLLECTED if m.collect else QUEUED,
                         "attempts": 0, "next_attempt_at": now, "created_at": now})
    result.events, result.matches = len(events), len(rows)
    result.collected = sum(1 for r in rows if r["state"] == COLLECTED)
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
        total.collected += done.collected
        total.invalid.update(done.invalid)
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
