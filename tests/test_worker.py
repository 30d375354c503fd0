"""Many workers, one queue: every job done exactly once; a dead worker's job is retaken.

Threads share this process's handler table, so they run a kind registered by the test;
separate ``patchpilot worker`` processes cannot see it and run the real ``noop`` kind.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from bench.common import stop_process
from sqlalchemy import Engine, select

from patchpilot import pipeline, queue, worker
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import jobs
from tests.builders.processes import env_for, wait_for

JOBS = 40


def _enqueue(engine: Engine, kind: str, n: int, payload: dict[str, object] | None = None
             ) -> list[int]:
    with engine.begin() as conn:
        return [queue.enqueue(conn, kind, dict(payload or {}, n=k)) for k in range(n)]


def _rows(engine: Engine) -> list:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return list(conn.execute(select(jobs).order_by(jobs.c.id)).all())


def test_two_worker_threads_run_every_job_once(engine: Engine,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[tuple[int, str]] = []
    lock = threading.Lock()

    def record(_engine: Engine, job: queue.Job) -> dict[str, object]:
        time.sleep(0.01)  # long enough for the two workers to interleave
        with lock:
            ran.append((job.id, threading.current_thread().name))
        return {"n": job.payload["n"]}

    monkeypatch.setitem(worker.HANDLERS, "test_record", record)
    ids = _enqueue(engine, "test_record", JOBS)
    stop = threading.Event()
    threads = [threading.Thread(target=worker.run_forever, args=(engine, stop),
                                kwargs={"idle_seconds": 0.05, "tick_seconds": None},
                                name=f"w{n}") for n in range(2)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: all(r.state == "done" for r in _rows(engine)), timeout=60, every=0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert sorted(job_id for job_id, _ in ran) == ids  # each exactly once
    assert {name for _, name in ran} == {"w0", "w1"}  # both took a share
    rows = _rows(engine)
    assert [r.attempts for r in rows] == [1] * JOBS  # never leased twice
    assert [orjson.loads(r.result) for r in rows] == [{"n": k} for k in range(JOBS)]


def test_a_job_whose_lease_expired_is_taken_again(engine: Engine) -> None:
    [job_id] = _enqueue(engine, "noop", 1)
    dead = queue.lease(engine, "dead-worker", kinds=("noop",), seconds=1)
    assert dead is not None and dead.id == job_id
    assert worker.run_once(engine, "live-worker", seconds=5) is None  # still leased
    time.sleep(1.2)
    retaken = worker.run_once(engine, "live-worker", seconds=5)
    assert retaken is not None and (retaken.id, retaken.attempts) == (job_id, 2)
    [row] = _rows(engine)
    assert (row.state, row.lease_owner, orjson.loads(row.result)) == (
        "done", "live-worker", {"slept": 0.0, "attempt": 2})
    # The dead worker, had it come back, could no longer finish the job.
    assert queue.finish(engine, job_id, "dead-worker", result={}) is False


def test_heartbeat_keeps_a_long_job_from_being_taken_twice(engine: Engine) -> None:
    [job_id] = _enqueue(engine, "noop", 1, {"sleep": 3.0})
    done = threading.Thread(target=worker.run_once, args=(engine, "slow-worker"),
                            kwargs={"seconds": 2})
    done.start()
    try:
        wait_for(lambda: _rows(engine)[0].state == "leased", timeout=10, every=0.05)
        time.sleep(2.5)  # past the first lease: only renewals keep it
        assert queue.lease(engine, "other", kinds=("noop",), seconds=2) is None
    finally:
        done.join(timeout=10)
    [row] = _rows(engine)
    assert (row.id, row.state, row.attempts, row.lease_owner) == (
        job_id, "done", 1, "slow-worker")


# --- separate processes --------------------------------------------------------------------

def _start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "patchpilot.cli", "worker"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_worker_processes_run_every_job_once(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    upgrade_schema(engine)
    ids = _enqueue(engine, "noop", JOBS, {"sleep": 0.05})
    env = env_for(database_url, tmp_path)
    procs = [_start_worker(env) for _ in range(2)]
    try:
        wait_for(lambda: all(r.state == "done" for r in _rows(engine)), timeout=120, every=0.2)
    finally:
        for proc in procs:
            stop_process(proc)
    rows = _rows(engine)
    assert [r.id for r in rows] == ids
    assert [(r.state, r.attempts) for r in rows] == [("done", 1)] * JOBS
    owners = Counter(r.lease_owner.split(":")[1] for r in rows)  # host:pid:thread
    assert set(owners) == {str(p.pid) for p in procs}  # both processes took a share
    engine.dispose()


def test_a_killed_worker_process_loses_no_job(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    upgrade_schema(engine)
    [job_id] = _enqueue(engine, "noop", 1, {"sleep": 4.0})
    env = dict(env_for(database_url, tmp_path), PATCHPILOT_WORKER_LEASE_SECONDS="3")
    first = _start_worker(env)
    try:
        owner = wait_for(lambda: _rows(engine)[0].lease_owner, timeout=60, every=0.1)
        assert owner.split(":")[1] == str(first.pid)
        stop_process(first, kill=True)  # SIGKILL mid-job: no cleanup, no more lease renewals
        second = _start_worker(env)
        try:
            wait_for(lambda: _rows(engine)[0].state == "done", timeout=60, every=0.2)
        finally:
            stop_process(second)
    finally:
        stop_process(first, kill=True)
    [row] = _rows(engine)
    assert (row.id, row.attempts, row.lease_owner.split(":")[1]) == (
        job_id, 2, str(second.pid))
    assert orjson.loads(row.result) == {"slept": 4.0, "attempt": 2}
    engine.dispose()


def test_the_idle_work_has_a_thread_of_its_own_so_every_job_is_taken_at_once(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The idle work (on 10 million findings its plan rebuild took minutes) runs in the
    pool's upkeep thread, which takes no job: a re-match (slow lane) and a prioritise job
    (quick lane) queued meanwhile are taken at once, not after the rebuild."""
    release = threading.Event()
    idle_in: list[str] = []

    def long_idle_work(_engine: Engine) -> None:
        idle_in.append(threading.current_thread().name)
        release.wait(60)  # a plan rebuild of a large estate

    monkeypatch.setattr(pipeline, "when_idle", long_idle_work)
    monkeypatch.setitem(worker.HANDLERS, "rematch", lambda _e, _j: {"rematched": True})
    monkeypatch.setitem(worker.HANDLERS, "prioritise", lambda _e, _j: {"prioritised": True})
    stop = threading.Event()
    pool = worker.start_pool(engine, stop, 1, tick_seconds=None, name="pp")
    try:
        wait_for(lambda: idle_in, timeout=30, every=0.05)
        _enqueue(engine, "rematch", 1)
        _enqueue(engine, "prioritise", 1)
        wait_for(lambda: all(r.state == "done" for r in _rows(engine)), timeout=30,
                 every=0.05)
        assert not release.is_set() and idle_in == ["pp-upkeep"]
        assert [orjson.loads(r.result) for r in _rows(engine)] == [
            {"rematched": True}, {"prioritised": True}]
    finally:
        release.set()
        stop.set()
        for t in pool:
            t.join(timeout=10)


