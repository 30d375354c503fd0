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

**Divided jobs.**  A heavy job (a re-match or a re-prioritisation of the whole estate)
splits itself into chunk jobs with :func:`split`, inside its own lease: the chunks are
queued and the parent waits (state ``waiting``, never leased while it waits) in one
transaction.  Chunks are leased, renewed, retried and expired like any job, by any worker
of any process.  Each chunk that finishes adds one to its parent's ``chunks_done`` (its
``result`` shows ``{"chunks": N, "chunks_done": n}`` meanwhile: the parent's progress);
the one whose increment reaches ``chunks_total`` -- the parent's row lock orders them, so
exactly one -- queues the parent again, and a worker runs its finishing step as an
ordinary lease (retried if that worker dies).  A chunk that fails for good fails its
parent (and cancels the chunks not yet taken): the whole is never done with a piece
missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import Engine, and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import asset_groups, jobs
from patchpilot.errors import PatchPilotError

QUEUED, LEASED, DONE, FAILED, CANCELLED = "queued", "leased", "done", "failed", "cancelled"
# A divided job whose chunks run (see the module docstring).
WAITING = "waiting"
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


class LeaseLost(PatchPilotError):
    """A job's lease passed to another worker (it expired) before the holder was done."""


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
        if done.rowcount == 1:
            return True
        # A job that split itself (split) waits for its chunks under its owner's name: the
        # heartbeat of its handler, still beating for a moment, has lost nothing.
        return conn.execute(select(jobs.c.id).where(
            jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.state == WAITING)
        ).first() is not None


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
    """Mark a leased job done (or failed with ``error``); False if the lease was lost.

    A chunk's end also counts on its parent (see the module docstring): the last chunk done
    queues the parent for its finishing step, a chunk failed for good fails the parent.
    """
    with engine.begin() as conn:
        row = conn.execute(select(jobs.c.attempts, jobs.c.max_attempts, jobs.c.parent_id)
                           .where(jobs.c.id == job_id, jobs.c.lease_owner == owner,
                                  jobs.c.state == LEASED)).first()
        if row is None:
            return False
        mine = (jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.state == LEASED)
        if error is not None and row.attempts < row.max_attempts:
            # Try again later (backoff grows with attempts).
            done = conn.execute(update(jobs).where(*mine).values(
                state=QUEUED, lease_owner=None, lease_expires_at=None, error=error,
                run_after=now_utc() + timedelta(seconds=5 * 2 ** row.attempts)))
            return done.rowcount == 1
        # Conditional on the lease still being ours (the read above ran before this
        # transaction took its lock on SQLite): a chunk must count on its parent once.
        done = conn.execute(update(jobs).where(*mine).values(
            state=FAILED if error is not None else DONE, finished_at=now_utc(),
            result=orjson.dumps(result or {}).decode(), error=error))
        if done.rowcount != 1:
            return False
        if row.parent_id is not None:
            if error is None:
                _chunk_done(conn, row.parent_id)
            else:
                _fail_parents(conn, now_utc())
    return True


def _chunk_done(conn: Connection, parent_id: int) -> None:
    """Count one more done chunk on ``parent_id``; queue the parent when it was the last.

    The increment takes the parent's row lock, so concurrent chunk ends (any process) are
    counted one after another, each seeing the count the previous one committed (on
    PostgreSQL an UPDATE that waited re-reads the row; SQLite has one writer).  Only the
    transaction that moves the parent out of ``waiting`` queues it: the finishing step is
    queued exactly once.
    """
    counted = conn.execute(update(jobs).where(jobs.c.id == parent_id)
                           .values(chunks_done=jobs.c.chunks_done + 1)
                           .returning(jobs.c.chunks_done, jobs.c.chunks_total,
                                      jobs.c.state)).first()
    if counted is None or counted.state != WAITING:
        return  # the parent failed, or was cancelled, meanwhile
    values: dict[str, Any] = {"result": orjson.dumps({"chunks": counted.chunks_total,
                                                      "chunks_done": counted.chunks_done})
                              .decode()}
    if counted.chunks_done >= counted.chunks_total:
        # The finishing step is a fresh lease of the parent (attempts from 0 again: the
        # split's attempt is spent), retried like any job if its worker dies.
        values.update(state=QUEUED, lease_owner=None, lease_expires_at=None, attempts=0,
                      run_after=now_utc())
    conn.execute(update(jobs).where(jobs.c.id == parent_id, jobs.c.state == WAITING)
                 .values(**values))


