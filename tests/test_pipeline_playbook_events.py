"""The events playbooks react to that are noticed rather than caused: ``sla_due_soon`` (from
``pipeline.upkeep``), ``epss_crossed`` (a feed update re-matched onto open findings) and
``plan_verified`` (a plan rebuild that finds a host fixed) -- each written once per
occurrence, in the transaction of its change.  Real AlmaLinux 8 hosts (ALSA-2022:0818 for
firefox: ten CVEs) and FIRST's real 2022 EPSS scores, on both databases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select, update

from patchpilot import pipeline
from patchpilot.clock import iso, now_utc
from patchpilot.config import load_settings
from patchpilot.db.tables import assets, finding_events, finding_priority, findings
from patchpilot.findings.events import epss_crossing
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.findings.triage import record_decision
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory, OsInfo
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package
from patchpilot.scans import plan_store
from patchpilot.scans.plan_store import item_key
from patchpilot.scans.rematch import rematch_all

ALMA8 = Ecosystem("AlmaLinux:8")
FIREFOX, FIXED_FIREFOX = "91.6.0-1.el8_5.alma", "91.7.0-3.el8_5.alma"
ALSA = {"osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json"}
FIREFOX_CVES = ["CVE-2022-25235", "CVE-2022-25236", "CVE-2022-25315", "CVE-2022-26381",
                "CVE-2022-26383", "CVE-2022-26384", "CVE-2022-26386", "CVE-2022-26387",
                "CVE-2022-26485", "CVE-2022-26486"]


def _scan(engine: Engine, host: str, version: str) -> int:
    """Store and process ``host``'s inventory with firefox at ``version``; its asset id."""
    inv = Inventory.from_packages(
        [Package(ALMA8, "firefox", version, arch="x86_64", source_name="firefox",
                 source_version=version)],
        os=OsInfo(id="almalinux", version_id="8.5"), collector=Collector(name="local"),
        asset=AssetIdentity(hostname=host))
    stored = ingest_inventory(engine, inv)
    pipeline.process_inventory(engine, stored.inventory_id)
    return stored.asset_id


def _events(engine: Engine, kind: str) -> list[tuple[int | None, int | None, Any]]:
    with engine.connect() as conn:
        return [(r.finding_id, r.asset_id, orjson.loads(r.detail) if r.detail else None)
                for r in conn.execute(select(finding_events)
                                      .where(finding_events.c.kind == kind)
                                      .order_by(finding_events.c.id))]


def _ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {v: i for i, v in conn.execute(select(findings.c.id, findings.c.vuln_id))}


@pytest.fixture
def alma(engine: Engine, feed_dir) -> Engine:  # type: ignore[no-untyped-def]
    assert {r.status for r in update_from(engine, [feed_dir(ALSA)])} == {"loaded"}
    return engine


# --- sla_due_soon -----------------------------------------------------------------------

def test_due_soon_once_per_due_date(alma: Engine) -> None:
    host = _scan(alma, "alma-1", FIREFOX)
    ids = _ids(alma)
    now = now_utc()
    soon, later, past = now + timedelta(days=2), now + timedelta(days=10), now - timedelta(hours=1)
    with alma.begin() as conn:
        conn.execute(update(finding_priority).values(due_date=later))
        # Two due within the warning period (3 days), one overdue (a breach, not a warning).
        conn.execute(update(finding_priority).where(finding_priority.c.finding_id.in_(
            [ids["CVE-2022-25235"], ids["CVE-2022-26485"]])).values(due_date=soon))
        conn.execute(update(finding_priority).where(
            finding_priority.c.finding_id == ids["CVE-2022-26486"]).values(due_date=past))
        priority = dict(conn.execute(select(finding_priority.c.finding_id,
                                            finding_priority.c.priority)).all())
    settings = load_settings({"PATCHPILOT_HOME": "/srv/pp"})
    pipeline.upkeep(alma, settings)
    pipeline.upkeep(alma, settings)  # nothing new: nothing written again

    def warning(vuln: str, due: Any) -> tuple[int, int, dict[str, Any]]:
        return (ids[vuln], host, {"priority": priority[ids[vuln]], "due": iso(due)})

    first = [warning("CVE-2022-25235", soon), warning("CVE-2022-26485", soon)]
    assert sorted(_events(alma, "sla_due_soon"), key=repr) == sorted(first, key=repr)
    assert _events(alma, "sla_breached") == [(ids["CVE-2022-26486"], host,
                                              {"priority": priority[ids["CVE-2022-26486"]]})]
    # A re-prioritisation moves one due date (earlier, still within the period): warned
    # again for the new date; the other keeps its date and its one warning.
    sooner = now + timedelta(days=1)
    with alma.begin() as conn:
        conn.execute(update(finding_priority).where(
            finding_priority.c.finding_id == ids["CVE-2022-26485"]).values(due_date=sooner))
    pipeline.upkeep(alma, settings)
    assert sorted(_events(alma, "sla_due_soon"), key=repr) == sorted(
        [*first, warning("CVE-2022-26485", sooner)], key=repr)
    # A finding that is no longer open is not warned about; 0 days turns warnings off.
    with alma.begin() as conn:
        conn.execute(update(finding_priority).where(
            finding_priority.c.finding_id == ids["CVE-2022-26381"]).values(due_date=soon))
        conn.execute(update(findings).where(findings.c.id == ids["CVE-2022-26381"])
                     .values(state="fixed"))
        conn.execute(update(finding_priority).where(
            finding_priority.c.finding_id == ids["CVE-2022-26383"]).values(due_date=soon))
    pipeline.upkeep(alma, load_settings({"PATCHPILOT_HOME": "/srv/pp",
                                         "PATCHPILOT_SLA_WARNING_DAYS": "0"}))
    assert len(_events(alma, "sla_due_soon")) == 3
    pipeline.upkeep(alma, settings)
    assert _events(alma, "sla_due_soon")[3:] == [warning("CVE-2022-26383", soon)]


