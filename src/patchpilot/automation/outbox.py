"""The outbox as people see it: the rows by state and playbook (the dead-letter list among
them), their counts, and the two hands an admin lays on a row -- retry and discard.

Delivery (:mod:`.deliver`) moves rows between ``queued``, ``sent``, ``failed`` and
``dead``; this module adds ``discarded``: a row an admin chose not to deliver, kept (not
deleted) so the audit log's ``outbox:ID`` still names something and the unique
(playbook, event, action) key still stops it being queued again.  Retry puts a dead or
failed row back in the queue now with its attempts at zero.  Both are audited, in the
caller's transaction.

What a row shows never holds a secret: the payload is the event's context (event, finding,
asset), the target is what the action names for its rate limit (``smtp:…``, a URL's
scheme and host), and an action's settings -- where a secret's *name* may be -- stay in
the playbook version, never copied here.

A retry or discard of a ``failed`` row races a worker that is delivering it at that moment
(a claimed row looks like one waiting out its backoff): the delivery's outcome then wins.
A ``dead`` row is never taken by a worker, so its retry or discard is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from patchpilot.audit import audit
from patchpilot.automation.deliver import DEAD, FAILED, QUEUED, SENT
from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import outbox, playbooks
from patchpilot.errors import Conflict, InvalidInput, NotFound

DISCARDED = "discarded"
# Every state a row can be in, in the order of its life.
STATES = (QUEUED, SENT, FAILED, DEAD, DISCARDED)
# The states an admin may retry or discard: delivery gave up on them, or is backing off.
STUCK = (FAILED, DEAD)
PAGE = 50


class UnknownOutboxRow(NotFound):
    """No outbox row has that id."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One outbox row, with its playbook's name and its JSON columns decoded."""

    id: int
    playbook: str
    playbook_version: int
    event_id: int
    action_index: int
    action_type: str
    subject: str
    state: str
    attempts: int
    step: int
    next_attempt_at: datetime
    created_at: datetime
    done_at: datetime | None
    target: str | None
    last_error: str | None
    outcome: dict[str, Any] | None
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Its fields as a dict (the API's answer)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _select() -> Any:
    return (select(outbox, playbooks.c.name.label("playbook_name"))
            .join(playbooks, playbooks.c.id == outbox.c.playbook_id))


def _row(r: Any) -> OutboxRow:
    return OutboxRow(
        r.id, r.playbook_name, r.playbook_version, r.event_id, r.action_index,
        r.action_type, r.subject, r.state, r.attempts, r.step,
        aware(r.next_attempt_at), aware(r.created_at),  # type: ignore[arg-type]
        aware(r.done_at), r.target, r.last_error,
        orjson.loads(r.outcome) if r.outcome else None, orjson.loads(r.payload))


def list_outbox(conn: Connection, *, state: str | None = None, playbook: str | None = None,
                after: int = 0, limit: int = PAGE) -> list[OutboxRow]:
    """Rows with an id above ``after``, oldest first (of ``state`` and of the playbook
    named ``playbook`` when given): page on with the last row's id."""
    if state is not None and state not in STATES:
        raise InvalidInput(f"state: {state!r} is not one of {', '.join(STATES)}",
                           field="state")
    stmt = _select().where(outbox.c.id > after).order_by(outbox.c.id).limit(limit)
    if state is not None:
        stmt = stmt.where(outbox.c.state == state)
    if playbook is not None:
        stmt = stmt.where(playbooks.c.name == playbook)
    return [_row(r) for r in conn.execute(stmt)]


def get_row(conn: Connection, row_id: int) -> OutboxRow:
    """One row; UnknownOutboxRow when there is none."""
    found = conn.execute(_select().where(outbox.c.id == row_id)).first()
    if found is None:
        raise UnknownOutboxRow(f"id: no outbox row {row_id}", field="id")
    return _row(found)


def count_states(conn: Connection) -> dict[str, int]:
    """How many rows are in each state (every state named, zero included)."""
    counted: dict[str, int] = dict(conn.execute(select(outbox.c.state, func.count())
                                .group_by(outbox.c.state)).all())
    return {s: int(counted.get(s, 0)) for s in STATES}


def count_by_playbook(conn: Connection) -> dict[int, dict[str, int]]:
    """Each playbook's rows by state, by playbook id (a playbook without rows is absent;
    :func:`zero_counts` stands in for it)."""
    out: dict[int, dict[str, int]] = {}
    for playbook_id, state, n in conn.execute(
            select(outbox.c.playbook_id, outbox.c.state, func.count())
            .group_by(outbox.c.playbook_id, outbox.c.state)):
        out.setdefault(playbook_id, zero_counts())[state] = int(n)
    return out


def zero_counts() -> dict[str, int]:
    """Every state at zero."""
    return dict.fromkeys(STATES, 0)


def _stuck(conn: Connection, row_id: int, verb: str) -> OutboxRow:
    row = get_row(conn, row_id)
    if row.state not in STUCK:
        raise Conflict(f"id: outbox row {row_id} is {row.state}; only a failed or dead row "
                       f"can be {verb}", field="id")
    return row


def retry(conn: Connection, actor: str, row_id: int, *, now: datetime | None = None
          ) -> OutboxRow:
    """Queue a failed or dead row again, due ``now``, its attempts at zero (its last error
    kept until the next delivery replaces it).  Audited; Conflict for any other state."""
    row = _stuck(conn, row_id, "retried")
    now = now or now_utc()
    done = conn.execute(update(outbox).where(outbox.c.id == row_id,
                                             outbox.c.state == row.state).values(
        state=QUEUED, attempts=0, next_attempt_at=now, done_at=None)).rowcount
    if done != 1:  # a worker moved it meanwhile
        raise Conflict(f"id: outbox row {row_id} changed meanwhile; reload", field="id")
    audit(conn, actor, "outbox.retry", f"outbox:{row_id}", _detail(row))
    return get_row(conn, row_id)


def discard(conn: Connection, actor: str, row_id: int, *, now: datetime | None = None
            ) -> OutboxRow:
    """Give up on a failed or dead row: ``discarded``, never delivered (the row is kept).
    Audited; Conflict for any other state."""
    row = _stuck(conn, row_id, "discarded")
    done = conn.execute(update(outbox).where(outbox.c.id == row_id,
                                             outbox.c.state == row.state).values(
        state=DISCARDED, done_at=now or now_utc())).rowcount
    if done != 1:
        raise Conflict(f"id: outbox row {row_id} changed meanwhile; reload", field="id")
    audit(conn, actor, "outbox.discard", f"outbox:{row_id}", _detail(row))
    return get_row(conn, row_id)


def _detail(row: OutboxRow) -> dict[str, Any]:
    return {"playbook": row.playbook, "type": row.action_type, "subject": row.subject,
            "event_id": row.event_id, "was": row.state, "attempts": row.attempts,
            "last_error": row.last_error}