def test_a_feed_update_in_the_slow_lane_leaves_the_quick_lane_free(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool of one worker (the server's embedded default) runs a long feed update in a
    lane of its own: an inventory's job queued behind it is done while it still runs."""
    release = threading.Event()
    took: list[str] = []

    def long_feed_update(_engine: Engine, job: queue.Job) -> dict[str, object]:
        took.append(threading.current_thread().name)
        release.wait(60)  # a download and load that takes its time
        return {"slow": True}

    monkeypatch.setitem(worker.HANDLERS, "feed_update", long_feed_update)
    assert worker.SLOW_LANE == ("rematch", "feed_update", "import")
    assert "match" in worker.QUICK_LANE and "feed_update" not in worker.QUICK_LANE
    assert worker.REPORT_LANE == ("report", "report_file")
    assert not set(worker.REPORT_LANE) & set(worker.QUICK_LANE)
    # The chunks of divided jobs (tests/test_chunks.py): a lane of as many threads as the
    # quick one, so neither lane holds up the other.
    assert worker.CHUNK_LANE == ("rematch_chunk", "prioritise_chunk")
    assert not set(worker.CHUNK_LANE) & set(worker.QUICK_LANE + worker.SLOW_LANE)
    [feed] = _enqueue(engine, "feed_update", 1)
    [quick] = _enqueue(engine, "noop", 1)
    stop = threading.Event()
    pool = worker.start_pool(engine, stop, 1, tick_seconds=None, name="pp")
    try:
        # The noop is done while the feed update still holds its lease. The lease is
        # taken a moment before its handler starts, so wait for the handler too.
        wait_for(lambda: took and {r.id: r.state for r in _rows(engine)} == {
            feed: "leased", quick: "done"}, timeout=30, every=0.05)
        assert took == ["pp-slow"]
        release.set()
        wait_for(lambda: all(r.state == "done" for r in _rows(engine)), timeout=30,
                 every=0.05)
    finally:
        release.set()
        stop.set()
        for t in pool:
            t.join(timeout=10)
    # The other lanes are the chunks' and the reports' (tests/reports/test_jobs.py).
    assert [t.name for t in pool] == ["pp-0", "pp-chunks-0", "pp-slow", "pp-reports",
                                      "pp-upkeep"]
    assert orjson.loads(_rows(engine)[0].result) == {"slow": True}
