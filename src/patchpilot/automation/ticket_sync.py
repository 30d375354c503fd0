"""Report back on findings the tickets closed in their trackers.

:func:`sync_tickets` polls the open tickets' state, each at most once per ``every``
(default 15 minutes, so a large number of tickets does not run into a tracker's rate
limit), and records one that a person closed in the tracker: ``tickets.state = 'closed'``,
``closed_at``, and an audit row ``ticket.closed_remotely``.  The finding page and the API
show it.  The tracker's settings (URL, token) are those of the playbook that opened the
ticket, at its current version; a ticket whose playbook no longer has that action is left
as it is.

It lives apart from :mod:`patchpilot.automation.tickets` because it reads playbooks, whose
validation imports the action registry, which imports the tracker modules, which import
``tickets``: in one module that would be an import cycle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update

from patchpilot.audit import audit
from patchpilot.automation.actions import DeliveryError, DeliverySettings
from patchpilot.automation.actions.registry import action_named
from patchpilot.automation.playbook import PlaybookError, parse_playbook
from patchpilot.automation.secrets import SecretError, UnknownSecret, read_secret
from patchpilot.automation.store import document_of
from patchpilot.automation.tickets import ACTOR, CLOSED, OPEN, TicketAction, mark_ticket
from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import playbooks, tickets

log = logging.getLogger(__name__)

EVERY = timedelta(minutes=15)


@dataclass(slots=True)
class Synced:
    """What one round did: tickets polled, found closed, and failed to poll."""

    checked: int = 0
    closed: int = 0
    failed: int = 0


def sync_tickets(engine: Engine, settings: DeliverySettings, secrets_key: str,
                 now: datetime | None = None, *, every: timedelta = EVERY,
                 limit: int = 200) -> Synced:
    """Poll up to ``limit`` open tickets not polled for ``every``; record those closed
    in their tracker."""
    now = now or now_utc()
    done = Synced()
    t = tickets
    with engine.connect() as conn:
        due = conn.execute(select(t.c.id, t.c.system, t.c.target, t.c.key, t.c.url,
                                  t.c.finding_id, t.c.playbook_id, t.c.updated_at)
                           .where(t.c.state == OPEN, t.c.updated_at <= now - every)
                           .order_by(t.c.updated_at, t.c.id).limit(limit)).all()
    for row in due:
        with engine.begin() as conn:
            # Claimed by moving updated_at (compare-and-set): two workers never poll one
            # ticket at once, and a failing tracker is asked again only after ``every``.
            if conn.execute(update(t).where(t.c.id == row.id, t.c.state == OPEN,
                                            t.c.updated_at == row.updated_at)
                            .values(updated_at=now)).rowcount != 1:
                continue
            found = None
            if row.playbook_id is not None:
                found = conn.execute(select(playbooks.c.version).where(
                    playbooks.c.id == row.playbook_id)).scalar()
            document = document_of(conn, row.playbook_id, found) if found else None
        action = action_named(row.system)
        if document is None or not isinstance(action, TicketAction):
            continue
        try:
            steps = [s.with_ for s in parse_playbook(document).actions
                     if s.type == row.system and action.target(s.with_, {}) == row.target]
            if not steps:
                continue
            with_ = steps[0]
            with engine.connect() as conn:
                token = read_secret(conn, str(with_["token_secret"]), secrets_key)
            remote = action.tracker.fetch(action.session(with_, token, settings), row.key)
        except (DeliveryError, PlaybookError, SecretError, UnknownSecret) as exc:
            log.warning("ticket %s (%s %s): cannot read its state: %s", row.id, row.system,
                        row.key, exc)
            done.failed += 1
            continue
        done.checked += 1
        if remote.closed:
            with engine.begin() as conn:
                mark_ticket(conn, row.id, CLOSED, now)
                audit(conn, ACTOR, "ticket.closed_remotely", f"ticket:{row.id}",
                      {"system": row.system, "key": row.key, "url": row.url,
                       "finding_id": row.finding_id,
                       "last_polled": aware(row.updated_at).isoformat()})  # type: ignore[union-attr]
            done.closed += 1
    return done
