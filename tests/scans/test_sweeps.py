"""Emergency sweeps on real advisories and real-shaped inventories, on SQLite and PostgreSQL.

The Debian tracker's sope entry (CVE-2025-53603, fixed on Debian 12 in the backport
5.8.0-1+deb12u1) and the PyPI advisories of pygments (with their GHSA and PYSEC ids)
decide the answers; every count and field is asserted exactly.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import agents, assets, finding_events, jobs, sweep_results, sweeps
from patchpilot.models import Package
from patchpilot.scans.sweeps import (
    SweepError,
    SweepQuery,
    close_sweeps,
    get_sweep,
    parse_range,
    start_sweep,
    update_sweeps_for_asset,
)
from tests.builders.sweep_estate import (
    BASH,
    DEB,
    SOPE_BACKPORT,
    SOPE_OLD,
    inventory,
    match,
    sweep_estate,
)


@pytest.fixture
def estate(engine: Engine, feed_dir) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The knowledge base and seven assets (``tests.builders.sweep_estate``)."""
    return sweep_estate(engine, feed_dir)


def _by_name(sweep) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {r.name: (r.initial, r.status) for r in sweep.results}


def test_sweep_by_cve_answers_from_stored_inventories(engine: Engine, estate) -> None:  # type: ignore[no-untyped-def]
    sweep = start_sweep(engine, SweepQuery(vuln="CVE-2025-53603"), created_by="sato",
                        deadline_minutes=30)
    assert sweep.vulns == ("CVE-2025-53603",)
    assert sweep.initial == {"affected": 1, "not_affected": 4, "unknown": 2}
    assert _by_name(sweep) == {
        "deb-old": ("affected", "pending"),
        "deb-backport": ("not_affected", "pending"),  # the backported fix counts
        "deb-none": ("not_affected", "pending"),
        "partial": ("unknown", "unknown"),
        "py-old": ("not_affected", "not_affected"),
        "py-new": ("not_affected", "not_affected"),
        "never-seen": ("unknown", "unknown"),
    }
    [hit] = [r for r in sweep.results if r.name == "deb-old"]
    assert hit.packages == [{"ecosystem": "Debian:12", "package": "sope", "version": "5.8.0-1",
                             "fixed": "5.8.0-1+deb12u1", "vulns": ["CVE-2025-53603"],
                             "installed": ["libsope-appserver4.9", "libsope1"]}]
    reasons = {r.name: r.reason for r in sweep.results if r.initial == "unknown"}
    assert reasons == {"partial": "latest inventory is partial", "never-seen": "no inventory yet"}
    assert sweep.status["pending"] == 3 and sweep.state == "running" and sweep.jobs == 3
    # Stored: the sweep and one result per asset, the same as answered.
    with engine.connect() as conn:
        stored = get_sweep(conn, sweep.id)
        queued = conn.execute(select(jobs).where(jobs.c.kind.in_(("sweep_refresh",
                                                                  "ssh_scan")))).all()
    assert stored is not None and _by_name(stored) == _by_name(sweep)
    assert stored.initial == sweep.initial and stored.created_by == "sato"
    by_asset = {j.asset_id: j for j in queued}
    assert set(by_asset) == {estate["deb-old"], estate["deb-backport"], estate["deb-none"]}
    for host in ("deb-old", "deb-backport"):
        job = by_asset[estate[host]]
        assert (job.kind, orjson.loads(job.payload), job.state) == (
            "sweep_refresh", {"sweep_id": sweep.id}, "queued")
        assert job.agent_id is not None and job.priority == 100
    ssh = by_asset[estate["deb-none"]]
    assert (ssh.kind, ssh.agent_id, orjson.loads(ssh.payload)) == (
        "ssh_scan", None, {"sweep_id": sweep.id, "asset_id": estate["deb-none"],
                           "target": "root@deb-none.plant1:22"})
    assert {aware(j.deadline) for j in queued} == {sweep.deadline}
    assert sweep.deadline - sweep.created_at == timedelta(minutes=30)


