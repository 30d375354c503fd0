"""``patchpilot worker``: take jobs from the database and run them.

One handler per job kind, in one table.  Any number of workers may run, on any machines
that reach the database; the embedded default runs one inside the server.  A worker
renews its lease while a job runs (a heartbeat), so a long job is never taken twice,
while a worker that dies stops renewing and its job is taken again once the lease
expires (``PATCHPILOT_WORKER_LEASE_SECONDS``, default 120).  Idle workers also tick the
scheduler (``scans.scheduler.tick``), which is safe from any number of them at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from patchpilot import queue
from patchpilot.db.engine import optimize
from patchpilot.db.tables import inventories
from patchpilot.errors import PatchPilotError
from patchpilot.findings.lifecycle import apply_findings
from patchpilot.findings.scan import scan_inventory
from patchpilot.findings.summary import refresh_stale
from patchpilot.inventory.model import Inventory
from patchpilot.scans.rematch import run_rematch
from patchpilot.scans.scheduler import run_ssh_scan, tick
from patchpilot.scans.sweeps import close_sweeps, update_sweeps_for_asset
from patchpilot.scoring.apply import reprioritise, run_prioritise

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 120
# How often an idle worker runs the scheduler's tick.
DEFAULT_TICK_SECONDS = 30.0
# The longest wait between rounds while the database fails (doubling up to it).
MAX_BACKOFF_SECONDS = 60.0


def lease_seconds() -> int:
    """The lease a worker takes: ``$PATCHPILOT_WORKER_LEASE_SECONDS`` or 120 (at least 2)."""
    raw = os.environ.get("PATCHPILOT_WORKER_LEASE_SECONDS", "")
    try:
        return max(2, int(raw)) if raw else DEFAULT_LEASE_SECONDS
    except ValueError as exc:
        raise PatchPilotError(f"PATCHPILOT_WORKER_LEASE_SECONDS: {raw!r} is not a whole number "
                              "of seconds") from exc

Handler = Callable[[Engine, queue.Job], dict[str, Any]]


def run_match(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """Match a stored inventory and update its asset's findings."""
    inventory_id = int(job.payload["inventory_id"])
    with engine.connect() as conn:
        row = conn.execute(select(inventories.c.asset_id, inventories.c.document)
                           .where(inventories.c.id == inventory_id)).one()
    inventory = Inventory.from_json(row.document, f"inventory {inventory_id}")
    result = scan_inventory(engine, inventory)
    counts = apply_findings(engine, row.asset_id, list(result.findings),
                            complete=inventory.complete)
    with engine.begin() as conn:
        # A fresher inventory settles the asset in any sweep waiting for it.
        update_sweeps_for_asset(conn, row.asset_id)
    with engine.begin() as conn:
        # New and reopened findings get their priority, reason and due date at once.
        reprioritise(conn, asset_id=row.asset_id)
    return {"asset_id": row.asset_id, "findings": len(result.findings), "new": counts.new,
            "reopened": counts.reopened, "fixed": counts.fixed,
            "undetermined": len(result.undetermined)}


# The one table of job kinds this worker runs; other modules add theirs with register().
HANDLERS: dict[str, Handler] = {"match": run_match, "ssh_scan": run_ssh_scan}


def register(kind: str, handler: Handler) -> None:
    """Add a job kind."""
    HANDLERS[kind] = handler


