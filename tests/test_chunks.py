"""Divided jobs: a re-match and a re-prioritisation of the estate split into chunk jobs that
any number of workers share, with the undivided job's result, one finishing step, progress
on the parent and no chunk lost to a dead worker (issue 19).

The estate is small (Debian, PyPI and Windows hosts, from real advisories and MSRC
documents) and ``PATCHPILOT_CHUNK_ASSETS`` tiny, so that it divides into several chunks.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from bench.common import stop_process
from sqlalchemy import Engine, delete, func, select, update

from patchpilot import pipeline, queue, worker
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import (
    advisories,
    asset_summary,
    assets,
    finding_events,
    finding_priority,
    findings,
    jobs,
)
from patchpilot.knowledge.update import update_from
from tests.builders.processes import env_for, wait_for
from tests.builders.sweep_estate import REMATCH_HOSTS as HOSTS
from tests.builders.sweep_estate import (
    SOPE_OLD,
    inventory,
    match,
)
from tests.builders.sweep_estate import UPDATE_FEEDS as UPDATE
from tests.builders.windows_plan_estate import FEBRUARY_CU, windows_host
from tests.conftest import pg_schema_url

FIRST = {"osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json",
         "msrc/cvrfDocument-2026-Feb.xml": "msrc/cvrfDocument-2026-Feb.xml",
         "msrc/cvrfDocument-2026-Mar.xml": "msrc/cvrfDocument-2026-Mar.xml"}
UNFINISHED = (queue.QUEUED, queue.LEASED, queue.WAITING)


def _estate(engine: Engine, feed_dir: Callable[..., Path], *, update: bool = True) -> None:
    """Ten assets stored against a knowledge base that knows only AlmaLinux and MSRC; then
    (``update``) the Debian and PyPI advisories arrive (not re-matched yet)."""
    assert {r.status for r in update_from(engine, [feed_dir(FIRST, "first")])} == {"loaded"}
    for host, pkgs in HOSTS.items():
        match(engine, inventory(host, *pkgs))
    match(engine, inventory("partial", *SOPE_OLD, complete=False))
    windows_host(engine, "win-dc-01", 3270, ["KB5073457"])
    windows_host(engine, "win-app-02", 4773, [FEBRUARY_CU])
    windows_host(engine, "win-sql-03", 4773, [FEBRUARY_CU])
    with engine.begin() as conn:
        conn.execute(delete(jobs))  # the inventories' match jobs: done above, or not wanted
    if update:
        assert {r.status for r in update_from(engine, [feed_dir(UPDATE, "update")])} == {
            "loaded"}


def _enqueue(engine: Engine, kind: str, payload: dict[str, Any]) -> int:
    with engine.begin() as conn:
        return queue.enqueue(conn, kind, payload)


def _unfinished(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(jobs)
                                .where(jobs.c.state.in_(UNFINISHED))).scalar_one())


def _drain(engine: Engine, owners: tuple[str, ...] = ("w0", "w1"), timeout: float = 120
           ) -> None:
    """Run jobs in one thread per owner until none is queued, leased or waiting (as
    ``bench_scaleout`` waits for the workers)."""
    stop = threading.Event()

    def loop(owner: str) -> None:
        while not stop.is_set():
            if worker.run_once(engine, owner, seconds=5) is None:
                stop.wait(0.02)

    threads = [threading.Thread(target=loop, args=(o,), name=o) for o in owners]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: _unfinished(engine) == 0, timeout=timeout, every=0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


def _job_rows(engine: Engine, *kinds: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(jobs).where(jobs.c.kind.in_(kinds))
                                 .order_by(jobs.c.id)).all())


def _snapshot(engine: Engine) -> dict[str, Any]:
    """Every stored fact a re-match and a re-prioritisation decide, keyed by names (not
    row ids: chunks in parallel insert in another order) and without wall-clock times."""
    with engine.connect() as conn:
        name = dict(conn.execute(select(assets.c.id, assets.c.name)).all())  # type: ignore[arg-type]
        key = {r.id: (name[r.asset_id], r.vuln_id, r.package, r.producer)
               for r in conn.execute(select(findings))}
        rows = {key[r.id]: (r.state, r.new_from_feed, r.installed_version, r.fixed_version,
                            r.severity, r.priority_rank, r.times_reopened, r.data,
                            r.installations)
                for r in conn.execute(select(findings))}
        priority = {key[r.finding_id]: (r.priority, r.reason, r.method)
                    for r in conn.execute(select(finding_priority))}
        events = Counter((key.get(r.finding_id), name.get(r.asset_id), r.kind, r.producer,
                          r.actor, r.detail) for r in conn.execute(select(finding_events)))
        summary = {name[r.asset_id]: tuple(v for k, v in r._mapping.items()
                                           if k not in ("asset_id", "as_of", "next_due",
                                                        "fix_days"))
                   for r in conn.execute(select(asset_summary))}
    return {"findings": rows, "priority": priority, "events": events, "summary": summary}


_COUNTS = ("assets", "findings", "new", "reopened", "fixed")


def _rematch_counts(engine: Engine) -> list[tuple[int, ...]]:
    return [tuple(orjson.loads(r.result)[k] for k in _COUNTS)
            for r in _job_rows(engine, "rematch")]


@pytest.fixture
def twin(database_url: str, tmp_path: Path) -> Iterator[Engine]:
    """A second empty database of the same backend (the divided run's)."""
    urls = pg_schema_url() if database_url.startswith("postgresql") else None
    url = next(urls) if urls else f"sqlite:///{tmp_path / 'twin.db'}"
    eng = make_engine(url)
    upgrade_schema(eng)
    yield eng
    eng.dispose()
    if urls:
        next(urls, None)  # drops the schema


def test_divided_jobs_give_the_undivided_jobs_result(
        engine: Engine, twin: Engine, feed_dir: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Three rounds -- a re-match of what the update concerns, a full one, one after
    withdrawn advisories -- each followed by its prioritise job: the same findings,
    priorities, events, summary rows and counts whether done in one job or in chunks."""
    _estate(engine, feed_dir)
    _estate(twin, feed_dir)
    rounds: list[dict[str, Any]] = [
        {"changed_since": "2000-01-01T00:00:00+00:00"},  # every advisory: "updated since"
        {"changed_since": None}, {"changed_since": None}]
    for n, payload in enumerate(rounds):
        if n == 2:  # the Debian tracker withdraws its advisories: their findings close
            for eng in (engine, twin):
                with eng.begin() as conn:
                    conn.execute(delete(advisories)
                                 .where(advisories.c.feed == "debian-tracker"))
        monkeypatch.setenv("PATCHPILOT_CHUNK_ASSETS", "1000")  # one job
        _enqueue(engine, pipeline.REMATCH, payload)
        _drain(engine)
        monkeypatch.setenv("PATCHPILOT_CHUNK_ASSETS", "2")  # chunks of two assets
        _enqueue(twin, pipeline.REMATCH, payload)
        _drain(twin)
        assert _snapshot(twin) == _snapshot(engine), f"round {n}"
    whole, divided = _rematch_counts(engine), _rematch_counts(twin)
    assert divided == whole
    # Round 0 concerns the six Linux hosts with a package an advisory names (as in
    # tests/scans/test_rematch.py: 7 new findings); round 1 adds the three Windows hosts'
    # MSRC findings (147 new); round 2 fixes sope on the two complete Debian inventories
    # (the partial one's stays open).
    assert whole == [(6, 7, 7, 0, 0), (9, 154, 147, 0, 0), (9, 151, 0, 0, 2)]
    # The undivided run made no chunk; the divided one 4 chunks of re-match in round 0 (the
    # seven Linux hosts having a package an advisory names, deb-backport too), then 5 and
    # 5, and 5 of re-prioritisation each round (ten assets, two a chunk), every one done.
    assert _job_rows(engine, "rematch_chunk", "prioritise_chunk") == []
    parents = _job_rows(twin, "rematch", "prioritise")
    assert [(r.kind, r.state, r.chunks_total, r.chunks_done) for r in parents] == [
        ("rematch", "done", 4, 4), ("prioritise", "done", 5, 5),
        ("rematch", "done", 5, 5), ("prioritise", "done", 5, 5),
        ("rematch", "done", 5, 5), ("prioritise", "done", 5, 5)]
    chunks = _job_rows(twin, "rematch_chunk", "prioritise_chunk")
    assert len(chunks) == 29 and {r.state for r in chunks} == {"done"}
    assert all(orjson.loads(r.payload)["parent"] == r.parent_id for r in chunks)
    # The prioritise jobs changed the same rows in all.
    assert [orjson.loads(r.result)["changed"] for r in _job_rows(twin, "prioritise")] == [
        orjson.loads(r.result)["changed"] for r in _job_rows(engine, "prioritise")]


def test_pool_threads_share_the_chunks_and_finish_once(
        engine: Engine, feed_dir: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """A pool of two (``patchpilot worker --threads 2``) runs two chunks at once; the
    re-match's finishing step runs once and queues one prioritise job."""
    _estate(engine, feed_dir)
    monkeypatch.setenv("PATCHPILOT_CHUNK_ASSETS", "1")
    ran: list[tuple[str, str]] = []
    at_once = {"now": 0, "most": 0}
    lock = threading.Lock()
    finishing: list[int] = []
    real_chunk, real_rematch = worker.HANDLERS["rematch_chunk"], worker.HANDLERS["rematch"]

    def chunk(eng: Engine, job: queue.Job) -> dict[str, Any]:
        with lock:
            ran.append((job.kind, threading.current_thread().name))
            at_once["now"] += 1
            at_once["most"] = max(at_once["most"], at_once["now"])
        try:
            time.sleep(0.3)  # long enough for the other chunk thread to take one too
            return real_chunk(eng, job)
        finally:
            with lock:
                at_once["now"] -= 1

    def rematch(eng: Engine, job: queue.Job) -> dict[str, Any]:
        with eng.connect() as conn:
            if queue.chunk_progress(conn, job.id) is not None:
                finishing.append(job.id)
        return real_rematch(eng, job)

    monkeypatch.setitem(worker.HANDLERS, "rematch_chunk", chunk)
    monkeypatch.setitem(worker.HANDLERS, "rematch", rematch)
    parent = _enqueue(engine, pipeline.REMATCH, {"changed_since": None})
    stop = threading.Event()
    pool = worker.start_pool(engine, stop, 2, tick_seconds=None, name="pp")
    try:
        wait_for(lambda: _unfinished(engine) == 0, timeout=120, every=0.1)
    finally:
        stop.set()
        for t in pool:
            t.join(timeout=30)
    assert [t.name for t in pool] == ["pp-0", "pp-1", "pp-chunks-0", "pp-chunks-1",
                                      "pp-slow", "pp-reports", "pp-upkeep"]
    assert len(ran) == 10 and {name for _, name in ran} == {"pp-chunks-0", "pp-chunks-1"}
    assert at_once["most"] == 2
    chunks = _job_rows(engine, "rematch_chunk")
    assert len({r.lease_owner for r in chunks}) == 2  # two threads' leases
    assert finishing == [parent]  # the finishing step ran once
    [row] = [r for r in _job_rows(engine, "rematch") if r.id == parent]
    assert (row.state, row.attempts, row.chunks_done, row.chunks_total) == ("done", 1, 10, 10)
    assert orjson.loads(row.result)["chunks"] == 10
    [prioritise] = _job_rows(engine, "prioritise")  # one, queued by the finishing step
    assert orjson.loads(row.result)["prioritise_job"] == prioritise.id
    assert (prioritise.state, prioritise.chunks_total) == ("done", 10)


def test_progress_and_the_last_chunk_queues_the_parent(
        engine: Engine, feed_dir: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    _estate(engine, feed_dir)
    monkeypatch.setenv("PATCHPILOT_CHUNK_ASSETS", "4")
    parent = _enqueue(engine, pipeline.PRIORITISE, {})
    assert worker.run_once(engine, "w", kinds=("prioritise",)) is not None
    [row] = _job_rows(engine, "prioritise")
    # Ten assets, four a chunk: three chunks, the parent waiting for them.
    assert (row.state, orjson.loads(row.result)) == ("waiting",
                                                     {"chunks": 3, "chunks_done": 0})
    chunks = _job_rows(engine, "prioritise_chunk")
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(select(assets.c.id).order_by(assets.c.id))]
        assert queue.chunk_progress(conn, parent) == (0, 3)
    assert [(orjson.loads(r.payload)["lo"], orjson.loads(r.payload)["hi"]) for r in chunks] \
        == [(ids[0], ids[3]), (ids[4], ids[7]), (ids[8], ids[9])]
    assert worker.run_once(engine, "w", kinds=("prioritise",)) is None  # waiting: not leased
    for done in (1, 2):
        assert worker.run_once(engine, "w", kinds=("prioritise_chunk",)) is not None
        [row] = _job_rows(engine, "prioritise")
        assert (row.state, orjson.loads(row.result)) == (
            "waiting", {"chunks": 3, "chunks_done": done})
    assert worker.run_once(engine, "w", kinds=("prioritise_chunk",)) is not None
    [row] = _job_rows(engine, "prioritise")
    assert (row.state, row.attempts) == ("queued", 0)  # the finishing step's turn
    assert worker.run_once(engine, "w", kinds=("prioritise",)) is not None
    [row] = _job_rows(engine, "prioritise")
    changed = sum(orjson.loads(r.result)["changed"]
                  for r in _job_rows(engine, "prioritise_chunk"))
    assert (row.state, row.attempts, orjson.loads(row.result)) == (
        "done", 1, {"asset_id": None, "changed": changed, "chunks": 3})


def _end_together(engine: Engine, start: threading.Barrier, answers: list[bool], n: int,
                  chunk: queue.Job) -> None:
    start.wait()
    answers.append(queue.finish(engine, chunk.id, f"w{n}", result={"n": n}))


def test_a_feed_update_of_a_large_estate_queues_a_divided_rematch(
        engine: Engine, feed_dir: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """The server's own feed update re-matches a small estate itself (as before) and
    leaves a larger one to a ``rematch`` job that the workers divide."""
    _estate(engine, feed_dir, update=False)
    monkeypatch.setenv("PATCHPILOT_FEEDS_DIR", str(feed_dir(UPDATE, "update")))
    monkeypatch.setenv("PATCHPILOT_CHUNK_ASSETS", "2")
    feed = _enqueue(engine, pipeline.FEED_UPDATE, {})
    _drain(engine)
    [row] = [r for r in _job_rows(engine, "feed_update") if r.id == feed]
    result = orjson.loads(row.result)
    assert (result["rematch"], result["written"] > 0) == (None, True)
    [rematch] = _job_rows(engine, "rematch")
    assert (rematch.id, rematch.state, rematch.chunks_total) == (
        result["rematch_job"], "done", 4)  # the seven Linux hosts the update concerns
    counts = orjson.loads(rematch.result)
    # What the undivided re-match of the same update gives (round 0 above).
    assert tuple(counts[k] for k in _COUNTS) == (6, 7, 7, 0, 0)
    [prioritise] = _job_rows(engine, "prioritise")
    assert (prioritise.state, prioritise.chunks_total) == ("done", 5)


def test_concurrent_chunk_ends_queue_the_parent_exactly_once(engine: Engine) -> None:
    """Eight chunks finished at the same moment by eight workers: each counted once, one
    of them queues the parent."""
    for _ in range(3):
        parent = _enqueue(engine, "noop", {})
        job = queue.lease(engine, "splitter", kinds=("noop",))
        assert job is not None and job.id == parent
        with engine.begin() as conn:
            assert queue.split(conn, job, "noop", [{"n": n} for n in range(8)]) == 8
        held = [queue.lease(engine, f"w{n}", kinds=("noop",)) for n in range(8)]
        assert all(h is not None and h.payload["parent"] == parent for h in held)
        start = threading.Barrier(8)
        answers: list[bool] = []
        threads = [threading.Thread(target=_end_together, args=(engine, start, answers, n, h))
                   for n, h in enumerate(held)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert answers == [True] * 8
        [row] = [r for r in _job_rows(engine, "noop") if r.id == parent]
        assert (row.state, row.chunks_done, row.chunks_total, row.attempts) == (
            "queued", 8, 8, 0)
        with engine.connect() as conn:
            assert sorted(r["n"] for r in queue.chunk_results(conn, parent)) == list(range(8))
        # The one finishing lease, then done.
        assert worker.run_once(engine, "finisher", kinds=("noop",)).id == parent  # type: ignore[union-attr]
        assert _unfinished(engine) == 0


def test_a_dead_workers_chunk_is_retaken_and_a_failed_chunk_fails_the_parent(
        engine: Engine, feed_dir: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    _estate(engine, feed_dir)
    monkeypatch.setenv("PATCHPILOT_CHUNK_ASSETS", "3")
    parent = _enqueue(engine, pipeline.REMATCH, {"changed_since": None})
    assert worker.run_once(engine, "w", kinds=("rematch",)) is not None
    # A worker takes a chunk and dies (no heartbeat, no finish): its lease runs out.
    dead = queue.lease(engine, "dead-worker", kinds=("rematch_chunk",), seconds=1)
    assert dead is not None
    _drain(engine)
    chunks = {r.id: r for r in _job_rows(engine, "rematch_chunk")}
    assert (chunks[dead.id].state, chunks[dead.id].attempts) == ("done", 2)
    assert chunks[dead.id].lease_owner in ("w0", "w1")
    [row] = [r for r in _job_rows(engine, "rematch") if r.id == parent]
    result = orjson.loads(row.result)
    # What the undivided job gives (test_divided_jobs_give_the_undivided_jobs_result).
    assert (row.state, result["chunks"], result["assets"], result["new"]) == (
        "done", 4, 9, 154)

    # A chunk that fails for good fails its parent, cancels the chunks not taken, and no
    # finishing step runs.
    def broken(_engine: Engine, job: queue.Job) -> dict[str, Any]:
        raise ValueError("the database said no")

    monkeypatch.setitem(worker.HANDLERS, "prioritise_chunk", broken)
    [prioritise] = _job_rows(engine, "prioritise")
    assert prioritise.state == "done"  # the re-match's follow-up, before the break
    again = _enqueue(engine, pipeline.PRIORITISE, {})
    assert worker.run_once(engine, "w", kinds=("prioritise",)).id == again  # type: ignore[union-attr]
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.parent_id == again).values(max_attempts=1))
    failed = worker.run_once(engine, "w", kinds=("prioritise_chunk",))
    assert failed is not None
    rows = {r.id: r for r in _job_rows(engine, "prioritise", "prioritise_chunk")}
    assert (rows[again].state, rows[again].error) == (
        "failed", f"chunk job {failed.id} failed: ValueError: the database said no")
    assert sorted(r.state for r in rows.values() if r.parent_id == again) == [
        "cancelled", "cancelled", "cancelled", "failed"]
    assert _unfinished(engine) == 0


# --- separate processes --------------------------------------------------------------------

def _start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "patchpilot.cli", "worker"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_worker_processes_share_the_chunks(database_url: str, tmp_path: Path,
                                               feed_dir: Callable[..., Path]) -> None:
    engine = make_engine(database_url)
    upgrade_schema(engine)
    _estate(engine, feed_dir)
    env = dict(env_for(database_url, tmp_path), PATCHPILOT_CHUNK_ASSETS="1")
    procs = [_start_worker(env) for _ in range(2)]
    try:
        # Both processes are up once each holds one of two slow noops (one quick thread
        # each); then the re-match and its chunks are queued.
        for _ in range(2):
            _enqueue(engine, "noop", {"sleep": 1.5})
        wait_for(lambda: len({r.lease_owner.split(":")[1] for r in _job_rows(engine, "noop")
                              if r.lease_owner}) == 2, timeout=120, every=0.1)
        parent = _enqueue(engine, pipeline.REMATCH, {"changed_since": None})
        wait_for(lambda: _unfinished(engine) == 0, timeout=180, every=0.2)
        first = _job_rows(engine, "rematch_chunk", "prioritise_chunk")
        # A chunk of one asset takes milliseconds, and an idle lane looks for work every
        # half second: one process may finish all twenty before the other looks.  Then
        # the estate is re-matched again (nothing new: the same chunks) until both did.
        rounds = 1
        while len(_chunk_pids(engine)) < 2 and rounds < 6:
            _enqueue(engine, pipeline.REMATCH, {"changed_since": None})
            wait_for(lambda: _unfinished(engine) == 0, timeout=180, every=0.2)
            rounds += 1
    finally:
        for proc in procs:
            stop_process(proc)
    assert len(first) == 20 and {(r.state, r.attempts) for r in first} == {("done", 1)}
    assert _chunk_pids(engine) == {str(p.pid) for p in procs}  # both processes took a share
    [row] = [r for r in _job_rows(engine, "rematch") if r.id == parent]
    assert (row.state, orjson.loads(row.result)["new"]) == ("done", 154)
    prioritise = _job_rows(engine, "prioritise")[0]
    assert (prioritise.state, prioritise.chunks_done) == ("done", 10)
    engine.dispose()


def _chunk_pids(engine: Engine) -> set[str]:
    """The processes whose threads took chunk jobs (a lease owner is host:pid:thread)."""
    return {r.lease_owner.split(":")[1]
            for r in _job_rows(engine, "rematch_chunk", "prioritise_chunk")}
