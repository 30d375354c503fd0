"""Deliver the outbox: take due rows, carry each action out, record the outcome.

A row is claimed by moving its ``next_attempt_at`` forward with a compare-and-set (the
same rule as the report schedules), so several workers never deliver one row twice at
once; a worker that dies mid-delivery leaves the row to be taken again once the claim
lapses.  A failure is retried with exponential backoff (1, 2, 4, 8 minutes …); after
``MAX_ATTEMPTS`` the row is ``dead`` (the dead-letter list).  The action's settings are
read from the playbook version that queued the row, so a secret is never copied into the
outbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, select, update

from patchpilot.audit import audit
from patchpilot.automation.actions import DeliveryError, DeliverySettings
from patchpilot.automation.actions.registry import action_named
from patchpilot.automation.playbook import PlaybookError, parse_playbook
from patchpilot.automation.store import document_of
from patchpilot.clock import now_utc
from patchpilot.db.tables import outbox

log = logging.getLogger(__name__)

QUEUED, SENT, FAILED, DEAD = "queued", "sent", "failed", "dead"
STATES = (QUEUED, SENT, FAILED, DEAD)
MAX_ATTEMPTS = 5
BACKOFF = timedelta(minutes=1)
# A claimed row is retried by someone else after this if its worker died.
CLAIM = timedelta(minutes=5)
ACTOR = "playbook"


@dataclass(slots=True)
class Delivered:
    """What one round did."""

    sent: int = 0
    failed: int = 0
    dead: int = 0


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure (1, 2, 4, … minutes)."""
    return BACKOFF * (2 ** max(attempts - 1, 0))


def deliver_due(engine: Engine, settings: DeliverySettings, now: datetime | None = None,
                *, limit: int = 100) -> Delivered:
    """Deliver up to ``limit`` due rows (queued, or failed and past their backoff)."""
    now = now or now_utc()
    done = Delivered()
    with engine.connect() as conn:
        due = conn.execute(select(outbox.c.id, outbox.c.next_attempt_at)
                           .where(outbox.c.state.in_((QUEUED, FAILED)),
                                  outbox.c.next_attempt_at <= now)
                           .order_by(outbox.c.next_attempt_at, outbox.c.id)
                           .limit(limit)).all()
    for row_id, at in due:
        with engine.begin() as conn:
            claimed = conn.execute(update(outbox).where(
                outbox.c.id == row_id, outbox.c.next_attempt_at == at,
                outbox.c.state.in_((QUEUED, FAILED))).values(
                next_attempt_at=now + CLAIM)).rowcount
            if claimed != 1:
                continue  # another worker took it
            row = conn.execute(select(outbox).where(outbox.c.id == row_id)).one()
            document = document_of(conn, row.playbook_id, row.playbook_version)
        state, error = _deliver_one(row, document, settings)
        attempts = row.attempts + 1
        if state == FAILED and attempts >= MAX_ATTEMPTS:
            state = DEAD
        values: dict[str, Any] = {"state": state, "attempts": attempts, "last_error": error}
        if state == FAILED:
            values["next_attempt_at"] = now + backoff(attempts)
        else:
            values["done_at"] = now
        with engine.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.id == row_id).values(**values))
            audit(conn, ACTOR, f"playbook.action.{state}", f"outbox:{row_id}",
                  {"type": row.action_type, "subject": row.subject,
                   "event_id": row.event_id, "attempts": attempts, "error": error})
        setattr(done, state, getattr(done, state) + 1)
    return done


def _deliver_one(row: Any, document: str, settings: DeliverySettings
                 ) -> tuple[str, str | None]:
    try:
        step = parse_playbook(document).actions[row.action_index]
        action = action_named(step.type)
        if action is None:
            return DEAD, f"action {step.type!r} is not registered"
        action.deliver(step.with_, orjson.loads(row.payload), settings)
    except (DeliveryError, PlaybookError) as exc:
        log.warning("outbox %s (%s) failed: %s", row.id, row.action_type, exc)
        return FAILED, str(exc)
    return SENT, None