def test_sweep_by_alias_resolves_to_the_cves(engine: Engine, estate) -> None:  # type: ignore[no-untyped-def]
    ghsa = start_sweep(engine, SweepQuery(vuln="GHSA-fff8-4w9p-7v76"), created_by="sato")
    assert ghsa.vulns == ("CVE-2015-8557",)  # pygments >= 1.2.2, < 2.1
    assert ghsa.initial == {"affected": 1, "not_affected": 4, "unknown": 2}
    assert [r.name for r in ghsa.results if r.initial == "affected"] == ["py-old"]
    pysec = start_sweep(engine, SweepQuery(vuln="PYSEC-2023-117"), created_by="sato")
    assert pysec.vulns == ("CVE-2022-40896",)  # pygments < 2.15.1
    assert sorted(r.name for r in pysec.results if r.initial == "affected") == [
        "py-new", "py-old"]
    [new] = [r for r in pysec.results if r.name == "py-new"]
    assert new.packages[0]["fixed"] == "2.15.1" and new.packages[0]["installed"] == ["Pygments"]
    alsa = start_sweep(engine, SweepQuery(vuln="ALSA-2022:0818"), created_by="sato")
    assert len(alsa.vulns) == 10 and "CVE-2022-26486" in alsa.vulns
    assert alsa.initial == {"affected": 0, "not_affected": 5, "unknown": 2}


def test_sweep_by_package_and_range(engine: Engine, estate) -> None:  # type: ignore[no-untyped-def]
    # "Debian" is every Debian release the estate runs.
    sweep = start_sweep(engine, SweepQuery(vuln="CVE-2025-53603", ecosystem="Debian",
                                           package="SOPE", range="<5.8.0-1+deb12u1"),
                        created_by="sato")
    assert sweep.initial == {"affected": 1, "not_affected": 4, "unknown": 2}
    both = start_sweep(engine, SweepQuery(ecosystem="PyPI", package="pygments",
                                          range=">=2.0,<2.1 || =2.14.0"), created_by="sato")
    assert sorted(r.name for r in both.results if r.initial == "affected") == [
        "py-new", "py-old"]
    assert parse_range(">=5.6.0,<5.6.2") == ('[["5.6.0","5.6.2",null]]', None)
    assert parse_range("<=1.0 || =2.0") == ('[[null,null,"1.0"]]', '["2.0"]')
    with pytest.raises(SweepError, match="'>' is not supported"):
        parse_range(">1.0")


def test_unknown_vulnerabilities_are_refused_clearly(engine: Engine, estate) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SweepError, match="unknown to the knowledge base"):
        start_sweep(engine, SweepQuery(vuln="CVE-1999-0001"), created_by="sato")
    # Only its CVE record is loaded: no advisory names xz-utils yet.
    with pytest.raises(SweepError, match="sweep by package instead"):
        start_sweep(engine, SweepQuery(vuln="cve-2024-3094"), created_by="sato")
    with engine.connect() as conn:
        assert conn.execute(select(sweeps)).first() is None  # nothing half-written


def test_refreshed_inventories_confirm_and_failed_jobs_are_unreachable(
        engine: Engine, estate) -> None:  # type: ignore[no-untyped-def]
    sweep = start_sweep(engine, SweepQuery(vuln="CVE-2025-53603"), created_by="sato")
    with engine.begin() as conn:
        # The stored inventory predates the sweep: it confirms nothing.
        assert update_sweeps_for_asset(conn, estate["deb-old"]) == 0
    match(engine, inventory("deb-old", *SOPE_OLD, BASH))  # the agent's refresh
    match(engine, inventory("deb-backport", *SOPE_BACKPORT, BASH))
    with engine.connect() as conn:
        now = get_sweep(conn, sweep.id)
    assert now is not None
    assert _by_name(now)["deb-old"] == ("affected", "confirmed")
    assert _by_name(now)["deb-backport"] == ("not_affected", "not_affected")
    assert now.status["pending"] == 1 and now.state == "running"
    # The SSH scan of deb-none failed for good: unreachable, before the deadline.
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.kind == "ssh_scan").values(state="failed"))
    assert close_sweeps(engine) == 1
    with engine.connect() as conn:
        done = get_sweep(conn, sweep.id)
    assert done is not None and done.state == "done"
    assert done.status == {"pending": 0, "confirmed": 1, "affected": 0, "not_affected": 3,
                           "unknown": 2, "unreachable": 1, "timed_out": 0}


