"""The per-asset summary (``asset_summary``) on real scans: after every kind of write it
equals the same figures counted from the findings themselves, the overview summed from it
equals the SLA report counted from the findings, time moving past due dates is counted
exactly, and migration 0008 fills it (and ``priority_rank``) from older data.

The estate is scanned on a test clock -- the lifecycle, the prioritiser and the summary
read the time the test sets -- so that fixes take whole days, rows are refreshed at
different moments, and due dates fall between those moments and the ones asked about.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, and_, case, delete, func, inspect, or_, select
from sqlalchemy.engine import Connection

from patchpilot.assets.cmdb import parse_records
from patchpilot.assets.context import apply_records
from patchpilot.clock import aware
from patchpilot.db.tables import (
    asset_summary,
    assets,
    finding_priority,
    findings,
)
from patchpilot.findings import lifecycle, summary
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.findings.triage import reapply_decisions, record_decision
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.models import Package
from patchpilot.reports.overview import Overview, overview
from patchpilot.scoring.sla import sla_report
from tests.builders.plan_estate import AJENTI, OLD_FIREFOX, OLD_PYGMENTS, scan
from tests.builders.summary_estate import (
    BANDS,
    GITPYTHON,
    NOW,
    T0,
    WERKZEUG,
    Clock,
    prioritise_all,
)
from tests.conftest import migrate_schema as migrate

# The overview's risk weights, as the patch plan documents them (scans/plan.py).
WEIGHTS = {1: 1000, 2: 100, 3: 10, 4: 1, None: 10}
TRIAGED = ("accepted", "false_positive", "not_affected")


def match_only(engine: Engine, host: str, *packages: Package) -> int:
    """A host's inventory ingested and matched, its findings stored -- the match job
    without its prioritise step (as the estate is between the two)."""
    from patchpilot.findings.scan import scan_inventory

    inventory = Inventory.from_packages(list(packages), complete=True,
                                        asset=AssetIdentity(hostname=host, machine_id=host),
                                        collector=Collector(name="agent"))
    asset_id = ingest_inventory(engine, inventory).asset_id
    lifecycle.apply_findings(engine, asset_id, list(scan_inventory(engine, inventory).findings),
                             complete=True)
    return asset_id


# --- the reference: the same figures counted from findings, written here independently --

def _count(*conditions: Any) -> Any:
    return func.sum(case((and_(*conditions), 1), else_=0))


def reference(conn: Connection) -> dict[int, dict[str, Any]]:
    """Per asset with findings, the summary's figures by GROUP BY over the findings, each
    asset's overdue count and next due date taken as of its summary row's ``as_of``."""
    f, fp, s = findings, finding_priority, asset_summary
    is_open = f.c.state == "open"
    fixed = and_(f.c.state == "fixed", fp.c.priority.is_not(None))
    columns = {
        "open_total": _count(is_open),
        **{f"p{p}": _count(is_open, fp.c.priority == p) for p in (1, 2, 3, 4)},
        "unprioritised": _count(is_open, fp.c.priority.is_(None)),
        **{band.lower(): _count(is_open, f.c.severity == band) for band in BANDS},
        "unknown": _count(is_open, or_(f.c.severity.is_(None), f.c.severity.not_in(BANDS))),
        "kev": _count(is_open, f.c.known_exploited.is_(True)),
        "triaged": _count(f.c.state.in_(TRIAGED)),
        "overdue": _count(is_open, fp.c.due_date < s.c.as_of),
        "next_due": func.min(case((and_(is_open, fp.c.due_date >= s.c.as_of),
                                   fp.c.due_date))),
        "fixed": _count(fixed),
        "fixed_within": _count(fixed, f.c.fixed_at <= fp.c.due_date),
    }
    stmt = (select(f.c.asset_id, *(c.label(n) for n, c in columns.items()))
            .outerjoin(fp, fp.c.finding_id == f.c.id)
            .outerjoin(s, s.c.asset_id == f.c.asset_id)
            .group_by(f.c.asset_id, s.c.as_of))
    out: dict[int, dict[str, Any]] = {}
    for r in conn.execute(stmt):
        row = {n: (int(getattr(r, n) or 0) if n != "next_due" else aware(r.next_due))
               for n in columns}
        unprioritised = row.pop("unprioritised")
        row["risk"] = sum(WEIGHTS[p] * row[f"p{p}"] for p in (1, 2, 3, 4)) \
            + WEIGHTS[None] * unprioritised
        out[r.asset_id] = row
    # Days to fix, in Python from the timestamps: detection is the reopening, if any.
    for r in conn.execute(select(f.c.asset_id, f.c.first_seen, f.c.reopened_at, f.c.fixed_at)
                          .join(fp, fp.c.finding_id == f.c.id).where(f.c.state == "fixed")):
        detected = aware(r.reopened_at or r.first_seen)
        days = (aware(r.fixed_at) - detected).total_seconds() / 86400  # type: ignore[operator]
        out[r.asset_id]["fix_days"] = out[r.asset_id].get("fix_days", 0.0) + days
    return out


def stored(conn: Connection) -> dict[int, dict[str, Any]]:
    """The summary rows as stored, by asset."""
    return {r.asset_id: {**r._asdict(), "next_due": aware(r.next_due), "as_of": aware(r.as_of)}
            for r in conn.execute(select(asset_summary))}


def assert_summary_is_exact(conn: Connection) -> dict[int, dict[str, Any]]:
    """Every summary row equals the reference; the rows, by asset."""
    rows, expected = stored(conn), reference(conn)
    assert set(rows) == set(expected)
    for asset_id, want in expected.items():
        got = rows[asset_id]
        assert got["fix_days"] == pytest.approx(want.pop("fix_days", 0.0), abs=1e-6)
        assert {k: got[k] for k in want} == want, f"asset {asset_id}"
    return rows


def assert_overview_is_exact(conn: Connection, figures: Overview, now: datetime) -> None:
    """The overview's figures equal the SLA report's sums and direct counts at ``now``."""
    sla = sla_report(conn, "priority", now=now)
    overdue = sum(r.overdue for r in sla)
    fixed = sum(r.fixed for r in sla)
    within = sum(r.fixed_within_sla for r in sla)
    assert (figures.overdue, figures.fixed, figures.fixed_within_sla) == (overdue, fixed, within)
    assert figures.sla_compliance == (round(within / (fixed + overdue), 4)
                                      if fixed + overdue else None)
    mttr = (sum((r.mttr_days or 0) * r.fixed for r in sla) / fixed) if fixed else None
    assert figures.mttr_days == (round(mttr, 2) if mttr is not None else None)

    f, fp = findings, finding_priority
    open_rows = conn.execute(select(f.c.asset_id, f.c.severity, f.c.known_exploited,
                                    fp.c.priority)
                             .outerjoin(fp, fp.c.finding_id == f.c.id)
                             .where(f.c.state == "open")).all()
    assert figures.open_total == len(open_rows)
    by_priority = Counter(f"P{r.priority}" if r.priority else "unprioritised"
                          for r in open_rows)
    assert figures.by_priority == dict(by_priority)
    by_severity = Counter(r.severity if r.severity in BANDS else "Unknown" for r in open_rows)
    assert figures.by_severity == dict(by_severity)
    assert figures.known_exploited == sum(bool(r.known_exploited) for r in open_rows)
    assert figures.kev_assets == len({r.asset_id for r in open_rows if r.known_exploited})
    risk: Counter[int] = Counter()
    count: Counter[int] = Counter()
    for r in open_rows:
        risk[r.asset_id] += WEIGHTS[r.priority]
        count[r.asset_id] += 1
    names = dict(conn.execute(select(assets.c.id, assets.c.name)).all())
    top = sorted(risk, key=lambda a: (-risk[a], a))[:10]
    assert figures.top_assets == [{"id": a, "name": names[a], "risk": risk[a],
                                   "open": count[a]} for a in top]


def live_overdue(conn: Connection, now: datetime) -> int:
    """Open findings whose due date is before ``now``, counted from the findings."""
    return int(conn.execute(
        select(func.count()).select_from(findings)
        .join(finding_priority, finding_priority.c.finding_id == findings.c.id)
        .where(findings.c.state == "open", finding_priority.c.due_date < now)).scalar_one())


# --- 1. after real scans and a prioritise -------------------------------------------

def test_summary_and_overview_equal_the_findings(timeline: dict[str, int],
                                                 engine: Engine) -> None:
    with engine.connect() as conn:
        rows = assert_summary_is_exact(conn)
        figures = overview(conn, now=NOW)
        assert_overview_is_exact(conn, figures, NOW)
    web1, web2, ws11 = (timeline[h] for h in ("plant1-web-01", "plant1-web-02",
                                              "plant2-ws-11"))
    # Each row was refreshed by the last write to its asset.
    assert {a: r["as_of"] for a, r in rows.items()} == {
        web1: T0, web2: T0 + timedelta(days=12), timeline["plant2-dev-07"]: T0,
        ws11: T0 + timedelta(days=5), timeline["plant2-ci-03"]: T0}
    # By hand: 51 + 40 (web-02's kernel) + 11 + 9 open; 10 firefox findings fixed on
    # each patched host.  Tier 1 web-01: all P1; web-02 (tier 2) kernel High → P2;
    # dev-07 (tier 4) P4 but its 2 KEV ones P2; the rest default tier 3 → P3.
    assert figures.open_total == 111
    assert figures.by_priority == {"P1": 51, "P2": 42, "P3": 9, "P4": 9}
    assert figures.by_severity == {"Critical": 20, "High": 83, "Medium": 1, "Unknown": 7}
    assert (figures.known_exploited, figures.kev_assets) == (4, 2)
    # Overdue at T0+20d: the 4 open KEV findings (CISA's date, 2022-03-21) and web-01's
    # 49 other P1s (7 days).  Fixed: 20, of which the 4 KEV ones and web-02's 8 other P1s
    # (fixed after 12 days, due in 7) were late.
    assert (figures.overdue, figures.fixed, figures.fixed_within_sla) == (53, 20, 8)
    assert figures.sla_compliance == round(8 / 73, 4)
    assert figures.mttr_days == 8.5  # (10 × 5 days + 10 × 12 days) / 20
    # Risk: 51 × 1000; 40 × 100; 2 × 100 + 9 × 1; 9 × 10 (plant2-ws-11 has none open).
    assert [(a["id"], a["risk"]) for a in figures.top_assets] == [
        (web1, 51000), (web2, 4000), (timeline["plant2-dev-07"], 209),
        (timeline["plant2-ci-03"], 90)]


def test_overview_of_a_group_equals_its_sla_report(timeline: dict[str, int],
                                                    engine: Engine) -> None:
    plant1 = [timeline["plant1-web-01"], timeline["plant1-web-02"]]
    with engine.connect() as conn:
        figures = overview(conn, now=NOW, asset_ids=plant1)
        sla = sla_report(conn, "priority", now=NOW, group="plant1")
    assert figures.open_total == sum(r.open for r in sla) == 91
    assert (figures.overdue, figures.fixed, figures.fixed_within_sla) == (
        sum(r.overdue for r in sla), sum(r.fixed for r in sla),
        sum(r.fixed_within_sla for r in sla)) == (51, 10, 0)
    assert figures.mttr_days == 12.0


# --- 2. every kind of write keeps it exact, without a manual refresh ------------------

def test_summary_follows_every_write(timeline: dict[str, int], engine: Engine,
                                     clock: Clock) -> None:
    ci, web1, dev = (timeline[h] for h in ("plant2-ci-03", "plant1-web-01", "plant2-dev-07"))

    def check() -> dict[int, dict[str, Any]]:
        with engine.connect() as conn:
            rows = assert_summary_is_exact(conn)
            assert_overview_is_exact(conn, overview(conn, now=clock.now), clock.now)
        return rows

    def figures(row: dict[str, Any]) -> tuple[int, ...]:
        return tuple(row[k] for k in ("open_total", "p1", "p2", "p3", "p4", "high", "medium",
                                      "unknown", "triaged", "fixed", "fixed_within"))

    before = check()
    assert figures(before[ci]) == (9, 0, 0, 9, 0, 3, 1, 5, 0, 0, 0)

    # A complete inventory without Werkzeug: its three findings are fixed (P3, in SLA).
    clock.advance(1)
    scan(engine, "plant2-ci-03", GITPYTHON, OLD_PYGMENTS)
    rows = check()
    assert figures(rows[ci]) == (6, 0, 0, 6, 0, 2, 1, 3, 0, 3, 3)
    assert rows[ci]["as_of"] == clock.now
    assert rows[ci]["fix_days"] == pytest.approx(3 * 21)
    assert rows[web1] == before[web1]  # other assets' rows are not rewritten

    # Werkzeug back: reopened, and due 90 days from the reopening.
    clock.advance(2)
    scan(engine, "plant2-ci-03", GITPYTHON, WERKZEUG, OLD_PYGMENTS)
    rows = check()
    assert figures(rows[ci]) == (9, 0, 0, 9, 0, 3, 1, 5, 0, 0, 0)
    assert rows[ci]["next_due"] == T0 + timedelta(days=90)  # the GitPython ones still first

    # A triage decision: pygments' CVE a false positive everywhere (web-01 and ci-03).
    with engine.begin() as conn:
        _, changed = record_decision(
            conn, "sato", vuln_id="CVE-2022-40896", package="pygments", scope="global",
            decision="false_positive", reason="SmithyLexer is never loaded here")
    assert changed == 2
    rows = check()
    assert figures(rows[ci]) == (8, 0, 0, 8, 0, 3, 1, 4, 1, 0, 0)
    assert (rows[web1]["open_total"], rows[web1]["p1"], rows[web1]["triaged"]) == (50, 50, 1)

    # An acceptance that expires: open while accepted, reopened once it lapsed.
    with engine.begin() as conn:
        _, changed = record_decision(
            conn, "sato", vuln_id="CVE-2023-46136", package="werkzeug", scope="asset",
            asset_id=ci, decision="accepted", reason="upload size limited by the proxy",
            expires_at=clock.now + timedelta(days=2))
    assert changed == 1
    assert figures(check()[ci]) == (7, 0, 0, 7, 0, 2, 1, 4, 2, 0, 0)
    clock.advance(3)
    with engine.begin() as conn:
        assert reapply_decisions(conn) == 1
    rows = check()
    assert figures(rows[ci]) == (8, 0, 0, 8, 0, 3, 1, 4, 1, 0, 0)
    assert rows[ci]["as_of"] == clock.now

    # The CMDB makes ci-03 tier 1 and internet-facing: its findings become P1.
    result = apply_records(engine, parse_records([{
        "hostname": "plant2-ci-03", "criticality": 1, "exposure": "internet-facing"}]),
        source="cmdb-import", actor="sato")
    assert [m.asset_id for m in result.updated] == [ci]
    prioritise_all(engine)
    rows = check()
    assert figures(rows[ci]) == (8, 8, 0, 0, 0, 3, 1, 4, 1, 0, 0)
    assert rows[ci]["risk"] == 8000

    # Deleting an asset takes its row with it.
    with engine.begin() as conn:
        conn.execute(delete(assets).where(assets.c.id == dev))
    rows = check()
    assert dev not in rows and len(rows) == 4


# --- 3. time moving past due dates -----------------------------------------------------

def test_overdue_counts_due_dates_crossed_since_each_row(timeline: dict[str, int],
                                                         engine: Engine) -> None:
    web1, web2, ws11 = (timeline[h] for h in ("plant1-web-01", "plant1-web-02",
                                              "plant2-ws-11"))
    later = T0 + timedelta(days=45)  # past web-02's P2 kernel findings (due T0+30)
    early = T0 + timedelta(days=3)  # before web-01's P1s (due T0+7) and two rows' as_of

    def as_of(conn: Connection) -> dict[int, datetime]:
        return {a: r["as_of"] for a, r in stored(conn).items()}

    with engine.connect() as conn:
        # As of their refresh (T0, T0+5d, T0+12d) only the 4 KEV findings were overdue;
        # since then web-01's 49 other P1s (due T0+7d) and web-02's 40 P2s (T0+30d) are.
        assert sum(r["overdue"] for r in stored(conn).values()) == 4
        figures = overview(conn, now=later)
        assert_overview_is_exact(conn, figures, later)
        assert figures.overdue == live_overdue(conn, later) == 4 + 49 + 40

    # Only web-01's row is stale at T0+20d: its next due date (T0+7d) has passed.
    with engine.begin() as conn:
        times = as_of(conn)
        assert summary.refresh_stale(conn, now=NOW) == 1
        assert as_of(conn) == {**times, web1: NOW}
        assert sum(r["overdue"] for r in stored(conn).values()) == live_overdue(conn, NOW) == 53
        assert_summary_is_exact(conn)

    # Now web-01's row, as of T0+20d, counts 51 overdue: at T0+3d the 47 P1s due at T0+7d
    # were not yet (and 2 more of its P1s are KEV findings, due long ago).
    with engine.connect() as conn:
        figures = overview(conn, now=early)
        assert_overview_is_exact(conn, figures, early)
        assert figures.overdue == live_overdue(conn, early) == 4

    with engine.begin() as conn:
        times = as_of(conn)
        assert summary.refresh_stale(conn, now=later) == 1  # web-02: next due T0+30d
        assert as_of(conn) == {**times, web2: later}
        assert sum(r["overdue"] for r in stored(conn).values()) == live_overdue(conn, later)
        # Asked about a moment before them, rows made after it are stale too.
        times = as_of(conn)
        assert summary.refresh_stale(conn, now=early) == 3
        assert as_of(conn) == {**times, web1: early, web2: early, ws11: early}
        assert sum(r["overdue"] for r in stored(conn).values()) == live_overdue(conn, early)
        assert_summary_is_exact(conn)


# --- 6. migration 0008 on data from before it ------------------------------------------

def test_migration_0008_fills_summary_and_priority_rank(timeline: dict[str, int],
                                                        engine: Engine,
                                                        clock: Clock) -> None:
    f, fp = findings, finding_priority
    with engine.begin() as conn:
        # Findings in every state: fixed (ws-11, web-02), triaged, open, and one matched
        # but not prioritised yet (between a match and its prioritise step).
        record_decision(conn, "sato", vuln_id="CVE-2022-40896", package="pygments",
                        scope="global", decision="false_positive", reason="not loaded")
    match_only(engine, "plant2-ws-12", AJENTI)
    with engine.connect() as conn:
        ranks = dict(conn.execute(select(f.c.id, f.c.priority_rank)).all())
        priorities = dict(conn.execute(select(fp.c.finding_id, fp.c.priority)).all())
        states = dict(conn.execute(select(f.c.id, f.c.state)).all())
        before = stored(conn)
    assert Counter(states.values()) == {"open": 110, "fixed": 20, "false_positive": 2}
    # What the writes keep: the rank is the priority, 5 for none, fixed findings included.
    assert ranks == {i: priorities.get(i, 5) for i in ranks}
    assert Counter(ranks.values()) == {1: 61, 2: 52, 3: 9, 4: 9, 5: 1}

    migrate(engine, "downgrade", "0007")
    with engine.connect() as conn:
        schema = inspect(conn)
        assert "asset_summary" not in schema.get_table_names()
        assert "priority_rank" not in {c["name"] for c in schema.get_columns("findings")}
        # Nothing of the findings' own data went with the columns.
        assert conn.execute(select(func.count()).select_from(f)).scalar_one() == 132
        assert dict(conn.execute(select(fp.c.finding_id, fp.c.priority)).all()) == priorities

    clock.advance(1)  # the migration's summary is as of the moment it runs
    migrate(engine, "upgrade", "head", now=clock.now)
    with engine.connect() as conn:
        assert dict(conn.execute(select(f.c.id, f.c.priority_rank)).all()) == ranks
        rows = assert_summary_is_exact(conn)
        assert {r["as_of"] for r in rows.values()} == {clock.now}
        moved = ("as_of", "overdue", "next_due")
        assert {a: {k: v for k, v in r.items() if k not in moved} for a, r in rows.items()} \
            == {a: {k: v for k, v in r.items() if k not in moved} for a, r in before.items()}
        assert sum(r["overdue"] for r in rows.values()) == live_overdue(conn, clock.now)
        assert_overview_is_exact(conn, overview(conn, now=clock.now), clock.now)


def test_trend_counts_openings_and_fixes_per_week(timeline: dict[str, int], engine: Engine,
                                                  clock: Clock) -> None:
    from patchpilot.reports.overview import trend

    # plant2-ws-11 runs the old firefox again: its fixed findings reopen this week.
    scan(engine, "plant2-ws-11", OLD_FIREFOX)
    with engine.connect() as conn:
        weeks = trend(conn, None, clock.now)
        rows = conn.execute(select(findings.c.first_seen, findings.c.reopened_at,
                                   findings.c.fixed_at, findings.c.state)).all()
        ws11 = trend(conn, [timeline["plant2-ws-11"]], clock.now)
    # Twelve Mondays, the last one this week's (NOW is Sunday 22 March 2026).
    assert [w["week"] for w in weeks][-3:] == ["2026-03-02", "2026-03-09", "2026-03-16"]
    assert len(weeks) == 12 and weeks[0]["week"] == "2025-12-29"

    def week_of(moment: datetime | None) -> str | None:
        if moment is None:
            return None
        day = aware(moment).date()  # type: ignore[union-attr]
        return (day - timedelta(days=day.weekday())).isoformat()

    opened = Counter(w for r in rows for w in (week_of(r.first_seen), week_of(r.reopened_at))
                     if w)
    fixed = Counter(week_of(r.fixed_at) for r in rows if r.fixed_at is not None)
    assert weeks == [{"week": w["week"], "opened": opened[w["week"]],
                      "fixed": fixed[w["week"]]} for w in weeks]
    # By hand: every finding first seen at T0; ws-11's firefox fixed in T0's week and
    # reopened now -- a reopened finding keeps no fix date, so that week no longer counts
    # its fix; web-02's fixed in the next week (and still fixed).
    reopened = sum(r.reopened_at is not None for r in rows)
    assert reopened > 0 and all(r.state != "fixed" for r in rows if r.reopened_at)
    assert [(w["opened"], w["fixed"]) for w in weeks[-3:]] == [
        (len(rows), 0), (0, fixed["2026-03-09"]), (reopened, 0)]
    assert fixed["2026-03-09"] > 0
    assert [(w["opened"], w["fixed"]) for w in ws11[-3:]] == [
        (reopened, 0), (0, 0), (reopened, 0)]
