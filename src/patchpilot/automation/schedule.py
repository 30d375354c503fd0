"""Schedule triggers: a playbook's ``trigger.schedule`` comes due, once.

An enabled playbook with a schedule keeps its next due moment in ``playbooks.next_run_at``
(set by ``store`` when it is stored or enabled).  :func:`fire_due` -- run by every idle
worker -- claims a due run by compare-and-set (``UPDATE … WHERE next_run_at = :seen``) and,
in the same transaction, writes one ``scheduled`` finding event naming the playbook and
the due moment.  However many workers tick at once, one of them wins each run; the event
then goes through the ordinary evaluation (``evaluate.matches`` lets only the playbook it
names act on it), so a scheduled action is queued, delivered and retried like any other.

The next run is computed from *now*, not from the missed moment: a server that was down
over a week of daily runs fires once when it comes back, not seven times (the report
schedules do the same).  Occurrences are read on the schedule's own wall clock
(``scans.schedules.next_run``: daylight-saving gaps and repeats come out right).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update

from patchpilot.automation.playbook import PlaybookError, Schedule, parse_playbook
from patchpilot.clock import aware, iso, now_utc
from patchpilot.db.tables import playbook_versions, playbooks
from patchpilot.findings.events import SCHEDULED, record_event
from patchpilot.scans.schedules import CRON, ScheduleError, next_run

log = logging.getLogger(__name__)


def next_due(schedule: Schedule, after: datetime) -> datetime | None:
    """The schedule's first occurrence strictly after ``after`` (UTC), None if none."""
    return next_run(CRON, schedule.cron, schedule.timezone, after)


def fire_due(engine: Engine, now: datetime | None = None) -> int:
    """Write the ``scheduled`` event of every enabled playbook whose run is due, each run
    exactly once whatever runs at the same time; how many fired.

    Cheap when nothing is due: one read of the (small) playbooks table."""
    now = (now or now_utc()).astimezone(UTC)
    p, v = playbooks, playbook_versions
    with engine.connect() as conn:
        due = conn.execute(
            select(p.c.id, p.c.name, p.c.next_run_at, v.c.document)
            .join(v, (v.c.playbook_id == p.c.id) & (v.c.version == p.c.version))
            .where(p.c.enabled.is_(True), p.c.next_run_at <= now)
            .order_by(p.c.next_run_at, p.c.id)).all()
    fired = 0
    for row in due:
        try:
            schedule = parse_playbook(row.document, source=f"playbook {row.name}").schedule
            following = next_due(schedule, now) if schedule is not None else None
        except (PlaybookError, ScheduleError) as exc:
            # A stored document that no longer validates: no further run until it is
            # stored again (which sets the next run afresh).
            log.warning("playbook %s: schedule set aside: %s", row.name, exc)
            schedule, following = None, None
        with engine.begin() as conn:
            claimed = conn.execute(update(p).where(
                p.c.id == row.id, p.c.next_run_at == row.next_run_at, p.c.enabled.is_(True))
                .values(next_run_at=following)).rowcount
            if claimed != 1 or schedule is None:
                continue  # another worker claimed this run first (or it cannot run)
            record_event(conn, SCHEDULED, at=now,
                         detail={"playbook": row.name, "due": iso(aware(row.next_run_at))})
            fired += 1
    return fired