def _fail_parents(conn: Connection, now: datetime) -> None:
    """Waiting parents of chunks that failed for good fail too, naming a failed chunk, and
    their chunks not yet taken are cancelled (the whole cannot be done any more)."""
    chunk = jobs.alias("chunk")
    failed = (select(chunk.c.parent_id).where(chunk.c.state == FAILED,
                                              chunk.c.parent_id.is_not(None)))
    parents = list(conn.execute(select(jobs.c.id).where(
        jobs.c.state == WAITING, jobs.c.id.in_(failed))).scalars())
    for parent_id in parents:
        first = conn.execute(select(chunk.c.id, chunk.c.error).where(
            chunk.c.parent_id == parent_id, chunk.c.state == FAILED)
            .order_by(chunk.c.id).limit(1)).one()
        conn.execute(update(jobs).where(jobs.c.id == parent_id, jobs.c.state == WAITING)
                     .values(state=FAILED, finished_at=now,
                             error=f"chunk job {first.id} failed: {first.error}"))
        conn.execute(update(jobs).where(jobs.c.parent_id == parent_id,
                                        jobs.c.state == QUEUED)
                     .values(state=CANCELLED, finished_at=now))


def split(conn: Connection, job: Job, kind: str, payloads: list[dict[str, Any]]) -> int:
    """Divide the leased ``job`` into chunk jobs of ``kind``, one per payload (each gets
    ``"parent": job.id``), and make ``job`` wait for them -- in the caller's transaction,
    so the chunks exist iff the parent waits.  How many chunks; :class:`LeaseLost` when
    ``job`` is no longer this attempt's lease.

    The worker that ran the handler then finds the job no longer leased and leaves it
    (``finish`` answers False); the last chunk done queues it again, and its handler,
    seeing :func:`chunk_progress` complete, runs the finishing step.
    """
    if not payloads:
        raise ValueError(f"job {job.id}: a split needs at least one chunk")
    now = now_utc()
    waiting = conn.execute(update(jobs).where(
        jobs.c.id == job.id, jobs.c.state == LEASED, jobs.c.attempts == job.attempts)
        .values(state=WAITING, lease_expires_at=None, chunks_total=len(payloads),
                chunks_done=0, result=orjson.dumps({"chunks": len(payloads),
                                                    "chunks_done": 0}).decode()))
    if waiting.rowcount != 1:
        raise LeaseLost(f"job {job.id}: its lease was lost before it could split")
    priority = conn.execute(select(jobs.c.priority).where(jobs.c.id == job.id)).scalar_one()
    conn.execute(insert(jobs), [
        {"kind": kind, "payload": orjson.dumps({**payload, "parent": job.id}).decode(),
         "state": QUEUED, "parent_id": job.id, "priority": priority, "run_after": now,
         "attempts": 0, "max_attempts": 3, "created_at": now} for payload in payloads])
    return len(payloads)


def chunk_progress(conn: Connection, job_id: int) -> tuple[int, int] | None:
    """(chunks done, chunks in all) of a divided job, or None when it never split."""
    row = conn.execute(select(jobs.c.chunks_done, jobs.c.chunks_total)
                       .where(jobs.c.id == job_id)).first()
    if row is None or row.chunks_total is None:
        return None
    return int(row.chunks_done), int(row.chunks_total)


def any_under_way(conn: Connection, kinds: Iterable[str], now: datetime | None = None
                  ) -> bool:
    """Whether a server job of ``kinds`` is running, waiting for its chunks, or queued to
    run now (not one queued for later)."""
    now = now or now_utc()
    under_way = or_(jobs.c.state.in_((LEASED, WAITING)),
                    and_(jobs.c.state == QUEUED, jobs.c.run_after <= now))
    return conn.execute(select(jobs.c.id).where(
        under_way, jobs.c.agent_id.is_(None), jobs.c.kind.in_(sorted(kinds)))
        .limit(1)).first() is not None


def chunk_results(conn: Connection, job_id: int) -> list[dict[str, Any]]:
    """The results of a divided job's done chunks, in the order they were queued."""
    return [orjson.loads(r) for r in conn.execute(
        select(jobs.c.result).where(jobs.c.parent_id == job_id, jobs.c.state == DONE)
        .order_by(jobs.c.id)).scalars()]


def fail_expired(engine: Engine) -> int:
    """Jobs whose lease expired after their last attempt become failed (a chunk's parent
    with it); how many."""
    now = now_utc()
    with engine.begin() as conn:
        done = conn.execute(update(jobs).where(
            jobs.c.state == LEASED, jobs.c.lease_expires_at < now,
            jobs.c.attempts >= jobs.c.max_attempts).values(
            state=FAILED, finished_at=now, error="lease expired after the last attempt"))
        if done.rowcount:
            _fail_parents(conn, now)
    return done.rowcount
