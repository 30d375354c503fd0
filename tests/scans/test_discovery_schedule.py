"""Scheduled discovery: a group's rule names ranges; its schedule queues a ``discover`` job
that waits for the group's windows, is refused in a blackout, and stores what nmap finds."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, select

from patchpilot import queue
from patchpilot.assets import groups as asset_groups
from patchpilot.assets.groups import GroupError
from patchpilot.clock import aware
from patchpilot.db.tables import asset_packages, jobs
from patchpilot.discovery.scope import OutOfScope
from patchpilot.pipeline import HANDLERS
from patchpilot.scans import groups
from patchpilot.scans.discovery import DiscoveryRefused, run_discovery
from patchpilot.scans.scheduler import tick
from tests.snmpd import nmap_or_skip
from tests.sshd import free_port, wait_for_port

TOKYO = "Asia/Tokyo"
WEDNESDAY = datetime(2024, 6, 5, 3, tzinfo=UTC)
# Month-end closing in Tokyo: the last day of June, all day.
BLACKOUT_BEGINS = datetime(2024, 6, 29, 15, tzinfo=UTC)
BLACKOUT_ENDS = datetime(2024, 6, 30, 15, tzinfo=UTC)


def _discovery_group(engine: Engine, ranges: list[str]) -> int:
    with engine.begin() as conn:
        group_id = asset_groups.create_group(conn, "test", "lan-tokyo",
                                             rule={"discover": ranges},
                                             max_concurrent_scans=1)
        groups.add_window(conn, "test", group_id, kind="blackout",
                          rrule="FREQ=MONTHLY;BYMONTHDAY=-1", duration=timedelta(days=1),
                          timezone=TOKYO)
        groups.add_schedule(conn, "test", group_id, "cron", "0 9 * * *", TOKYO,
                            now=datetime(2024, 6, 29, 12, tzinfo=UTC))
    return group_id


def _job(engine: Engine, job_id: int) -> queue.Job:
    with engine.connect() as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).one()
    return queue.Job(row.id, row.kind, orjson.loads(row.payload), row.attempts,
                     row.agent_id, row.asset_id, row.group_id, aware(row.deadline))


def test_a_discovery_rule_must_name_address_ranges(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(GroupError, match=r"rule.discover: 'lan' is "
                                                                 r"not an address range"):
        asset_groups.create_group(conn, "test", "bad", rule={"discover": ["lan"]})
    assert HANDLERS["discover"] is run_discovery
    assert "discover" in queue.SCAN_KINDS  # counted against max_concurrent_scans


@pytest.mark.db
def test_a_scheduled_discovery_waits_out_a_blackout_and_is_refused_inside_it(
        engine: Engine) -> None:
    group_id = _discovery_group(engine, ["192.0.2.0/28"])
    due = datetime(2024, 6, 30, 0, tzinfo=UTC)  # 30 June 09:00 JST, inside the blackout
    tick(engine, due)
    with engine.connect() as conn:
        [row] = conn.execute(select(jobs).where(jobs.c.kind == "discover")).all()
    assert (row.group_id, aware(row.run_after)) == (group_id, BLACKOUT_ENDS)
    assert orjson.loads(row.payload)["targets"] == ["192.0.2.0/28"]
    # A second run while it waits does not pile up a second job.
    tick(engine, due + timedelta(days=1))
    with engine.connect() as conn:
        assert conn.execute(select(jobs.c.id).where(jobs.c.kind == "discover")).all() == [
            (row.id,)]
    # Run anyway inside the blackout (a blackout added after it was queued): refused.
    with pytest.raises(DiscoveryRefused, match="a blackout is in force"):
        run_discovery(engine, _job(engine, row.id), now=due)


@pytest.mark.db
def test_a_scheduled_discovery_stores_what_nmap_finds(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nmap_or_skip()
    port = free_port()
    http = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        wait_for_port(port)
        with engine.begin() as conn:
            group_id = asset_groups.create_group(conn, "test", "loopback",
                                                 rule={"discover": ["127.0.0.1/32"]})
            job_id = queue.enqueue(conn, "discover", {"targets": ["127.0.0.1/32"],
                                                      "ports": str(port)},
                                   group_id=group_id)
        job = _job(engine, job_id)
        monkeypatch.setenv("PATCHPILOT_DISCOVERY_SCOPE", "10.0.0.0/8")
        with pytest.raises(OutOfScope, match="outside the discovery scope"):
            run_discovery(engine, job)
        monkeypatch.setenv("PATCHPILOT_DISCOVERY_SCOPE", "127.0.0.0/8")
        monkeypatch.setenv("PATCHPILOT_DISCOVERY_RATE", "5000")
        result = run_discovery(engine, job)
    finally:
        http.terminate()
        http.wait(timeout=5)
    assert (result["hosts"], result["stored"], result["kept"]) == (1, 1, 0)
    with engine.connect() as conn:
        rows = conn.execute(select(asset_packages.c.ecosystem, asset_packages.c.name,
                                   asset_packages.c.version)).all()
    assert [tuple(r) for r in rows] == [("CPE", "python:simplehttpserver", "0.6")]


def test_the_command_line_creates_a_discovery_group(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from patchpilot.cli import app
    from patchpilot.db import connect

    env = {"PATCHPILOT_HOME": str(tmp_path)}
    done = CliRunner().invoke(app, ["group", "create", "lan-tokyo", "--discover",
                                    "10.20.30.7/24", "--discover", "192.0.2.0/28"], env=env)
    assert done.exit_code == 0, done.output
    engine = connect(f"sqlite:///{tmp_path / 'patchpilot.db'}")
    with engine.connect() as conn:
        group_id = asset_groups.group_id_named(conn, "lan-tokyo")
        assert asset_groups.discover_ranges(conn, group_id) == ["10.20.30.0/24",
                                                                "192.0.2.0/28"]
    engine.dispose()
    bad = CliRunner().invoke(app, ["group", "create", "x", "--discover", "lan"], env=env)
    assert bad.exit_code == 2
    assert "rule.discover: 'lan' is not an address range" in " ".join(bad.output.split())
