"""``patchpilot worker``: take jobs from the database and run them.

The loop only: what each job kind does is :data:`patchpilot.pipeline.HANDLERS`, and what
falls due periodically is :func:`patchpilot.pipeline.tick`.  (It sits above the pipeline,
beside the server and the CLI that start it: a loop inside ``scans/`` running the
pipeline's table would import upwards.)

Any number of workers may run, on any machines that reach the database; the embedded
default runs one inside the server.  A pool (:func:`start_pool`: the server's embedded
workers, ``patchpilot worker``) has four lanes: the long jobs (a feed update, a re-match of
the estate) run in a thread of their own, and so do the reports, so they never keep the
quick ones waiting; the chunks of divided jobs (``pipeline.CHUNK_KINDS``) have as many
threads as the quick jobs, so every worker process -- and every thread of one -- takes its
share of a large re-match or re-prioritisation.  A fifth thread takes no job: it does the
idle work (the upkeep, the stored patch plan's rebuild, the tick), which may run for
minutes on a large estate, so no job ever waits behind it.

A worker renews its lease while a job runs (a heartbeat), so a long job is never taken
twice, while a worker that dies stops renewing and its job is taken again once the lease
expires (``PATCHPILOT_WORKER_LEASE_SECONDS``, default 120).  Idle workers also tick
(``pipeline.tick``), which is safe from any number of them at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from patchpilot import pipeline, queue
from patchpilot.config import load_settings
from patchpilot.errors import PatchPilotError
from patchpilot.pipeline import HANDLERS

__all__ = ["CHUNK_LANE", "HANDLERS", "QUICK_LANE", "REPORT_LANE", "SLOW_LANE", "Backoff",
           "lease_seconds",
           "run_forever", "run_once", "run_scheduler", "start_pool", "worker_name"]

log = logging.getLogger(__name__)

# How often an idle worker (and the server's scheduler thread) runs the pipeline's tick.
DEFAULT_TICK_SECONDS = 30.0
# The longest wait between rounds while the database fails (doubling up to it).
MAX_BACKOFF_SECONDS = 60.0
# How often an idle worker does the pipeline's upkeep.
EXPIRY_SECONDS = 300.0


def lease_seconds() -> int:
    """The lease a worker takes: ``PATCHPILOT_WORKER_LEASE_SECONDS`` (config.Settings) or
    120 (at least 2)."""
    return load_settings().worker_lease_seconds


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


def run_once(engine: Engine, owner: str | None = None, *, seconds: int | None = None,
             kinds: tuple[str, ...] | None = None) -> queue.Job | None:
    """Take one ready job (of ``kinds``; default: every kind of HANDLERS) and run it; the
    job, or None when there was none."""
    owner = owner or worker_name()
    seconds = seconds or lease_seconds()
    job = queue.lease(engine, owner, kinds=kinds or tuple(HANDLERS), seconds=seconds)
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


def run_forever(engine: Engine, stop: threading.Event, *, idle_seconds: float = 0.5,
                tick_seconds: float | None = DEFAULT_TICK_SECONDS,
                max_backoff: float = MAX_BACKOFF_SECONDS,
                kinds: tuple[str, ...] | None = None, idle_work: bool = True) -> None:
    """Run jobs (of ``kinds``; default: every kind; ``()``: none) until ``stop`` is set,
    sleeping briefly when there is nothing to do.

    With ``idle_work``, a round without a job also does the pipeline's idle work (expired
    leases, :func:`pipeline.when_idle` -- which may rebuild the stored patch plan for
    minutes on a large estate -- and the upkeep).  A pool gives it a thread of its own
    (``kinds=()``), so that every lane is always free to take its jobs.

    Every ``tick_seconds`` (None: never) an idle worker also runs the pipeline's tick,
    so that ``patchpilot worker`` processes alone keep schedules and feed updates running.

    When the database fails (restarting, unreachable, read-only) the worker waits twice
    as long after each failed round, up to ``max_backoff`` seconds, and logs one line
    each time the wait changes -- not a traceback every half second -- and one line when
    the database answers again.
    """
    owner = worker_name()
    seconds = lease_seconds()
    last_tick = last_upkeep = float("-inf")
    backoff = Backoff(idle_seconds, max_backoff)
    while not stop.is_set():
        try:
            job = run_once(engine, owner, seconds=seconds, kinds=kinds) if kinds != () else None
        except Exception as exc:  # noqa: BLE001 - the loop must outlive any one failure
            stop.wait(backoff.failed(exc, "taking a job"))
            continue
        if job is None and not idle_work:
            stop.wait(idle_seconds)
        elif job is None:
            try:
                queue.fail_expired(engine)
                pipeline.when_idle(engine)
                if time.monotonic() - last_upkeep >= EXPIRY_SECONDS:
                    last_upkeep = time.monotonic()
                    pipeline.upkeep(engine)
                if tick_seconds is not None and time.monotonic() - last_tick >= tick_seconds:
                    last_tick = time.monotonic()
                    pipeline.tick(engine)
            except Exception as exc:  # noqa: BLE001 - as above
                stop.wait(backoff.failed(exc, "idle work"))
                continue
            backoff.succeeded()
            stop.wait(idle_seconds)
        else:
            backoff.succeeded()
            time.sleep(0)


# The lanes of a pool: the long jobs (pipeline.SLOW_KINDS), the reports
# (pipeline.REPORT_KINDS), the chunks of divided jobs (pipeline.CHUNK_KINDS) and every
# other kind.
SLOW_LANE = tuple(kind for kind in HANDLERS if kind in pipeline.SLOW_KINDS)
REPORT_LANE = tuple(kind for kind in HANDLERS if kind in pipeline.REPORT_KINDS)
CHUNK_LANE = tuple(kind for kind in HANDLERS if kind in pipeline.CHUNK_KINDS)
QUICK_LANE = tuple(kind for kind in HANDLERS if kind not in
                   pipeline.SLOW_KINDS | pipeline.REPORT_KINDS | pipeline.CHUNK_KINDS)


def start_pool(engine: Engine, stop: threading.Event, threads: int = 1, *,
               tick_seconds: float | None = DEFAULT_TICK_SECONDS,
               name: str = "worker") -> list[threading.Thread]:
    """Start ``threads`` workers for the quick jobs, ``threads`` for the chunks of divided
    jobs, one for the long ones, one for the reports and one for the idle work; the
    started threads (they end once ``stop`` is set).

    A ``feed_update`` (a download and a load of every feed, then a re-match of the
    estate) or a ``rematch`` job runs for minutes.  Taken by the only worker there is --
    the server's embedded default -- it would hold every upload's ``match`` job, every
    scan and report for that long.  So the long kinds get a lane of their own: a thread
    that takes only them (one at a time: a second feed update behind the first waits,
    as it should), while the other ``threads`` never take them and stay free for the
    rest.  Separate lanes rather than priorities: a priority decides only which job is
    taken next, and a long job once taken would still occupy its worker.  Reports
    (``report_file``, the scheduled ``report`` mail) have a third lane for the same reason:
    a whole-estate XLSX takes minutes, and one at a time keeps the pool within one report
    memory ceiling (``PATCHPILOT_REPORT_MEMORY_MB``).

    The chunks of a divided re-match or re-prioritisation are many jobs of seconds each,
    and the point of them is to run side by side: in the long jobs' single thread they
    could not, and in the quick lane a whole estate's chunks would occupy every quick
    thread for minutes.  So they have ``threads`` threads of their own: a pool of N runs N
    chunks at once (on PostgreSQL; SQLite writes one at a time) and N quick jobs beside.

    No lane that takes jobs does the idle work or ticks: on 10 million findings the idle
    work's plan rebuild took minutes, and the job queued meanwhile for the lane doing it
    waited as long (a divided re-match's finishing step 279 s in the slow lane, then the
    re-prioritisation 224 s in the quick one).  It has the ``upkeep`` thread, which takes
    no job.
    """
    lanes = [(f"{name}-{n}", QUICK_LANE) for n in range(threads)]
    lanes += [(f"{name}-chunks-{n}", CHUNK_LANE) for n in range(threads)]
    lanes += [(f"{name}-slow", SLOW_LANE), (f"{name}-reports", REPORT_LANE)]
    pool = [threading.Thread(target=run_forever, args=(engine, stop), daemon=True,
                             name=thread_name, kwargs={"tick_seconds": None, "kinds": kinds,
                                                       "idle_work": False})
            for thread_name, kinds in lanes]
    pool.append(threading.Thread(target=run_forever, args=(engine, stop), daemon=True,
                                 name=f"{name}-upkeep",
                                 kwargs={"tick_seconds": tick_seconds, "kinds": ()}))
    for thread in pool:
        thread.start()
    return pool


def run_scheduler(engine: Engine, stop: threading.Event,
                  every: float = DEFAULT_TICK_SECONDS) -> None:
    """Tick every ``every`` seconds until ``stop`` is set (the server's scheduler thread)."""
    while not stop.is_set():
        try:
            pipeline.tick(engine)
        except Exception:
            log.exception("scheduler tick failed")  # the database may be restarting
        stop.wait(every)


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