# --- epss_crossed -----------------------------------------------------------------------

# Yesterday's scores of the firefox CVEs (today's are FIRST's published 2022 figures):
# 25236 rose from 0.005 to 0.35867 (across 0.01 and 0.2), 26486 from 0.005 to 0.02349
# (across 0.01, but its finding is accepted), 26381 from 0.005 to 0.00849 (across
# nothing), 25315 fell; 26485 had no score yet (0.13797 today: a first score); the
# rest are unchanged.
YESTERDAY = {"CVE-2022-25235": "0.049550000", "CVE-2022-25236": "0.005000000",
             "CVE-2022-25315": "0.060000000", "CVE-2022-26381": "0.005000000",
             "CVE-2022-26383": "0.006550000", "CVE-2022-26384": "0.009310000",
             "CVE-2022-26386": "0.006800000", "CVE-2022-26387": "0.006570000",
             "CVE-2022-26486": "0.005000000"}


def test_epss_crossed_once_for_open_findings(alma: Engine, tmp_path: Path, feed_dir,  # type: ignore[no-untyped-def]
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_EPSS_THRESHOLDS", "0.01,0.2,0.5")
    before = tmp_path / "yesterday" / "epss" / "epss_scores-2022-12-01.csv"
    before.parent.mkdir(parents=True)
    before.write_text("#model_version:v2022.01.01,score_date:2022-12-01T00:00:00+0000\n"
                      "cve,epss,percentile\n"
                      + "".join(f"{cve},{score},0.5\n" for cve, score in YESTERDAY.items()))
    assert {r.status for r in update_from(alma, [before.parent.parent])} == {"loaded"}
    host = _scan(alma, "alma-1", FIREFOX)
    ids = _ids(alma)
    with alma.begin() as conn:
        record_decision(conn, "ana", vuln_id="CVE-2022-26486", package=None, scope="asset",
                        asset_id=host, decision="risk_accepted", reason="kiosk only")
    assert _events(alma, "epss_crossed") == []
    today = feed_dir({"epss/CVE_2022_EPSS.csv": "epss/CVE_2022_EPSS.csv"}, name="today")
    results = update_from(alma, [today])
    follow = pipeline.after_feed_update(alma, results)
    assert follow.rematch is not None and follow.rematch.assets == 1
    crossed = [(ids["CVE-2022-25236"], host,
                {"from": 0.005, "to": 0.35867, "threshold": 0.2})]
    assert _events(alma, "epss_crossed") == crossed
    with alma.connect() as conn:  # the finding carries today's score, as the event says
        assert conn.execute(select(findings.c.epss_score).where(
            findings.c.id == ids["CVE-2022-25236"])).scalar_one() == 0.35867
    # The same scores re-matched again: nothing crossed, nothing written.
    assert rematch_all(alma).assets == 1
    assert _events(alma, "epss_crossed") == crossed


def test_epss_crossing_is_the_highest_threshold_passed_upwards() -> None:
    thresholds = (0.1, 0.5, 0.9)
    assert epss_crossing(0.05, 0.95, thresholds) == {"from": 0.05, "to": 0.95,
                                                     "threshold": 0.9}
    assert epss_crossing(0.05, 0.5, thresholds) == {"from": 0.05, "to": 0.5,
                                                    "threshold": 0.5}
    assert epss_crossing(0.5, 0.6, thresholds) is None  # at or above 0.5 already
    assert epss_crossing(0.6, 0.05, thresholds) is None  # downwards
    assert epss_crossing(None, 0.95, thresholds) is None  # a first score
    assert epss_crossing(0.05, 0.95, ()) is None  # off


# --- plan_verified ----------------------------------------------------------------------

def test_plan_verified_once_per_item_and_host(alma: Engine) -> None:
    first = _scan(alma, "alma-1", FIREFOX)
    second = _scan(alma, "alma-2", FIREFOX)
    # The first plan: both hosts pending.  Nothing was verified against an earlier plan.
    assert plan_store.rebuild(alma).generation == 1
    assert _events(alma, "plan_verified") == []
    # alma-1 upgraded firefox: the next plan finds it fixed, alma-2 still pending.
    assert _scan(alma, "alma-1", FIXED_FIREFOX) == first
    assert plan_store.rebuild(alma).generation == 2
    key = item_key("fix", "AlmaLinux:8", "firefox", FIXED_FIREFOX)
    detail = {"item": key, "title": f"firefox → {FIXED_FIREFOX}", "vulns": FIREFOX_CVES}
    assert _events(alma, "plan_verified") == [(None, first, detail)]
    with alma.connect() as conn:
        assert dict(conn.execute(select(assets.c.id, assets.c.name)).all()) == {
            first: "alma-1", second: "alma-2"}
    # The plan's own events leave it current; a build anyway verifies nothing new.
    with alma.connect() as conn:
        assert not plan_store.status(conn).stale
    assert plan_store.rebuild(alma).generation == 3
    assert _events(alma, "plan_verified") == [(None, first, detail)]
    assert _scan(alma, "alma-2", FIXED_FIREFOX) == second
    plan_store.rebuild(alma)
    plan_store.rebuild(alma)
    assert _events(alma, "plan_verified") == [(None, first, detail), (None, second, detail)]
