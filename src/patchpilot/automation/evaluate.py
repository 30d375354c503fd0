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

**Speed.**  A condition depends only on the context fields it names: each is read from its
syntax tree once, and the results are kept per playbook condition by the values of those
fields (``finding.severity``, ``asset.criticality``, …).  An estate has far fewer distinct
combinations than events, so celpy -- about 0.2 ms an evaluation, with a CEL activation
built for it -- runs once per combination, not once per event and playbook; the
activation holds only the named fields.  The result is the same as evaluating every
event: a CEL expression is a pure function of its inputs.

A stored playbook that no longer validates is set aside (``store.usable_playbooks``),
named in the round's ``invalid``, and the others are evaluated.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from threading import Lock
from typing import Any

import celpy
import orjson
from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from patchpilot.automation.actions.digest import NAME as DIGEST
from patchpilot.automation.context import contexts, subject_of
from patchpilot.automation.playbook import ROOTS, Playbook, parse_playbook
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


# A field a condition names: (root, field), or (root, None) for the whole root (a root
# indexed as a map, or named bare).
Path = tuple[str, str | None]


def _root_of(member: Any) -> str | None:
    # member -> primary -> ident -> token: a bare root such as ``finding``.
    if getattr(member, "data", None) != "member" or len(member.children) != 1:
        return None
    primary = member.children[0]
    if getattr(primary, "data", None) != "primary" or len(primary.children) != 1:
        return None
    ident = primary.children[0]
    if getattr(ident, "data", None) != "ident":
        return None
    name = str(ident.children[0])
    return name if name in ROOTS else None


def condition_paths(expression: str) -> tuple[Path, ...]:
    """The context fields a CEL expression can read, sorted: ``root.field`` where it
    selects a field of a root, the whole root wherever a root is used otherwise.  Never
    fewer than it reads (a name it binds in a macro that shadows a root counts as the
    whole root), so a result kept by their values is exact."""
    tree = celpy.Environment().compile(expression)
    fields: set[Path] = set()
    selected: set[int] = set()
    for node in tree.iter_subtrees():
        if node.data == "member_dot":
            root = _root_of(node.children[0])
            if root is not None:
                fields.add((root, str(node.children[1])))
                selected.add(id(node.children[0].children[0].children[0]))
    for node in tree.iter_subtrees():
        if (node.data == "ident" and id(node) not in selected
                and str(node.children[0]) in ROOTS):
            fields.add((str(node.children[0]), None))
    whole = {root for root, name in fields if name is None}
    return tuple(sorted((p for p in fields if p[0] not in whole or p[1] is None),
                        key=lambda p: (p[0], p[1] or "")))


def _frozen(value: Any) -> Any:
    # A hashable stand-in of a JSON value.  The context's fields each have one type (or
    # null), so a scalar stands for itself; a list becomes a tuple and a map (an event's
    # detail, of any keys and types) its canonical JSON, which tells 1, 1.0 and true
    # apart.
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return value


class Condition:
    """A compiled condition and its results so far, by the values of the fields it names.

    ``test(context)``: True or False, or None when the condition failed on it (a null
    compared with a number): counted, never a match."""

    _MEMO_MAX = 200_000

    def __init__(self, program: Any, expression: str) -> None:
        self.program = program
        self.paths = condition_paths(expression)
        self.memo: dict[tuple[Any, ...], bool | None] = {}

    def test(self, context: dict[str, Any]) -> bool | None:
        """The condition's result on one event's context."""
        key = tuple(_frozen(context[root] if name is None else context[root][name])
                    for root, name in self.paths)
        try:
            return self.memo[key]
        except KeyError:
            pass
        result = self._evaluate(context)
        if len(self.memo) >= self._MEMO_MAX:
            self.memo.clear()  # bounded: an estate of ever-new values starts over
        self.memo[key] = result
        return result

    def _evaluate(self, context: dict[str, Any]) -> bool | None:
        # An activation of only the fields the condition names: building the whole
        # context's CEL values costs more than most evaluations.
        shown: dict[str, Any] = {}
        for root, name in self.paths:
            if name is None:
                shown[root] = context[root]
            else:
                shown.setdefault(root, {})[name] = context[root][name]
        try:
            hit = self.program.evaluate({k: celpy.json_to_cel(v) for k, v in shown.items()})
        except celpy.CELEvalError:
            return None
        if not isinstance(hit, bool | celpy.celtypes.BoolType):
            return None
        return bool(hit)


