"""Jobs are rows; workers take them with leases that expire.

``lease`` claims the oldest ready job atomically: ``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL lets many workers take different jobs without waiting on each other; SQLite
has one writer at a time, so an immediate transaction does the same.  A lease has an
expiry: a worker that dies mid-job loses it, and the job is taken again (up to
``max_attempts``), never lost.

Scan jobs (``SCAN_KINDS``) of an asset group are throttled: ``lease`` never hands one out
while the group already has ``asset_groups.max_concurrent_scans`` of them leased, so a
site's network and servers see at most that many scans at once -- whoever runs them (the
server's workers for SSH targets, the agents for their own hosts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import Engine, and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import asset_groups, jobs

QUEUED, LEASED, DONE, FAILED, CANCELLED = "queued", "leased", "done", "failed", "cancelled"
# The job kinds that scan a host, and so count against a group's max_concurrent_scans.
SCAN_KINDS = ("collect", "ssh_scan", "discover")


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
    return and_(cond, or_(jobs.c.group_id.is_(None), jobs.c.kind.not_in(SCAN_KINDS),
                          _group_scans(jobs.c.group_id, now) < _group_limit(jobs.c.group_id)))


def _group_scans(group_id: Any, now: datetime):  # type: ignore[no-untyped-def]
    """How many scan jobs of ``group_id`` hold a live lease now (a scalar subquery)."""
    active = jobs.alias("active")
    return (select(func.count()).select_from(active)
            .where(active.c.group_id == group_id, active.c.kind.in_(SCAN_KINDS),
                   active.c.state == LEASED, active.c.lease_expires_at >= now)
            .scalar_subquery())


def _group_limit(group_id: Any):  # type: ignore[no-untyped-def]
    return (select(asset_groups.c.max_concurrent_scans)
            .where(asset_groups.c.id == group_id).scalar_subquery())


def lease(engine: Engine, owner: str, *, kinds: tuple[str, ...] | None = None,
          agent_id: int | None = None, seconds: int = 120) -> Job | None:
    """Claim the next ready job for ``owner`` (a worker, or agent ``agent_id``), or None."""
    # A lost race for a group's last scan slot (PostgreSQL only, see _claim) retries: the
    # next attempt sees the winner's lease and skips that group.
    for _ in range(5):
        claimed = _claim(engine, owner, kinds, agent_id, seconds)
        if claimed is not False:
            return claimed
    return None


def _claim(engine: Engine, owner: str, kinds: tuple[str, ...] | None, agent_id: int | None,
           seconds: int) -> Job | None | Literal[False]:
    """One attempt of ``lease``: the job, None (nothing ready), False (lost a race)."""
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
        if (conn.dialect.name == "postgresql" and row.group_id is not None
                and row.kind in SCAN_KINDS):
            # SKIP LOCKED lets two workers each see one free slot and both take it.  The
            # group row's lock serialises the claims of one group; after waiting on it,
            # READ COMMITTED shows the other claim, so the recount is exact.
            limit = conn.execute(select(asset_groups.c.max_concurrent_scans)
                                 .where(asset_groups.c.id == row.group_id)
                                 .with_for_update()).scalar()
            busy = conn.execute(select(_group_scans(row.group_id, now))).scalar_one()
            if limit is not None and busy >= limit:
                return False
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


# How long a progress note waits for SQLite's write lock (ms): a note is worth little, and
# a caller watching a child process must not stall behind another writer's transaction.
PROGRESS_WAIT_MS = 200


def progress(engine: Engine, job_id: int, result: dict[str, Any]) -> bool:
    """Record how far a leased job has come, as its ``result`` until it finishes (which
    replaces it); False when the job is no longer leased.  On SQLite it waits at most
    :data:`PROGRESS_WAIT_MS` for the write lock (then ``OperationalError``: the caller
    skips this note)."""
    with engine.begin() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={PROGRESS_WAIT_MS}")
        try:
            done = conn.execute(update(jobs).where(jobs.c.id == job_id,
                                                   jobs.c.state == LEASED)
                                .values(result=orjson.dumps(result).decode()))
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA busy_timeout=30000")  # make_engine's timeout
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
