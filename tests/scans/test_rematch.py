"""Re-matching stored inventories after a feed update, each distinct package version once."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.db.tables import advisories, asset_packages, finding_priority, findings, jobs
from patchpilot.findings.scan import scan_inventory
from patchpilot.knowledge.update import update_from
from patchpilot.queue import Job
from patchpilot.scans import rematch
from tests.builders.sweep_estate import REMATCH_HOSTS as HOSTS
from tests.builders.sweep_estate import (
    SOPE_OLD,
    inventory,
    match,
)
from tests.builders.sweep_estate import UPDATE_FEEDS as UPDATE

FIRST = {"osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json"}


@pytest.fixture
def stored(engine: Engine, feed_dir) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Inventories matched against a knowledge base that knows only AlmaLinux."""
    update_from(engine, [feed_dir(FIRST, "first")])
    ids = {host: match(engine, inventory(host, *pkgs)) for host, pkgs in HOSTS.items()}
    ids["partial"] = match(engine, inventory("partial", *SOPE_OLD, complete=False))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(findings)).scalar() == 0
    return ids


def _rows(engine: Engine) -> dict[tuple[int, str, str], tuple]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return {(r.asset_id, r.vuln_id, r.package): (r.state, r.new_from_feed,
                                                     r.installed_version, r.fixed_version)
                for r in conn.execute(select(findings))}


