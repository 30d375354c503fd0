"""Deliver the outbox: take due rows, carry each action out, record the outcome.

A row is claimed by moving its ``next_attempt_at`` forward with a compare-and-set (the
same rule as the report schedules), so several workers never deliver one row twice at
once; a worker that dies mid-delivery leaves the row to be taken again once the claim
lapses.  A failure is retried with exponential backoff (1, 2, 4, 8 minutes …); after
``MAX_ATTEMPTS`` the row is ``dead`` (the dead-letter list).  The action's settings are
read from the playbook version that queued the row, so a secret is never copied into the
outbox.

**Rate limits.**  Before a row is delivered, its send is counted against its action's
target (``Action.target``: a recipient list, a webhook host) in ``action_rates``: at most
``PATCHPILOT_ACTION_RATE_LIMIT`` sends a minute per target, counted by one upsert in the
claim's transaction, so concurrent workers share the count.  A row over the limit is
postponed to the end of the target's window -- its attempts unchanged, as nothing was
tried.

**Digests.**  A ``digest`` row's delivery mails what its playbook collected; the collected
rows are marked sent (``actions.digest.settle``) in the transaction that records the
digest's own delivery, so each collected event is in exactly one digest.  ``collected``
rows themselves are never taken here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from patchpilot.audit import audit
from patchpilot.automation.actions import (
    Action,
    Delivery,
    DeliveryError,
    DeliverySettings,
    Outcome,
)
from patchpilot.automation.actions import digest as digest_action
from patchpilot.automation.actions.registry import action_named
from patchpilot.automation.playbook import ActionStep, PlaybookError
from patchpilot.automation.secrets import SecretError, UnknownSecret, read_secret
from patchpilot.automation.store import document_of, parsed
from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import action_rates, outbox, playbooks

log = logging.getLogger(__name__)

QUEUED, SENT, FAILED, DEAD = "queued", "sent", "failed", "dead"
STATES = (QUEUED, SENT, FAILED, DEAD)
MAX_ATTEMPTS = 5
BACKOFF = timedelta(minutes=1)
# A claimed row is retried by someone else after this if its worker died.
CLAIM = timedelta(minutes=5)
ACTOR = "playbook"
# The window a target's sends are counted in.
RATE_WINDOW = timedelta(minutes=1)


@dataclass(slots=True)
class Delivered:
    """What one round did."""

    sent: int = 0
    failed: int = 0
    dead: int = 0
    postponed: int = 0  # over their target's rate limit: due again when its window ends


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure (1, 2, 4, … minutes)."""
    return BACKOFF * (2 ** max(attempts - 1, 0))


def count_send(conn: Connection, target: str, now: datetime, limit: int
               ) -> datetime | None:
    """Count one send to ``target`` in its current window; None when it is within
    ``limit``, else the end of the window (send then).  One upsert: concurrent workers
    share the count, and a window older than :data:`RATE_WINDOW` starts afresh."""
    r = action_rates
    expired = r.c.window_start <= now - RATE_WINDOW
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(r).values(target=target, window_start=now, sent=1)
    start, sent = conn.execute(stmt.on_conflict_do_update(
        index_elements=["target"],
        set_={"window_start": case((expired, now), else_=r.c.window_start),
              "sent": case((expired, 1), else_=r.c.sent + 1)})
        .returning(r.c.window_start, r.c.sent)).one()
    if sent <= limit:
        return None
    began: datetime = aware(start)  # type: ignore[assignment]
    return began + RATE_WINDOW


# What a row needs to be delivered, read in its claim's transaction: the playbook's name,
# the step (or why the stored version cannot be read), the action, the payload, the target.
_Prepared = tuple[str, ActionStep | None, Action | None, dict[str, Any], str | None, str | None]


def _prepare(conn: Connection, row: Any) -> _Prepared:
    name = str(conn.execute(select(playbooks.c.name)
                            .where(playbooks.c.id == row.playbook_id)).scalar_one())
    payload = orjson.loads(row.payload)
    try:
        document = document_of(conn, row.playbook_id, row.playbook_version)
        step = parsed(document, f"playbook {name}").actions[row.action_index]
    except PlaybookError as exc:
        return name, None, None, payload, None, str(exc)
    action = action_named(step.type)
    if action is None:
        return name, step, None, payload, None, f"action {step.type!r} is not registered"
    return name, step, action, payload, action.target(step.with_, payload), None


def deliver_due(engine: Engine, settings: DeliverySettings, now: datetime | None = None,
                *, limit: int = 100, secrets_key: str = "") -> Delivered:
    """Deliver up to ``limit`` due rows (queued, or failed and past their backoff);
    ``secrets_key`` reads the secrets the actions name (``automation.secrets``).
    Cheap when nothing is due: one read of the ``(state, next_attempt_at)`` index."""
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
            name, step, action, payload, target, problem = _prepare(conn, row)
            if target is not None:
                later = count_send(conn, target, now, settings.rate_limit)
                if later is not None:
                    # Over the target's limit: nothing was tried, so no attempt counts.
                    conn.execute(update(outbox).where(outbox.c.id == row_id)
                                 .values(next_attempt_at=later))
                    done.postponed += 1
                    continue

        def secret(secret_name: str) -> str:
            try:
                with engine.connect() as c:
                    return read_secret(c, secret_name, secrets_key)
            except (UnknownSecret, SecretError) as exc:
                raise DeliveryError(str(exc)) from exc

        delivery = Delivery(row.id, name, row.event_id, row.subject, row.step, now,
                            engine, settings, secret, attempt=row.attempts + 1)
        if step is None or action is None:
            # The stored version cannot be read (or its action is gone): retrying
            # cannot help an unregistered action; a document error may be fixed.
            state: str = DEAD if step is not None else FAILED
            error, outcome = problem, None
            log.warning("outbox %s (%s) failed: %s", row.id, row.action_type, problem)
        else:
            state, error, outcome = _deliver_one(row, step, action, payload, delivery)
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
            if (state == SENT and row.action_type == digest_action.NAME
                    and outcome is not None and outcome.detail):
                # The rows the digest gathered, with its own delivery: each in one digest.
                digest_action.settle(conn, row.playbook_id, row.action_index,
                                     int(outcome.detail.get("through") or 0), row.id, now)
            audit(conn, ACTOR, f"playbook.action.{state if state != QUEUED else SENT}",
                  f"outbox:{row_id}",
                  {"type": row.action_type, "subject": row.subject, "target": target,
                   "event_id": row.event_id, "step": row.step, "attempts": attempts,
                   "error": error, "outcome": outcome.detail if outcome else None})
        counted = SENT if state == QUEUED else state
        setattr(done, counted, getattr(done, counted) + 1)
    return done


def _deliver_one(row: Any, step: ActionStep, action: Action, payload: dict[str, Any],
                 delivery: Delivery) -> tuple[str, str | None, Outcome | None]:
    try:
        outcome = action.deliver(step.with_, payload, delivery)
    except DeliveryError as exc:
        log.warning("outbox %s (%s) failed: %s", row.id, row.action_type, exc)
        return FAILED, str(exc), None
    return SENT, None, outcome
