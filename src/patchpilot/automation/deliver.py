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
from patchpilot.automation.actions import Delivery, DeliveryError, DeliverySettings, Outcome
from patchpilot.automation.actions.registry import action_named
from patchpilot.automation.playbook import PlaybookError, parse_playbook
from patchpilot.automation.secrets import SecretError, UnknownSecret, read_secret
from patchpilot.automation.store import document_of
from patchpilot.clock import now_utc
from patchpilot.db.tables import outbox, playbooks

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
                *, limit: int = 100, secrets_key: str = "") -> Delivered:
    """Deliver up to ``limit`` due rows (queued, or failed and past their backoff);
    ``secrets_key`` reads the secrets the actions name (``automation.secrets``)."""
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
            name = conn.execute(select(playbooks.c.name)
                                .where(playbooks.c.id == row.playbook_id)).scalar_one()

        def secret(secret_name: str) -> str:
            try:
                with engine.connect() as c:
                    return read_secret(c, secret_name, secrets_key)
            except (UnknownSecret, SecretError) as exc:
                raise DeliveryError(str(exc)) from exc

        delivery = Delivery(row.id, str(name), row.event_id, row.subject, row.step, now,
                            engine, settings, secret, attempt=row.attempts + 1)
        state, error, target, outcome = _deliver_one(row, document, delivery)
        attempts = row.attempts + 1
        if state == FAILED and attempts >= MAX_ATTEMPTS:
            state = DEAD
        values: dict[str, Any] = {"state": state, "attempts": attempts, "last_error": error,
                                  "target": target}
        if outcome is not None and outcome.detail is not None:
            values["outcome"] = orjson.dumps(outcome.detail).decode()
        if state == FAILED:
            values["next_attempt_at"] = now + backoff(attempts)
        elif outcome is not None and outcome.again_at is not None:
            # A further step (an escalation chain): queued again, its attempts afresh.
            values.update(state=QUEUED, attempts=0, next_attempt_at=outcome.again_at,
                          step=outcome.step if outcome.step is not None else row.step + 1)
        else:
            values["done_at"] = now
        with engine.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.id == row_id).values(**values))
            audit(conn, ACTOR, f"playbook.action.{state if state != QUEUED else SENT}",
                  f"outbox:{row_id}",
                  {"type": row.action_type, "subject": row.subject, "target": target,
                   "event_id": row.event_id, "step": row.step, "attempts": attempts,
                   "error": error, "outcome": outcome.detail if outcome else None})
        counted = SENT if state == QUEUED else state
        setattr(done, counted, getattr(done, counted) + 1)
    return done


def _deliver_one(row: Any, document: str, delivery: Delivery
                 ) -> tuple[str, str | None, str | None, Outcome | None]:
    target = None
    try:
        step = parse_playbook(document).actions[row.action_index]
        action = action_named(step.type)
        if action is None:
            return DEAD, f"action {step.type!r} is not registered", None, None
        payload = orjson.loads(row.payload)
        target = action.target(step.with_, payload)
        outcome = action.deliver(step.with_, payload, delivery)
    except (DeliveryError, PlaybookError) as exc:
        log.warning("outbox %s (%s) failed: %s", row.id, row.action_type, exc)
        return FAILED, str(exc), target, None
    return SENT, None, target, outcome
