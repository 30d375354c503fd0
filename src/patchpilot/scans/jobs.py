"""Jobs are rows; workers take them with leases that expire.

``lease`` claims the oldest ready job atomically: ``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL lets many workers take different jobs without waiting on each other; SQLite
has one writer at a time, so an immediate transaction does the same.  A lease has an
expiry: a worker that dies mid-job loses it, and the job is taken again (up to
``max_attempts``), never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.engine import Connection

from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import jobs

QUEUED, LEASED, DONE, FAILED, CANCELLED = "queued", "leased", "done", "failed", "cancelled"


@dataclass(frozen=True, slots=True)
class Job:
    """A job a worker (or an agent) holds."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    agent_id: int | None
    asset_id: int | None
    group_id: int | None
    deadline: datetime | None


def enqueue(conn: Connection, kind: str, payload: dict[str, Any], *,
            agent_id: int | None = None, asset_id: int | None = None,
            group_id: int | None = None, run_after: datetime | None = None,
            deadline: datetime | None = None, priority: int = 0,
            max_attempts: int = 3) -> int:
    """Add a job (inside the caller's transaction, so it exists iff the caller commits)."""
    now = now_utc()
    return int(conn.execute(insert(jobs).values(
        kind=kind, payload=orjson.dumps(payload).decode(), state=QUEUED, agent_id=agent_id,
        asset_id=asset_id, group_id=group_id, priority=priority, run_after=run_after or now,
        deadline=deadline, attempts=0, max_attempts=max_attempts, created_at=now)
        .returning(jobs.c.id)).scalar_one())


def _ready(now: datetime, kinds: tuple[str, ...] | None, agent_id: int | None):  # type: ignore[no-untyped-def]
    expired = and_(jobs.c.state == LEASED, jobs.c.lease_expires_at < now,
                   jobs.c.attempts < jobs.c.max_attempts)
    cond = and_(or_(jobs.c.state == QUEUED, expired), jobs.c.run_after <= now,
                jobs.c.agent_id.is_(None) if agent_id is None else jobs.c.agent_id == agent_id)
    if kinds:
        cond = and_(cond, jobs.c.kind.in_(kinds))
    return cond


def lease(engine: Engine, owner: str, *, kinds: tuple[str, ...] | None = None,
          agent_id: int | None = None, seconds: int = 120) -> Job | None:
    """Claim the next ready job for ``owner`` (a worker, or agent ``agent_id``), or None."""
    now = now_utc()
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # Take the write lock before reading, so two workers never pick the same row.
            conn.exec_driver_sql("UPDATE jobs SET id = id WHERE 0")
        stmt = (select(jobs).where(_ready(now, kinds, agent_id))
                .order_by(jobs.c.priority.desc(), jobs.c.id).limit(1))
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        row = conn.execute(stmt).first()
        if row is None:
            return None
        conn.execute(update(jobs).where(jobs.c.id == row.id).values(
            state=LEASED, lease_owner=owner, lease_expires_at=now + timedelta(seconds=seconds),
            attempts=row.attempts + 1))
    return Job(row.id, row.kind, orjson.loads(row.payload), row.attempts + 1, row.agent_id,
               row.asset_id, row.group_id, aware(row.deadline))


def extend(engine: Engine, job_id: int, owner: str, seconds: int = 120) -> bool:
    """Renew a lease (a heartbeat during long work); False if it was lost."""
    with engine.begin() as conn:
        done = conn.execute(update(jobs).where(
            jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.state == LEASED).values(
            lease_expires_at=now_utc() + timedelta(seconds=seconds)))
    return done.rowcount == 1


def finish(engine: Engine, job_id: int, owner: str, result: dict[str, Any] | None = None,
           error: str | None = None) -> bool:
    """Mark a leased job done (or failed with ``error``); False if the lease was lost."""
    with engine.begin() as conn:
        row = conn.execute(select(jobs.c.attempts, jobs.c.max_attempts)
                           .where(jobs.c.id == job_id, jobs.c.lease_owner == owner,
                                  jobs.c.state == LEASED)).first()
        if row is None:
            return False
        if error is not None and row.attempts < row.max_attempts:
            # Try again later (backoff grows with attempts).
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(
                state=QUEUED, lease_owner=None, lease_expires_at=None, error=error,
                run_after=now_utc() + timedelta(seconds=5 * 2 ** row.attempts)))
            return True
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(
            state=FAILED if error is not None else DONE, finished_at=now_utc(),
            result=orjson.dumps(result or {}).decode(), error=error))
    return True


def fail_expired(engine: Engine) -> int:
    """Jobs whose lease expired after their last attempt become failed; how many."""
    now = now_utc()
    with engine.begin() as conn:
        done = conn.execute(update(jobs).where(
            jobs.c.state == LEASED, jobs.c.lease_expires_at < now,
            jobs.c.attempts >= jobs.c.max_attempts).values(
            state=FAILED, finished_at=now, error="lease expired after the last attempt"))
    return done.rowcount
