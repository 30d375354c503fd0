"""The scheduler on both databases: due schedules, windows, blackouts, throttling, override."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import Engine, func, insert, select, update

from patchpilot import queue
from patchpilot.assets import groups as asset_groups
from patchpilot.clock import aware
from patchpilot.db.tables import agents, assets, audit_log, jobs, schedules
from patchpilot.scans import groups
from patchpilot.scans.scheduler import EMERGENCY_PRIORITY, ScanError, scan_now, tick

TOKYO = "Asia/Tokyo"
WEDNESDAY = datetime(2024, 6, 5, 3, tzinfo=UTC)  # Wed 12:00 JST
SATURDAY_2AM = datetime(2024, 6, 7, 17, tzinfo=UTC)  # Sat 02:00 JST, inside the window
WINDOW_START = datetime(2024, 6, 7, 16, tzinfo=UTC)  # Sat 01:00 JST


def _asset(engine: Engine, name: str, *, ssh_target: str | None = None, agent: bool = False,
           tags: list[str] | None = None) -> int:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        asset_id = int(conn.execute(insert(assets).values(
            name=name, first_seen=now, last_seen=now, tags=orjson.dumps(tags or []).decode(),
            attributes="{}", ssh_target=ssh_target).returning(assets.c.id)).scalar_one())
        if agent:
            conn.execute(insert(agents).values(
                asset_id=asset_id, name=name, credential_hash=f"hash-{name}", enrolled_at=now))
    return asset_id


def _group(engine: Engine, name: str = "tokyo-dc", *, max_scans: int = 5,
           window: bool = True, members: list[int] | None = None,
           rule: dict[str, object] | None = None) -> int:
    with engine.begin() as conn:
        group_id = asset_groups.create_group(conn, "test", name, max_concurrent_scans=max_scans,
                                       rule=rule)
        if members:
            asset_groups.add_members(conn, "test", group_id, members)
        if window:
            groups.add_window(conn, "test", group_id, rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=1",
                              duration=timedelta(hours=4), timezone=TOKYO)
    return group_id


def _schedule(engine: Engine, group_id: int, expression: str = "0 2 * * 6",
              now: datetime = WEDNESDAY) -> int:
    with engine.begin() as conn:
        return int(groups.add_schedule(conn, "test", group_id, "cron", expression, TOKYO,
                                       now=now)["id"])


def _jobs(engine: Engine) -> list:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return list(conn.execute(select(jobs).order_by(jobs.c.id)).all())


def test_due_schedule_queues_one_job_per_asset_inside_its_window(engine: Engine) -> None:
    by_agent = _asset(engine, "web-1", agent=True)
    by_ssh = _asset(engine, "db-1", ssh_target="root@db-1.example:2222")
    unreachable = _asset(engine, "printer")
    group_id = _group(engine, members=[by_agent, by_ssh, unreachable])
    schedule_id = _schedule(engine, group_id)
    with engine.connect() as conn:
        first = conn.execute(select(schedules.c.next_run_at)).scalar_one()
    assert aware(first) == SATURDAY_2AM

    assert tick(engine, SATURDAY_2AM - timedelta(seconds=1)).runs == ()  # not due yet
    result = tick(engine, SATURDAY_2AM)
    [run] = result.runs
    assert (run.collect, run.ssh_scan, run.unreachable, run.run_after) == (
        1, 1, 1, SATURDAY_2AM)
    collect, ssh = _jobs(engine)
    with engine.connect() as conn:
        agent_id = conn.execute(select(agents.c.id)).scalar_one()
    assert (collect.kind, collect.agent_id, collect.asset_id, collect.group_id) == (
        "collect", agent_id, by_agent, group_id)
    assert (ssh.kind, ssh.agent_id, ssh.asset_id) == ("ssh_scan", None, by_ssh)
    assert orjson.loads(ssh.payload) == {"reason": "schedule", "schedule_id": schedule_id,
                                         "asset_id": by_ssh,
                                         "target": "root@db-1.example:2222"}
    assert aware(ssh.run_after) == SATURDAY_2AM
    with engine.connect() as conn:
        row = conn.execute(select(schedules)).one()
    assert aware(row.next_run_at) == SATURDAY_2AM + timedelta(days=7)
    assert aware(row.last_run_at) == SATURDAY_2AM
    # The same moment again: the run was claimed already, nothing more is queued.
    assert tick(engine, SATURDAY_2AM).runs == ()
    assert len(_jobs(engine)) == 2


def test_scan_due_outside_the_window_waits_for_the_next_one(engine: Engine) -> None:
    asset_id = _asset(engine, "db-1", ssh_target="root@db-1")
    group_id = _group(engine, members=[asset_id])
    # Wednesdays at noon, Tokyo: never inside the Saturday window.
    _schedule(engine, group_id, "0 12 * * 3")
    due = datetime(2024, 6, 12, 3, tzinfo=UTC)
    [run] = tick(engine, due).runs
    assert run.run_after == WINDOW_START + timedelta(days=7)
    [job] = _jobs(engine)
    assert aware(job.run_after) == WINDOW_START + timedelta(days=7)
    # The next week's tick does not pile a second job onto the one still waiting.
    [again] = tick(engine, due + timedelta(days=7)).runs
    assert (again.ssh_scan, again.already_queued) == (0, 1)


def test_no_scan_during_a_blackout(engine: Engine) -> None:
    asset_id = _asset(engine, "db-1", ssh_target="root@db-1")
    group_id = _group(engine, members=[asset_id], window=False)
    # Month-end closing in Tokyo: the last day of June, all day.
    begins = datetime(2024, 6, 29, 15, tzinfo=UTC)
    ends = datetime(2024, 6, 30, 15, tzinfo=UTC)
    with engine.begin() as conn:
        groups.add_window(conn, "test", group_id, kind="blackout",
                          rrule="FREQ=MONTHLY;BYMONTHDAY=-1", duration=timedelta(days=1),
                          timezone=TOKYO)
    # Daily at 09:00 Tokyo time.
    _schedule(engine, group_id, "0 9 * * *", now=datetime(2024, 6, 29, 12, tzinfo=UTC))
    due = datetime(2024, 6, 30, 0, tzinfo=UTC)  # 30 June 09:00 JST, inside the blackout
    [run] = tick(engine, due).runs
    assert begins < due < ends
    assert run.run_after == ends
    [job] = _jobs(engine)
    assert aware(job.run_after) == ends


def test_rule_members_are_scanned_too(engine: Engine) -> None:
    tagged = _asset(engine, "app-1", ssh_target="root@app-1", tags=["tokyo", "prod"])
    _asset(engine, "app-2", ssh_target="root@app-2", tags=["osaka", "prod"])
    static = _asset(engine, "app-3", ssh_target="root@app-3")
    group_id = _group(engine, members=[static], window=False, rule={"tags": ["tokyo"]})
    _schedule(engine, group_id)
    tick(engine, SATURDAY_2AM)
    assert sorted(j.asset_id for j in _jobs(engine)) == [tagged, static]


def test_concurrent_ticks_run_a_schedule_once(engine: Engine) -> None:
    members = [_asset(engine, f"h{n}", ssh_target=f"root@h{n}") for n in range(5)]
    group_id = _group(engine, members=members)
    _schedule(engine, group_id)
    barrier = threading.Barrier(4)
    runs: list[int] = []

    def ticker() -> None:
        barrier.wait()
        runs.append(len(tick(engine, SATURDAY_2AM).runs))

    threads = [threading.Thread(target=ticker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(runs) == [0, 0, 0, 1]
    assert len(_jobs(engine)) == 5


def _ssh_jobs(engine: Engine, group_id: int, n: int) -> list[int]:
    members = [_asset(engine, f"h{k}", ssh_target=f"root@h{k}") for k in range(n)]
    with engine.begin() as conn:
        asset_groups.add_members(conn, "test", group_id, members)
        return [queue.enqueue(conn, "ssh_scan", {"target": f"root@h{k}"}, asset_id=a,
                              group_id=group_id) for k, a in enumerate(members)]


def test_throttling_hands_out_at_most_max_concurrent_scans(engine: Engine) -> None:
    group_id = _group(engine, max_scans=2, window=False)
    _ssh_jobs(engine, group_id, 5)
    with engine.begin() as conn:  # a job of another kind in the group is not a scan
        other = queue.enqueue(conn, "noop", {}, group_id=group_id)
    first = queue.lease(engine, "w1", kinds=("ssh_scan",))
    second = queue.lease(engine, "w2", kinds=("ssh_scan",))
    assert first is not None and second is not None
    assert queue.lease(engine, "w3", kinds=("ssh_scan",)) is None
    leased = queue.lease(engine, "w3", kinds=("ssh_scan", "noop"))
    assert leased is not None and leased.id == other
    assert queue.finish(engine, first.id, "w1", result={})
    third = queue.lease(engine, "w3", kinds=("ssh_scan",))
    assert third is not None and third.id not in (first.id, second.id)
    assert queue.lease(engine, "w4", kinds=("ssh_scan",)) is None
    # An expired lease frees its slot (a dead worker must not block the group forever).
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == second.id).values(
            lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    retaken = queue.lease(engine, "w4", kinds=("ssh_scan",))
    assert retaken is not None


def test_throttling_holds_under_concurrent_workers(engine: Engine) -> None:
    group_id = _group(engine, max_scans=2, window=False)
    _ssh_jobs(engine, group_id, 5)
    barrier = threading.Barrier(6)
    got: list[int] = []

    def take(n: int) -> None:
        barrier.wait()
        job = queue.lease(engine, f"w{n}", kinds=("ssh_scan",))
        if job is not None:
            got.append(job.id)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 2 and len(set(got)) == 2
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(jobs)
                            .where(jobs.c.state == "leased")).scalar() == 2


def test_scan_now_waits_for_the_window_unless_overridden(engine: Engine) -> None:
    asset_id = _asset(engine, "db-1", ssh_target="root@db-1")
    group_id = _group(engine, members=[asset_id])
    waiting = scan_now(engine, group_id, actor="ana", now=WEDNESDAY)
    assert (waiting.ssh_scan, waiting.run_after) == (1, WINDOW_START)
    with pytest.raises(ScanError, match="reason"):
        scan_now(engine, group_id, actor="ana", override=True, now=WEDNESDAY)
    urgent = scan_now(engine, group_id, actor="ana", override=True,
                      reason="CVE-2024-3094 in the wild", now=WEDNESDAY)
    # The job already waiting for the window is pulled forward, not doubled.
    assert (urgent.ssh_scan, urgent.already_queued, urgent.run_after) == (0, 1, WEDNESDAY)
    [job] = _jobs(engine)
    assert (aware(job.run_after), job.priority) == (WEDNESDAY, EMERGENCY_PRIORITY)
    with engine.connect() as conn:
        logged = conn.execute(select(audit_log).where(
            audit_log.c.action.like("group.scan_now%")).order_by(audit_log.c.id)).all()
    assert [(r.actor, r.action, r.target) for r in logged] == [
        ("ana", "group.scan_now", f"group:{group_id}"),
        ("ana", "group.scan_now.override", f"group:{group_id}")]
    detail = orjson.loads(logged[1].detail)
    assert (detail["override"], detail["reason"], detail["group"]) == (
        True, "CVE-2024-3094 in the wild", "tokyo-dc")


def test_override_scans_even_during_a_blackout(engine: Engine) -> None:
    asset_id = _asset(engine, "db-1", ssh_target="root@db-1")
    group_id = _group(engine, members=[asset_id], window=False)
    with engine.begin() as conn:
        groups.add_window(conn, "test", group_id, kind="blackout",
                          starts_at=WEDNESDAY - timedelta(hours=1),
                          ends_at=WEDNESDAY + timedelta(hours=1))
    assert scan_now(engine, group_id, actor="ana", now=WEDNESDAY).run_after == (
        WEDNESDAY + timedelta(hours=1))
    with engine.begin() as conn:
        conn.execute(update(jobs).values(state="cancelled"))
    forced = scan_now(engine, group_id, actor="ana", override=True, reason="zero-day",
                      now=WEDNESDAY)
    assert (forced.ssh_scan, forced.run_after) == (1, WEDNESDAY)


def test_cli_schedule_and_window(database_url: str, tmp_path: object,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from patchpilot.cli import app
    from patchpilot.db.engine import make_engine, upgrade_schema

    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    engine = make_engine(database_url)
    upgrade_schema(engine)
    _group(engine, "osaka", window=False)
    runner = CliRunner()
    added = runner.invoke(app, ["schedule", "add", "--group", "osaka", "--cron", "0 2 * * 6",
                                "--tz", TOKYO])
    assert added.exit_code == 0, added.output
    assert "schedule 1 for group osaka: cron '0 2 * * 6' (Asia/Tokyo)" in added.output
    both = runner.invoke(app, ["schedule", "add", "--group", "osaka", "--cron", "0 2 * * 6",
                               "--rrule", "FREQ=DAILY"])
    assert both.exit_code == 2 and "exactly one of --cron and --rrule" in both.output
    unknown = runner.invoke(app, ["schedule", "add", "--group", "nara", "--cron", "0 2 * * 6"])
    assert unknown.exit_code == 2 and "no asset group named 'nara'" in unknown.output
    window = runner.invoke(app, ["window", "add", "--group", "osaka", "--rrule",
                                 "FREQ=WEEKLY;BYDAY=SA;BYHOUR=1", "--duration", "4h",
                                 "--tz", TOKYO])
    assert window.exit_code == 0, window.output
    blackout = runner.invoke(app, ["window", "add", "--group", "osaka", "--blackout",
                                   "--rrule", "FREQ=MONTHLY;BYMONTHDAY=-1", "--duration", "1d",
                                   "--tz", TOKYO])
    assert blackout.exit_code == 0, blackout.output
    listed = runner.invoke(app, ["schedule", "list", "--json"])
    [schedule] = orjson.loads(listed.output)
    assert (schedule["group"], schedule["kind"], schedule["timezone"]) == ("osaka", "cron", TOKYO)
    windows = orjson.loads(runner.invoke(app, ["window", "list", "--json"]).output)
    assert [(w["kind"], w["duration_minutes"]) for w in windows] == [
        ("window", 240), ("blackout", 1440)]
    with engine.connect() as conn:
        actors = {r.actor for r in conn.execute(select(audit_log).where(
            audit_log.c.action.in_(("schedule.create", "window.create", "blackout.create"))))}
    assert len(actors) == 1 and actors.pop().startswith("cli:")
    engine.dispose()
