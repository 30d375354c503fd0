"""The order of work: an inventory processed in one transaction, and the server's own
knowledge-base update (queued once when due, loaded, what changed re-matched)."""

from __future__ import annotations

import shutil
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, event, func, select, update

from patchpilot import pipeline, queue, worker
from patchpilot.clock import now_utc
from patchpilot.config import load_settings
from patchpilot.db.tables import (
    asset_summary,
    finding_priority,
    findings,
    jobs,
    report_schedules,
)
from patchpilot.errors import ConfigError, PatchPilotError
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.findings.scan import scan_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package
from patchpilot.reports.mail import add_schedule

PYSEC = "osv/pypi/pygments/{}.yaml"
PYGMENTS = {f"pypi/{n}.yaml": PYSEC.format(n)
            for n in ("PYSEC-2016-32", "PYSEC-2021-140", "PYSEC-2021-141", "PYSEC-2023-117")}
OLD = Package(Ecosystem("PyPI"), "Pygments", "2.0.2")
NEW = Package(Ecosystem("PyPI"), "Pygments", "2.14.0")
BASH = Package(Ecosystem("Debian:12"), "bash", "5.2.15-2+b2")
# What the four advisories say of pygments 2.0.2: (CVE, fixed version).
OLD_FINDINGS = {("CVE-2015-8557", "2.1"), ("CVE-2021-20270", "2.7.4"),
                ("CVE-2021-27291", "2.7.4"), ("CVE-2022-40896", "2.15.1")}


def inventory(host: str, *packages: Package) -> Inventory:
    """A complete inventory of ``host``."""
    return Inventory.from_packages(list(packages), complete=True,
                                   asset=AssetIdentity(hostname=host, machine_id=host),
                                   collector=Collector(name="agent"))


def stored(engine: Engine, inv: Inventory) -> tuple[int, int]:
    """(asset id, inventory id) of ``inv`` ingested, its match job queued."""
    result = ingest_inventory(engine, inv, enqueue_match=True)
    return result.asset_id, result.inventory_id


def finding_rows(engine: Engine) -> set[tuple[Any, ...]]:
    """(asset, vuln, state, fixed version, new from feed, priority) of every finding."""
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(
            select(findings.c.asset_id, findings.c.vuln_id, findings.c.state,
                   findings.c.fixed_version, findings.c.new_from_feed,
                   finding_priority.c.priority)
            .outerjoin(finding_priority, finding_priority.c.finding_id == findings.c.id))}