def test_feed_update_findings_are_new_from_feed(engine: Engine, stored, feed_dir,  # type: ignore[no-untyped-def]
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    update_from(engine, [feed_dir(UPDATE, "update")])
    calls: list[int] = []
    real = rematch.match_packages

    def spy(conn, packages):  # type: ignore[no-untyped-def]
        packages = list(packages)
        calls.append(len(packages))
        return real(conn, packages)

    monkeypatch.setattr(rematch, "match_packages", spy)
    done = rematch.rematch_all(engine)
    with engine.connect() as conn:
        instances = conn.execute(select(func.count()).select_from(asset_packages)).scalar()
    # 7 assets, 11 package rows (the two sope binaries are one source row), but only 5
    # distinct (ecosystem, name, version): matched once each, in one call.
    assert (instances, done.distinct, calls) == (11, 5, [5])
    assert done.matched == 3  # sope 5.8.0-1, pygments 2.0.2 and 2.14.0
    rows = _rows(engine)
    ids = stored
    assert rows == {
        (ids["deb-old-1"], "CVE-2025-53603", "sope"): ("open", True, "5.8.0-1",
                                                       "5.8.0-1+deb12u1"),
        (ids["deb-old-2"], "CVE-2025-53603", "sope"): ("open", True, "5.8.0-1",
                                                       "5.8.0-1+deb12u1"),
        (ids["partial"], "CVE-2025-53603", "sope"): ("open", True, "5.8.0-1",
                                                     "5.8.0-1+deb12u1"),
        (ids["py-old"], "CVE-2015-8557", "pygments"): ("open", True, "2.0.2", "2.1"),
        (ids["py-old"], "CVE-2022-40896", "pygments"): ("open", True, "2.0.2", "2.15.1"),
        (ids["py-new-1"], "CVE-2022-40896", "pygments"): ("open", True, "2.14.0", "2.15.1"),
        (ids["py-new-2"], "CVE-2022-40896", "pygments"): ("open", True, "2.14.0", "2.15.1"),
    }
    assert (done.new, done.fixed, done.assets, done.findings) == (7, 0, 6, 7)
    # Each finding is what a scan of the same inventory gives, binaries and command too.
    scanned = scan_inventory(engine, inventory("deb-old-1", *HOSTS["deb-old-1"]))
    with engine.connect() as conn:
        data = orjson.loads(conn.execute(select(findings.c.data).where(
            findings.c.asset_id == ids["deb-old-1"])).scalar_one())
    # ... reported by the matcher (its producer: findings/lifecycle.py).
    assert data == {**orjson.loads(orjson.dumps(scanned.findings[0].to_dict())),
                    "sources": ["matcher"]}
    assert data["evidence"]["packages"] == ["libsope-appserver4.9", "libsope1"]
    assert data["fix"]["command"] == (
        "apt-get install --only-upgrade libsope-appserver4.9 libsope1")
    # A second re-match finds nothing new and closes nothing.
    again = rematch.rematch_all(engine)
    assert (again.new, again.fixed, again.findings) == (0, 0, 7)
    assert {k: v[1] for k, v in _rows(engine).items()} == dict.fromkeys(rows, True)


def test_withdrawn_advisory_fixes_only_complete_inventories(engine: Engine, stored,  # type: ignore[no-untyped-def]
                                                            feed_dir) -> None:
    update_from(engine, [feed_dir(UPDATE, "update")])
    rematch.rematch_all(engine)
    # The Debian tracker's advisories are withdrawn: their findings close where the
    # inventory was complete, and stay open on the partial one.
    with engine.begin() as conn:
        conn.execute(advisories.delete().where(advisories.c.feed == "debian-tracker"))
    done = rematch.rematch_all(engine)
    states = {(a, v): s for (a, v, _), (s, *_) in _rows(engine).items() if v.startswith(
        "CVE-2025")}
    assert states == {(stored["deb-old-1"], "CVE-2025-53603"): "fixed",
                      (stored["deb-old-2"], "CVE-2025-53603"): "fixed",
                      (stored["partial"], "CVE-2025-53603"): "open"}
    assert done.fixed == 2 and done.new == 0


def test_db_update_queues_or_runs_a_rematch(engine: Engine, stored, feed_dir,  # type: ignore[no-untyped-def]
                                            database_url: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from patchpilot import worker

    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    root = feed_dir({"osv/PYSEC-2016-32.yaml": UPDATE["osv/PYSEC-2016-32.yaml"]}, "one")
    result = CliRunner().invoke(app, ["db", "update", "--from", str(root)])
    assert result.exit_code == 0, result.output
    assert "queued re-match job" in result.output
    with engine.connect() as conn:
        job = conn.execute(select(jobs).where(jobs.c.kind == "rematch")).one()
    payload = orjson.loads(job.payload)
    assert payload["changed_since"] is not None  # only an advisory was added
    out = worker.HANDLERS["rematch"](engine, Job(job.id, "rematch", payload,
                                                 1, None, None, None, None))
    # Only the three hosts with pygments are re-matched: their 3 distinct package versions
    # (pygments 2.0.2 and 2.14.0, and py-new-2's bash), not the estate's 5.
    assert (out["new"], out["distinct"], out["assets"]) == (1, 3, 1)  # CVE-2015-8557, py-old
    # The new finding is prioritised by the job the re-match queued (its own transaction).
    with engine.connect() as conn:
        queued = conn.execute(select(jobs).where(jobs.c.kind == "prioritise")).one()
        new_id = conn.execute(select(findings.c.id).where(
            findings.c.vuln_id == "CVE-2015-8557")).scalar_one()
        assert conn.execute(select(finding_priority).where(
            finding_priority.c.finding_id == new_id)).first() is None
    assert out["prioritise_job"] == queued.id
    worker.HANDLERS["prioritise"](engine, Job(queued.id, "prioritise", {}, 1, None, None,
                                              None, None))
    with engine.connect() as conn:
        assert conn.execute(select(finding_priority.c.priority).where(
            finding_priority.c.finding_id == new_id)).scalar_one() in (1, 2, 3, 4)
        assert conn.execute(select(findings.c.priority_rank).where(
            findings.c.id == new_id)).scalar_one() in (1, 2, 3, 4)
    root = feed_dir({"osv/PYSEC-2023-117.yaml": UPDATE["osv/PYSEC-2023-117.yaml"]}, "two")
    result = CliRunner().invoke(app, ["db", "update", "--from", str(root), "--rematch"])
    assert result.exit_code == 0, result.output
    assert "re-matched 3 asset(s): 3 distinct package versions, 3 new finding(s)" in " ".join(
        result.output.split())
    assert "re-prioritised:" in result.output
    with engine.connect() as conn:  # inline, the new findings are prioritised at once
        assert conn.execute(select(func.count()).select_from(findings).outerjoin(
            finding_priority, finding_priority.c.finding_id == findings.c.id).where(
            findings.c.state == "open", finding_priority.c.finding_id.is_(None))
            ).scalar_one() == 0