def worker_name() -> str:
    """host:pid:thread, unique per running worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _heartbeat(engine: Engine, job_id: int, owner: str, seconds: int,
               done: threading.Event) -> None:
    # Renew at a third of the lease: two renewals may fail (a database restart) before
    # another worker may take the job.
    while not done.wait(seconds / 3):
        try:
            if not queue.extend(engine, job_id, owner, seconds):
                log.warning("job %s: lease lost while running", job_id)
                return
        except Exception:
            log.exception("job %s: lease renewal failed", job_id)


def run_once(engine: Engine, owner: str | None = None, *,
             seconds: int | None = None) -> queue.Job | None:
    """Take one ready job and run it; the job, or None when there was none."""
    owner = owner or worker_name()
    seconds = seconds or lease_seconds()
    job = queue.lease(engine, owner, kinds=tuple(HANDLERS), seconds=seconds)
    if job is None:
        return None
    done = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(engine, job.id, owner, seconds, done),
                            daemon=True, name=f"lease-{job.id}")
    beat.start()
    try:
        try:
            result = HANDLERS[job.kind](engine, job)
        finally:
            done.set()
            beat.join()
    except (PatchPilotError, KeyError, ValueError) as exc:
        log.warning("job %s (%s) failed: %s", job.id, job.kind, exc)
        queue.finish(engine, job.id, owner, error=f"{exc.__class__.__name__}: {exc}")
    except Exception as exc:
        log.exception("job %s (%s) crashed", job.id, job.kind)
        queue.finish(engine, job.id, owner, error=f"{exc.__class__.__name__}: {exc}")
    else:
        queue.finish(engine, job.id, owner, result=result)
    return job


EXPIRY_SECONDS = 300.0


def run_forever(engine: Engine, stop: threading.Event, *, idle_seconds: float = 0.5,
                tick_seconds: float | None = DEFAULT_TICK_SECONDS,
                max_backoff: float = MAX_BACKOFF_SECONDS) -> None:
    """Run jobs until ``stop`` is set, sleeping briefly when there is nothing to do.

    Every ``tick_seconds`` (None: never) an idle worker also runs the scheduler's tick,
    so that ``patchpilot worker`` processes alone keep schedules running.

    When the database fails (restarting, unreachable, read-only) the worker waits twice
    as long after each failed round, up to ``max_backoff`` seconds, and logs one line
    each time the wait changes -- not a traceback every half second -- and one line when
    the database answers again.
    """
    owner = worker_name()
    seconds = lease_seconds()
    last_tick = last_expiry = float("-inf")
    backoff = Backoff(idle_seconds, max_backoff)
    while not stop.is_set():
        try:
            job = run_once(engine, owner, seconds=seconds)
        except Exception as exc:  # noqa: BLE001 - the loop must outlive any one failure
            stop.wait(backoff.failed(exc, "taking a job"))
            continue
        if job is None:
            try:
                queue.fail_expired(engine)
                close_sweeps(engine)  # deadlines and failed refreshes of running sweeps
                if time.monotonic() - last_expiry >= EXPIRY_SECONDS:
                    # Risk acceptances that expired reopen their findings (idempotent, so
                    # several workers doing it at once is harmless).
                    last_expiry = time.monotonic()
                    run_expire_decisions(engine, None)  # type: ignore[arg-type]
                    # Findings whose due date passed since their asset's counts were made.
                    with engine.begin() as conn:
                        refresh_stale(conn)
                    optimize(engine)  # planner statistics (SQLite) after the day's writes
                if tick_seconds is not None and time.monotonic() - last_tick >= tick_seconds:
                    last_tick = time.monotonic()
                    tick(engine)
            except Exception as exc:  # noqa: BLE001 - as above
                stop.wait(backoff.failed(exc, "idle work"))
                continue
            backoff.succeeded()
            stop.wait(idle_seconds)
        else:
            backoff.succeeded()
            time.sleep(0)


class Backoff:
    """The worker's wait after failed rounds: doubling from ``base`` up to ``cap`` seconds,
    logged once per change of the wait."""

    def __init__(self, base: float, cap: float) -> None:
        self.base = max(base, 0.01)
        self.cap = max(cap, self.base)
        self.delay = 0.0  # 0: the last round succeeded

    def failed(self, exc: Exception, doing: str) -> float:
        """The seconds to wait after ``exc``; logs when the wait changes."""
        delay = min(self.cap, self.delay * 2 if self.delay else self.base)
        if delay != self.delay:
            if isinstance(exc, DBAPIError):
                said = str(exc.orig).splitlines()[0] if str(exc.orig) else ""
                log.warning("worker: database error while %s (%s: %s); retrying in %.3g s",
                            doing, exc.__class__.__name__, said, delay)
            else:
                # Not the database: a defect worth its traceback (once per change).
                log.exception("worker: error while %s; retrying in %.3g s", doing, delay)
        self.delay = delay
        return delay

    def succeeded(self) -> None:
        """A round went through: back to normal, said once."""
        if self.delay:
            log.warning("worker: the database answers again; back to work")
        self.delay = 0.0


def run_expire_decisions(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """Reopen findings whose risk acceptance expired (and re-apply every decision)."""
    from patchpilot.findings.triage import reapply_decisions

    with engine.begin() as conn:
        return {"changed": reapply_decisions(conn)}


register("expire_decisions", run_expire_decisions)
register("rematch", run_rematch)
register("prioritise", run_prioritise)


# A noop sleeps at most this long: enough to hold a lease in an operational check.
_NOOP_MAX_SLEEP = 300.0


def run_noop(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """Do nothing (after sleeping ``payload["sleep"]`` seconds): checks that workers run.

    A job kind every worker process knows, so an operator -- or a test starting separate
    ``patchpilot worker`` processes -- can check the queue end to end.
    """
    pause = min(max(float(job.payload.get("sleep", 0.0)), 0.0), _NOOP_MAX_SLEEP)
    if pause:
        time.sleep(pause)
    return {"slept": pause, "attempt": job.attempts}


register("noop", run_noop)


def run_report(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """Generate a scheduled report and mail it (``reports.mail``; imported when run, so a
    worker that never sends a report never loads WeasyPrint)."""
    from patchpilot.reports.mail import run_report as run

    return run(engine, job)


register("report", run_report)