def test_the_deadline_times_out_the_rest(engine: Engine, estate) -> None:  # type: ignore[no-untyped-def]
    sweep = start_sweep(engine, SweepQuery(vuln="CVE-2025-53603"), created_by="sato",
                        deadline_minutes=10)
    match(engine, inventory("deb-old", *SOPE_OLD, BASH))
    assert close_sweeps(engine, sweep.created_at + timedelta(minutes=9)) == 0
    assert close_sweeps(engine, sweep.created_at + timedelta(minutes=10)) == 2
    # Settled again later: already done, nothing changes and no second event.
    assert close_sweeps(engine, sweep.created_at + timedelta(minutes=20)) == 0
    with engine.connect() as conn:
        done = get_sweep(conn, sweep.id)
        finished = [(r.finding_id, r.asset_id, orjson.loads(r.detail)) for r in conn.execute(
            select(finding_events).where(finding_events.c.kind == "sweep_finished"))]
        left = conn.execute(select(jobs.c.asset_id, jobs.c.state).where(
            jobs.c.kind.in_(("sweep_refresh", "ssh_scan")))).all()
        stored = conn.execute(select(sweep_results.c.status).where(
            sweep_results.c.asset_id == estate["deb-backport"])).scalar_one()
    assert done is not None and done.state == "done"
    assert (done.status["confirmed"], done.status["timed_out"]) == (1, 2)
    assert stored == "timed_out"
    # One sweep_finished event, when it became done, with its final counts.
    assert done is not None
    assert finished == [(None, None, {"sweep_id": sweep.id, "vulns": list(done.vulns),
                                      "counts": done.status})]
    # Nobody needs the leftover refresh jobs any more.
    assert {state for _, state in left} == {"cancelled"}


def test_cli_sweep_prints_the_first_answer(engine: Engine, estate, database_url: str,  # type: ignore[no-untyped-def]
                                           tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["sweep", "CVE-2025-53603", "--deadline", "5"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "deb-old │ sope │ libsope-appserver4.9, libsope1 │ 5.8.0-1 │ 5.8.0-1+deb12u1" in text
    assert "1 affected · 4 not affected · 2 unknown (of 7 assets" in text
    assert "asked 3 agent(s)/SSH target(s) to confirm" in text
    # --wait follows the sweep to its end (here at once: nobody is left to refresh).
    with engine.begin() as conn:
        conn.execute(update(agents).values(revoked_at=now_utc()))
        conn.execute(update(assets).values(ssh_target=None))
    result = CliRunner().invoke(app, ["sweep", "GHSA-fff8-4w9p-7v76", "--wait", "--json"])
    assert result.exit_code == 0, result.output
    final = orjson.loads(result.stdout)
    assert final["vulns"] == ["CVE-2015-8557"] and final["state"] == "done"
    bad = CliRunner().invoke(app, ["sweep", "--package", "xz-utils"])
    assert bad.exit_code == 2 and "go together" in bad.output


def test_a_version_no_rule_can_read_is_unknown_never_not_affected(  # type: ignore[no-untyped-def]
        engine: Engine, estate) -> None:
    # A package whose version the Debian scheme cannot read (a damaged status file): the
    # sweep cannot say the host is safe, so it is "unknown" naming the package and why --
    # a false "not affected" in an emergency is the worst answer a sweep can give.
    odd = Package(DEB, "libsope1", "x:5.8.0-1", source_name="sope")
    estate["deb-odd"] = match(engine, inventory("deb-odd", odd, BASH))
    sweep = start_sweep(engine, SweepQuery(vuln="CVE-2025-53603"), created_by="sato",
                        deadline_minutes=30)
    answers = _by_name(sweep)
    assert answers["deb-odd"] == ("unknown", "unknown")
    assert answers["deb-old"] == ("affected", "pending")
    [odd_result] = [r for r in sweep.results if r.name == "deb-odd"]
    assert odd_result.reason == ("version not readable: sope x:5.8.0-1: Debian:12 version "
                                 "'x:5.8.0-1' cannot be compared: epoch is not a number")
    assert sweep.initial == {"affected": 1, "not_affected": 4, "unknown": 3}