# Conditions by their text (with the playbook's compiled program): their results are kept
# from batch to batch.  Bounded, oldest out.
_CONDITIONS: OrderedDict[str, Condition] = OrderedDict()
_CONDITIONS_MAX = 500
_CONDITIONS_LOCK = Lock()


def condition_of(playbook: Playbook) -> Condition | None:
    """The playbook's :class:`Condition` (shared by every playbook of the same text), or
    None when it has none."""
    if playbook.condition is None or playbook.program is None:
        return None
    with _CONDITIONS_LOCK:
        found = _CONDITIONS.get(playbook.condition)
        if found is not None:
            _CONDITIONS.move_to_end(playbook.condition)
            return found
    made = Condition(playbook.program, playbook.condition)
    with _CONDITIONS_LOCK:
        _CONDITIONS[playbook.condition] = made
        while len(_CONDITIONS) > _CONDITIONS_MAX:
            _CONDITIONS.popitem(last=False)
    return made


def by_kind(events: Iterable[Event]) -> dict[str, list[Event]]:
    """The events by kind, each list in the given order."""
    out: dict[str, list[Event]] = {}
    for e in events:
        out.setdefault(e.kind, []).append(e)
    return out


def _acting(playbook: Playbook, kinds: dict[str, list[Event]]) -> list[Event]:
    """The events of the kinds the playbook's trigger names, and the scheduled events
    naming it, in id order."""
    chosen = [e for kind in playbook.events for e in kinds.get(kind, ())]
    if playbook.schedule is not None:
        chosen.extend(e for e in kinds.get(SCHEDULED, ())
                      if (e.detail or {}).get("playbook") == playbook.name)
    chosen.sort(key=lambda e: e.id)
    return chosen


def matches(playbook: Playbook, events: Sequence[Event] | dict[str, list[Event]],
            context: dict[int, dict[str, Any]], errors: dict[str, int] | None = None
            ) -> list[Match]:
    """The actions ``playbook`` takes for ``events`` (a list, or :func:`by_kind`'s map;
    their contexts by event id)."""
    kinds = events if isinstance(events, dict) else by_kind(events)
    condition = condition_of(playbook)
    digests = [i for i, a in enumerate(playbook.actions) if a.type == DIGEST]
    every = range(len(playbook.actions))
    out: list[Match] = []
    for e in _acting(playbook, kinds):
        ctx = context[e.id]
        if e.kind == SCHEDULED:
            # Its own schedule: no condition (it speaks of findings); the digests send,
            # or every action acts when there is no digest.
            steps, collect = (digests or every), False
        else:
            if condition is not None:
                hit = condition.test(ctx)
                if hit is None:
                    if errors is not None:
                        errors[playbook.name] = errors.get(playbook.name, 0) + 1
                    continue
                if not hit:
                    continue
            steps, collect = every, True
        payload = {"playbook": playbook.name, **ctx}
        subject = subject_of(ctx)
        out.extend(Match(playbook.name, e, i, playbook.actions[i].type, subject, payload,
                         collect and playbook.actions[i].type == DIGEST)
                   for i in steps)
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
    stored, result.invalid = usable_playbooks(conn)
    kinds = by_kind(events)
    wanted = {k for sp in stored for k in sp.playbook.events}
    context = contexts(conn, [e for e in events if e.kind in wanted or e.kind == SCHEDULED])
    encoded: dict[int, bytes] = {}
    rows: list[dict[str, Any]] = []
    for sp in stored:
        name = orjson.dumps(sp.playbook.name)
        for m in matches(sp.playbook, kinds, context, result.condition_errors):
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