def count(engine: Engine, table: Any) -> int:
    """Rows of ``table``."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


class Recorder:
    """Commits and summary refreshes the engine sees (real statements, not mocks)."""

    def __init__(self, engine: Engine) -> None:
        self.commits = 0
        self.refreshes = 0
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "before_cursor_execute", self._statement)

    def _commit(self, _conn: Any) -> None:
        self.commits += 1

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # A refresh of summary rows is one DELETE, then one INSERT … SELECT.
        self.refreshes += statement.lstrip().upper().startswith("DELETE FROM ASSET_SUMMARY")


# --- process_inventory --------------------------------------------------------------------

def test_process_inventory_is_one_transaction_with_one_summary_refresh(
        engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    update_from(engine, [feed_dir(PYGMENTS)])
    asset_id, first = stored(engine, inventory("web1", OLD, BASH))
    recorder = Recorder(engine)
    done = pipeline.process_inventory(engine, first)
    assert (recorder.commits, recorder.refreshes) == (1, 1)
    assert done.to_dict() == {"asset_id": asset_id, "findings": 4, "new": 4, "reopened": 0,
                              "fixed": 0, "undetermined": 0}
    rows = finding_rows(engine)
    # The findings a scan of the same inventory gives, each prioritised in the same go.
    scanned = {f.vuln_id for f in scan_inventory(engine, inventory("web1", OLD, BASH)).findings}
    assert {r[1] for r in rows} == scanned == {cve for cve, _ in OLD_FINDINGS}
    assert {(r[1], r[3]) for r in rows} == OLD_FINDINGS
    assert {(r[0], r[2], r[4]) for r in rows} == {(asset_id, "open", False)}
    assert all(r[5] in (1, 2, 3, 4) for r in rows)
    with engine.connect() as conn:
        summary = conn.execute(select(asset_summary).where(
            asset_summary.c.asset_id == asset_id)).one()
    assert (summary.open_total, summary.p1 + summary.p2 + summary.p3 + summary.p4) == (4, 4)
    # Patched to 2.14.0: three fixed, one still open -- again one commit, one refresh.
    _, second = stored(engine, inventory("web1", NEW, BASH))
    recorder.commits = recorder.refreshes = 0
    done = pipeline.process_inventory(engine, second)
    assert (recorder.commits, recorder.refreshes) == (1, 1)
    assert (done.new, done.fixed, done.findings) == (0, 3, 1)
    assert {(r[1], r[2]) for r in finding_rows(engine)} == {
        ("CVE-2015-8557", "fixed"), ("CVE-2021-20270", "fixed"), ("CVE-2021-27291", "fixed"),
        ("CVE-2022-40896", "open")}
    with engine.connect() as conn:
        assert conn.execute(select(asset_summary.c.open_total).where(
            asset_summary.c.asset_id == asset_id)).scalar_one() == 1


def test_a_failure_in_prioritising_leaves_no_finding_behind(
        engine: Engine, feed_dir, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    update_from(engine, [feed_dir(PYGMENTS)])
    asset_id, inventory_id = stored(engine, inventory("web1", OLD))
    real = pipeline.reprioritise

    def broken(conn, **kwargs):  # type: ignore[no-untyped-def]
        real(conn, **kwargs)  # the priorities are written, then the step fails
        raise PatchPilotError("priority configuration unreadable")

    monkeypatch.setattr(pipeline, "reprioritise", broken)
    job = worker.run_once(engine, "test-worker")
    assert job is not None and job.kind == "match"
    # Nothing of the applied findings, their priorities or the summary was kept ...
    assert (count(engine, findings), count(engine, finding_priority),
            count(engine, asset_summary)) == (0, 0, 0)
    # ... and the job waits for its retry, saying why.
    with engine.connect() as conn:
        row = conn.execute(select(jobs.c.state, jobs.c.attempts, jobs.c.error)
                           .where(jobs.c.id == job.id)).one()
    assert tuple(row) == ("queued", 1, "PatchPilotError: priority configuration unreadable")
    monkeypatch.undo()
    assert pipeline.process_inventory(engine, inventory_id).new == 4
    assert {(r[0], r[2]) for r in finding_rows(engine)} == {(asset_id, "open")}


def test_a_missing_inventory_is_named(engine: Engine) -> None:
    with pytest.raises(PatchPilotError, match="inventory 12345: no such inventory"):
        pipeline.process_inventory(engine, 12345)


# --- the server's own knowledge-base update ----------------------------------------------

@pytest.fixture
def feeds(feed_dir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    """A feeds folder with one real pygments advisory, as ``PATCHPILOT_FEEDS_DIR``."""
    root = feed_dir({"pypi/PYSEC-2016-32.yaml": PYSEC.format("PYSEC-2016-32")})
    monkeypatch.setenv("PATCHPILOT_FEEDS_DIR", str(root))
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PATCHPILOT_FEED_UPDATE_INTERVAL", raising=False)
    return root


def feed_jobs(engine: Engine) -> list[tuple[str, dict[str, Any] | None]]:
    """(state, result) of every feed_update job, oldest first."""
    with engine.connect() as conn:
        return [(r.state, orjson.loads(r.result) if r.result else None)
                for r in conn.execute(select(jobs.c.state, jobs.c.result)
                                      .where(jobs.c.kind == "feed_update")
                                      .order_by(jobs.c.id))]


def test_a_tick_queues_one_feed_update_when_due(engine: Engine, feeds: Path) -> None:
    # Never loaded: due at once, and only one however often the tick comes round.
    first = pipeline.tick(engine).feed_update_job
    assert first is not None
    assert pipeline.tick(engine).feed_update_job is None
    leased = queue.lease(engine, "w1", kinds=("feed_update",))
    assert leased is not None and leased.id == first
    assert pipeline.tick(engine, now_utc() + timedelta(days=3)).feed_update_job is None
    queue.finish(engine, first, "w1", result={})
    # Done: not due again within the interval, due after it.
    assert pipeline.tick(engine, now_utc() + timedelta(hours=23)).feed_update_job is None
    again = pipeline.tick(engine, now_utc() + timedelta(hours=25)).feed_update_job
    assert again is not None and again != first
    assert [state for state, _ in feed_jobs(engine)] == ["done", "queued"]


def test_a_tick_queues_none_when_off_or_just_loaded(engine: Engine, feeds: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for off in ("off", "0"):
        monkeypatch.setenv("PATCHPILOT_FEED_UPDATE_INTERVAL", off)
        assert pipeline.tick(engine, now_utc() + timedelta(days=400)).feed_update_job is None
    monkeypatch.setenv("PATCHPILOT_FEED_UPDATE_INTERVAL", "6")
    update_from(engine, [feeds])  # `patchpilot db update` by hand, just now
    assert pipeline.tick(engine, now_utc() + timedelta(hours=5)).feed_update_job is None
    assert pipeline.tick(engine, now_utc() + timedelta(hours=7)).feed_update_job is not None
    assert len(feed_jobs(engine)) == 1


def test_a_tick_queues_due_report_schedules_too(engine: Engine, feeds: Path) -> None:
    # Scheduled reports rode on the scans' tick through a lazy import from scans/ up to
    # reports/; the pipeline's tick runs both.
    with engine.begin() as conn:
        add_schedule(conn, "sato", kind="executive", fmt="csv", lang="en", cron="0 8 1 * *",
                     timezone="UTC", recipients=["manager@plant.example"])
        conn.execute(update(report_schedules).values(
            next_run_at=now_utc() - timedelta(minutes=1)))
    first = pipeline.tick(engine)
    assert (first.reports, first.schedules.runs) == (1, ())
    assert pipeline.tick(engine).reports == 0  # claimed once
    with engine.connect() as conn:
        assert list(conn.execute(select(jobs.c.kind).order_by(jobs.c.id)).scalars()) == [
            "report", "feed_update"]


def test_concurrent_ticks_queue_one_feed_update(engine: Engine, feeds: Path) -> None:
    settings = load_settings()
    start = threading.Barrier(4)
    queued: list[int | None] = []

    def tick() -> None:
        start.wait()
        queued.append(pipeline.enqueue_feed_update_if_due(engine, now_utc(), settings))

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(queued) == 4 and sum(q is not None for q in queued) == 1
    assert len(feed_jobs(engine)) == 1


def test_feed_update_job_loads_and_rematches_what_the_new_advisory_names(
        engine: Engine, feeds: Path, shared_data: Path) -> None:
    old, _ = stored(engine, inventory("py-old", OLD))
    new, _ = stored(engine, inventory("py-new", NEW))
    deb, _ = stored(engine, inventory("deb", BASH))
    while worker.run_once(engine, "test-worker") is not None:
        pass  # the match jobs: an empty knowledge base finds nothing
    assert finding_rows(engine) == set()
    # 1. The first update: PYSEC-2016-32 (pygments before 2.1).
    assert pipeline.tick(engine).feed_update_job is not None
    job = worker.run_once(engine, "test-worker")
    assert job is not None and job.kind == "feed_update"
    [(state, result)] = feed_jobs(engine)
    assert state == "done" and result is not None
    assert (result["sources"], result["written"], result["failed"]) == ({"loaded": 1}, 1, [])
    assert result["changed_since"] is not None  # only the assets with pygments
    assert (result["rematch"]["distinct"], result["rematch"]["new"]) == (2, 1)
    rows = finding_rows(engine)
    assert {r[:5] for r in rows} == {(old, "CVE-2015-8557", "open", "2.1", True)}
    assert all(r[5] in (1, 2, 3, 4) for r in rows)  # prioritised in the same job
    # 2. A real advisory added to the folder: the next update (a day later) loads it, and
    #    the host on 2.14.0 -- clean until now -- gets its finding.
    shutil.copyfile(shared_data / PYSEC.format("PYSEC-2023-117"),
                    feeds / "pypi" / "PYSEC-2023-117.yaml")
    assert pipeline.tick(engine, now_utc() + timedelta(hours=12)).feed_update_job is None
    assert pipeline.tick(engine, now_utc() + timedelta(hours=25)).feed_update_job is not None
    recorder = Recorder(engine)
    assert worker.run_once(engine, "test-worker") is not None
    # The summary rows are refreshed once, after the re-prioritisation (the re-match
    # leaves them to it).
    assert recorder.refreshes == 1
    (_, _), (state, result) = feed_jobs(engine)
    assert state == "done" and result is not None
    assert (result["written"], result["rematch"]["distinct"], result["rematch"]["new"]) == (
        1, 2, 2)
    rows = finding_rows(engine)
    assert {r[:5] for r in rows} == {
        (old, "CVE-2015-8557", "open", "2.1", True),
        (old, "CVE-2022-40896", "open", "2.15.1", True),
        (new, "CVE-2022-40896", "open", "2.15.1", True)}
    assert all(r[5] in (1, 2, 3, 4) for r in rows)
    assert deb not in {r[0] for r in rows}
    with engine.connect() as conn:
        assert dict(conn.execute(select(asset_summary.c.asset_id, asset_summary.c.open_total)
                                 ).all()) == {old: 2, new: 1}


def test_feed_update_job_that_loads_nothing_fails_naming_the_folder(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATCHPILOT_FEEDS_DIR", str(empty))
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    job = pipeline.tick(engine).feed_update_job
    assert job is not None
    assert worker.run_once(engine, "test-worker") is not None
    with engine.connect() as conn:
        error = conn.execute(select(jobs.c.error).where(jobs.c.id == job)).scalar_one()
    assert error == f"FeedUpdateFailed: nothing loaded from {empty}: no feed files found"


@pytest.mark.parametrize(("raw", "hours"), [("", 24.0), ("off", None), ("OFF", None),
                                            ("0", None), ("6", 6.0), ("0.5", 0.5)])
def test_the_interval_setting(raw: str, hours: float | None,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_FEED_UPDATE_INTERVAL", raw)
    assert load_settings().feed_update_hours == hours


@pytest.mark.parametrize("raw", ["daily", "-1", "nan", "inf"])
def test_an_interval_that_is_no_number_of_hours_is_refused(
        raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_FEED_UPDATE_INTERVAL", raw)
    with pytest.raises(ConfigError, match=f"PATCHPILOT_FEED_UPDATE_INTERVAL: '{raw}' is not a "
                                          "number of hours"):
        load_settings()
