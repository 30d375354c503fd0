"""SLA due dates in SQL (incl. the KEV date), overdue findings, compliance and MTTR."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select

from patchpilot.clock import aware
from patchpilot.db.tables import (
    asset_context,
    asset_group_members,
    asset_groups,
    assets,
    finding_priority,
    findings,
    kev,
)
from patchpilot.scoring.apply import reprioritise
from patchpilot.scoring.reasons import reason_text
from patchpilot.scoring.sla import overdue_findings, sla_report

SEEN = datetime(2022, 3, 8, 9, 30, tzinfo=UTC)
NOW = datetime(2022, 5, 1, tzinfo=UTC)


def _estate(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(kev).values(cve="CVE-2022-26485", date_added="2022-03-07",
                                        due_date="2022-03-21", ransomware=False))
        web = conn.execute(insert(assets).values(name="plant1-web-01", first_seen=SEEN,
                                                 last_seen=SEEN).returning(assets.c.id)).scalar()
        dev = conn.execute(insert(assets).values(name="plant2-dev-07", first_seen=SEEN,
                                                 last_seen=SEEN).returning(assets.c.id)).scalar()
        conn.execute(insert(asset_context), [
            {"asset_id": web, "criticality": 1, "exposure": "internet-facing",
             "environment": "production", "service": "web shop", "source": "cmdb-import",
             "updated_at": SEEN},
            {"asset_id": dev, "criticality": 4, "exposure": "isolated",
             "environment": "development", "service": "build", "source": "cmdb-import",
             "updated_at": SEEN}])
        group = conn.execute(insert(asset_groups).values(
            name="plant1", max_concurrent_scans=5, created_at=SEEN).returning(
            asset_groups.c.id)).scalar()
        conn.execute(insert(asset_group_members).values(group_id=group, asset_id=web))

        def finding(asset: int, vuln: str, sev: str, state: str, kev_: bool = False,
                    fixed_days: int | None = None) -> dict[str, object]:
            return {"asset_id": asset, "vuln_id": vuln, "ecosystem": "AlmaLinux:8",
                    "package": "firefox", "state": "open", "severity": sev,
                    "known_exploited": kev_, "first_seen": SEEN, "last_seen": SEEN,
                    "times_reopened": 0, "new_from_feed": False, "data": "{}",
                    "_state": state, "_fixed": fixed_days}

        rows = [finding(web, "CVE-2022-26485", "High", "open", True),      # P1, KEV due 03-21
                finding(web, "CVE-2022-25315", "Critical", "fixed", fixed_days=3),   # in SLA
                finding(web, "CVE-2022-26381", "High", "fixed", fixed_days=20),  # P1: late
                finding(dev, "CVE-2022-25315", "Critical", "open"),        # P4, 180 days
                finding(dev, "CVE-2022-26381", "Medium", "fixed", fixed_days=10)]  # P4 in SLA
        for r in rows:
            state, fixed = r.pop("_state"), r.pop("_fixed")
            fid = conn.execute(insert(findings).values(**r).returning(findings.c.id)).scalar()
            r["id"], r["state_after"], r["fixed"] = fid, state, fixed
        reprioritise(conn)  # priorities are computed while every finding is open
        for r in rows:
            if r["state_after"] == "fixed":
                conn.execute(findings.update().where(findings.c.id == r["id"]).values(
                    state="fixed", fixed_at=SEEN + timedelta(days=int(r["fixed"]))))  # type: ignore[call-overload]


def test_due_dates_in_sql(engine: Engine) -> None:
    _estate(engine)
    with engine.connect() as conn:
        due = {(r.name, r.vuln_id): (r.priority, aware(r.due_date)) for r in conn.execute(
            select(assets.c.name, findings.c.vuln_id, finding_priority.c.priority,
                   finding_priority.c.due_date)
            .join(findings, findings.c.asset_id == assets.c.id)
            .join(finding_priority, finding_priority.c.finding_id == findings.c.id))}
    # P1: 7 days (03-15) end before the KEV due date (03-21), so the SLA date stands.
    assert due[("plant1-web-01", "CVE-2022-26485")] == (1, SEEN + timedelta(days=7))
    assert due[("plant2-dev-07", "CVE-2022-25315")] == (4, SEEN + timedelta(days=180))


def test_kev_date_wins_when_earlier(engine: Engine) -> None:
    _estate(engine)
    with engine.begin() as conn:
        conn.execute(asset_context.update().values(criticality=4, exposure="isolated",
                                                   environment="development"))
        reprioritise(conn)
        row = conn.execute(select(finding_priority.c.priority, finding_priority.c.due_date,
                                  finding_priority.c.reason)
                           .join(findings, findings.c.id == finding_priority.c.finding_id)
                           .where(findings.c.vuln_id == "CVE-2022-26485")).one()
    # P2 (KEV floor on tier 4): 30 days would be 04-07; KEV's due date 03-21 is earlier.
    assert (row.priority, aware(row.due_date)) == (2, datetime(2022, 3, 22, tzinfo=UTC))
    assert reason_text(row.reason) == "P2: High × tier 4; known exploited; development"


def test_compliance_and_mttr(engine: Engine) -> None:
    _estate(engine)
    with engine.connect() as conn:
        by_priority = {r.key: r for r in sla_report(conn, "priority", now=NOW)}
        by_service = {r.key: r for r in sla_report(conn, "service", now=NOW)}
        by_group = {r.key: r for r in sla_report(conn, "group", now=NOW)}
        overdue = overdue_findings(conn, now=NOW)
    p1 = by_priority["P1"]
    # Open KEV finding overdue; one fixed in 3 days (in SLA), one in 20 days (late).
    assert (p1.open, p1.overdue, p1.fixed, p1.fixed_within_sla) == (1, 1, 2, 1)
    assert p1.compliance == round(1 / 3, 4) and p1.mttr_days == 11.5
    p4 = by_priority["P4"]
    assert (p4.open, p4.overdue, p4.fixed, p4.fixed_within_sla, p4.compliance,
            p4.mttr_days) == (1, 0, 1, 1, 1.0, 10.0)
    assert set(by_service) == {"web shop", "build"}
    assert by_service["build"].compliance == 1.0
    assert set(by_group) == {"plant1", "(no group)"}
    assert by_group["plant1"].overdue == 1
    assert [(o["asset"], o["vuln_id"], o["priority"]) for o in overdue] == [
        ("plant1-web-01", "CVE-2022-26485", 1)]
