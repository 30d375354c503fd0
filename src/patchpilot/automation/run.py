"""One round of automation, as an idle worker runs it (``pipeline.when_idle``) and as
``patchpilot playbook run`` runs it by hand.

In order: fire the schedules that came due (their ``scheduled`` events are then evaluated
in the same round), evaluate the new finding events into the outbox, deliver the due
outbox rows, and poll the trackers for the open tickets not polled for a while (a ticket
closed in Jira is reported back on its finding: ``ticket_sync``).  Each part is cheap
when it has nothing to do -- one indexed read: the playbooks due (``next_run_at``), an
event after the cursor, an outbox row due, a ticket to poll -- so every idle worker may
run a round every half second.  A part that fails is logged and named in
the result, and the next part still runs: a mail server that is down must not stop the
evaluation, nor a broken schedule the deliveries; the worker never dies of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.deliver import deliver_due
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.automation.schedule import fire_due
from patchpilot.automation.secrets import key_of
from patchpilot.automation.ticket_sync import sync_tickets
from patchpilot.clock import now_utc
from patchpilot.config import Settings
from patchpilot.db.tables import finding_events, playbook_cursor

log = logging.getLogger(__name__)


@dataclass(slots=True)
class AutomationRound:
    """What one round did (``errors``: the parts that failed, with their error)."""

    fired: int = 0  # schedules come due
    events: int = 0  # events evaluated
    queued: int = 0  # outbox rows written (digest rows among them: ``collected``)
    collected: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    postponed: int = 0  # over a target's rate limit
    tickets_closed: int = 0  # found closed in their tracker
    invalid: dict[str, str] = field(default_factory=dict)  # playbooks set aside
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


def events_waiting(engine: Engine) -> bool:
    """Whether an event follows the evaluation cursor (one indexed read).  No cursor: no
    playbook was ever stored, so nothing is evaluated (the first one stored sets it)."""
    with engine.connect() as conn:
        after = conn.execute(select(playbook_cursor.c.event_id)
                             .where(playbook_cursor.c.id == 1)).scalar()
        if after is None:
            return False
        return conn.execute(select(finding_events.c.id).where(finding_events.c.id > after)
                            .limit(1)).first() is not None


def _secrets_key(settings: Settings) -> str:
    try:
        return key_of(settings)
    except OSError as exc:
        # An unwritable data directory: actions naming a secret fail (and say so); the
        # rest are delivered.
        log.warning("automation: no secrets key (%s)", exc)
        return ""


def run_automation(engine: Engine, settings: Settings, now: datetime | None = None, *,
                   limit: int = 100) -> AutomationRound:
    """Fire due schedules, evaluate new events, deliver up to ``limit`` due rows."""
    now = now or now_utc()
    done = AutomationRound()
    try:
        done.fired = fire_due(engine, now)
    except Exception as exc:  # noqa: BLE001 - logged and reported; the round goes on
        log.exception("automation: schedules failed")
        done.errors.append(f"schedules: {exc.__class__.__name__}: {exc}")
    try:
        if events_waiting(engine):
            evaluated = evaluate_events(engine, now=now)
            done.events, done.queued = evaluated.events, evaluated.queued
            done.collected, done.invalid = evaluated.collected, evaluated.invalid
    except Exception as exc:  # noqa: BLE001 - as above
        log.exception("automation: evaluation failed")
        done.errors.append(f"evaluation: {exc.__class__.__name__}: {exc}")
    try:
        delivered = deliver_due(engine, DeliverySettings.from_settings(settings), now,
                                limit=limit, secrets_key=_secrets_key(settings))
        done.sent, done.failed = delivered.sent, delivered.failed
        done.dead, done.postponed = delivered.dead, delivered.postponed
    except Exception as exc:  # noqa: BLE001 - as above
        log.exception("automation: delivery failed")
        done.errors.append(f"delivery: {exc.__class__.__name__}: {exc}")
    try:
        synced = sync_tickets(engine, DeliverySettings.from_settings(settings),
                              _secrets_key(settings), now)
        done.tickets_closed = synced.closed
    except Exception as exc:  # noqa: BLE001 - as above
        log.exception("automation: ticket sync failed")
        done.errors.append(f"tickets: {exc.__class__.__name__}: {exc}")
    return done
