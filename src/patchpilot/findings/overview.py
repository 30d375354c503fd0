"""The estate at a glance: the dashboard overview's figures, each one aggregate SQL.

Every figure is a ``GROUP BY``/``COUNT`` the database answers from its indexes
(``ix_findings_state`` on (state, severity), ``ix_finding_priority``), never rows pulled
into Python: the target is 1,000,000 findings on 10,000 assets in well under 300 ms.
SLA compliance and MTTR come from ``scoring.sla`` so the dashboard, the API and the
reports agree on one definition.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, not_, or_, select
from sqlalchemy.engine import Connection

from patchpilot.clock import now_utc
from patchpilot.db.tables import (
    asset_context,
    asset_group_members,
    assets,
    finding_priority,
    findings,
    schedules,
)
from patchpilot.scans.schedules import next_run
from patchpilot.scoring.sla import sla_report

SEVERITIES = ("Critical", "High", "Medium", "Low", "None", "Unknown")
# An asset nobody scheduled is "not scanned" after a week (the default).
DEFAULT_SCAN_INTERVAL = timedelta(days=7)
# Risk of an open finding for the "top risky" lists: the patch plan's weights, so one P1
# outweighs any number of P4s (see scans/plan.py).
RISK_WEIGHTS = {1: 1000, 2: 100, 3: 10, 4: 1}
TREND_WEEKS = 12


@dataclass(slots=True)
class Overview:
    """The figures of the overview page."""

    open_total: int = 0
    by_priority: dict[str, int] = field(default_factory=dict)  # "P1".."P4", "unprioritised"
    by_severity: dict[str, int] = field(default_factory=dict)
    known_exploited: int = 0
    overdue: int = 0
    sla_compliance: float | None = None  # 0..1
    mttr_days: float | None = None
    trend: list[dict[str, Any]] = field(default_factory=list)  # week, opened, fixed
    top_assets: list[dict[str, Any]] = field(default_factory=list)
    top_services: list[dict[str, Any]] = field(default_factory=list)
    not_scanned: int = 0
    not_scanned_assets: list[dict[str, Any]] = field(default_factory=list)
    assets_total: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _week(conn: Connection, column: Any) -> Any:
    # The Monday of the column's week, as text, in either dialect.
    if conn.dialect.name == "postgresql":
        return func.to_char(func.date_trunc("week", column), "YYYY-MM-DD")
    return func.date(column, "weekday 0", "-6 days")


def _risk() -> Any:
    return case(*((finding_priority.c.priority == p, literal(w))
                  for p, w in RISK_WEIGHTS.items()), else_=literal(10))


def overview(conn: Connection, *, now: datetime | None = None, top: int = 10) -> Overview:
    """Every figure of the overview."""
    now = now or now_utc()
    out = Overview()
    is_open = findings.c.state == "open"
    # Severity straight from the (state, severity) index.
    for severity, n in conn.execute(select(findings.c.severity, func.count())
                                    .where(is_open).group_by(findings.c.severity)):
        key = severity if severity in SEVERITIES else "Unknown"
        out.by_severity[key] = out.by_severity.get(key, 0) + int(n)
    out.open_total = sum(out.by_severity.values())
    prioritised = 0
    for priority, n in conn.execute(
            select(finding_priority.c.priority, func.count())
            .join(findings, findings.c.id == finding_priority.c.finding_id)
            .where(is_open).group_by(finding_priority.c.priority)):
        out.by_priority[f"P{priority}"] = int(n)
        prioritised += int(n)
    if out.open_total > prioritised:
        out.by_priority["unprioritised"] = out.open_total - prioritised
    out.known_exploited = int(conn.execute(select(func.count()).select_from(findings).where(
        is_open, findings.c.known_exploited.is_(True))).scalar() or 0)

    sla = sla_report(conn, "priority", now=now)
    out.overdue = sum(r.overdue for r in sla)
    due = sum(r.fixed + r.overdue for r in sla)
    within = sum(r.fixed_within_sla for r in sla)
    out.sla_compliance = round(within / due, 4) if due else None
    fixed = sum(r.fixed for r in sla if r.mttr_days is not None)
    if fixed:
        # Each row's MTTR weighted by its fixed findings: the mean over all of them.
        out.mttr_days = round(sum(r.mttr_days * r.fixed for r in sla
                                  if r.mttr_days is not None) / fixed, 2)

    out.trend = _trend(conn, now)
    out.top_assets = _top_assets(conn, top)
    out.top_services = _top_services(conn, top)
    out.assets_total = int(conn.execute(select(func.count()).select_from(assets)).scalar() or 0)
    stale = _not_scanned(conn, now)
    out.not_scanned = int(conn.execute(select(func.count()).select_from(assets)
                                       .where(stale)).scalar() or 0)
    out.not_scanned_assets = [
        {"id": r.id, "name": r.name, "last_seen": r.last_seen}
        for r in conn.execute(select(assets.c.id, assets.c.name, assets.c.last_seen)
                              .where(stale).order_by(assets.c.last_seen).limit(top))]
    return out


def _trend(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """Findings opened and fixed per week over the last ``TREND_WEEKS`` weeks."""
    since = now - timedelta(weeks=TREND_WEEKS)
    weeks: dict[str, dict[str, Any]] = {}
    for column, key in ((findings.c.first_seen, "opened"), (findings.c.fixed_at, "fixed")):
        week = _week(conn, column)
        for label, n in conn.execute(select(week, func.count()).where(column >= since)
                                     .group_by(week)):
            weeks.setdefault(str(label), {"week": str(label), "opened": 0, "fixed": 0})[
                key] = int(n)
    return [weeks[k] for k in sorted(weeks)]


def _top_assets(conn: Connection, top: int) -> list[dict[str, Any]]:
    """The assets whose open findings weigh most (priority weights)."""
    risk = func.sum(_risk()).label("risk")
    inner = (select(findings.c.asset_id, risk, func.count().label("open"))
             .outerjoin(finding_priority, finding_priority.c.finding_id == findings.c.id)
             .where(findings.c.state == "open").group_by(findings.c.asset_id)
             .order_by(risk.desc(), findings.c.asset_id).limit(top).subquery())
    rows = conn.execute(select(inner, assets.c.name).join(assets, assets.c.id == inner.c.asset_id)
                        .order_by(inner.c.risk.desc(), inner.c.asset_id)).all()
    return [{"id": r.asset_id, "name": r.name, "risk": int(r.risk), "open": int(r.open)}
            for r in rows]


def _top_services(conn: Connection, top: int) -> list[dict[str, Any]]:
    """Business services (from the CMDB context) whose open findings weigh most."""
    risk = func.sum(_risk()).label("risk")
    rows = conn.execute(
        select(asset_context.c.service, risk, func.count().label("open"))
        .select_from(findings)
        .join(asset_context, asset_context.c.asset_id == findings.c.asset_id)
        .outerjoin(finding_priority, finding_priority.c.finding_id == findings.c.id)
        .where(findings.c.state == "open", asset_context.c.service.is_not(None))
        .group_by(asset_context.c.service).order_by(risk.desc(), asset_context.c.service)
        .limit(top)).all()
    return [{"service": r.service, "risk": int(r.risk), "open": int(r.open)} for r in rows]


def _not_scanned(conn: Connection, now: datetime) -> Any:
    """A condition on ``assets``: last seen longer ago than its schedule allows.

    An asset in a group with an enabled schedule is late after one period of the most
    frequent such schedule (plus a day's grace: a scan runs in a window, not on the dot);
    an asset in no scheduled group, after ``DEFAULT_SCAN_INTERVAL``.
    """
    periods: dict[int, timedelta] = {}
    for s in conn.execute(select(schedules).where(schedules.c.enabled.is_(True))):
        first = next_run(s.kind, s.expression, s.timezone, now)
        second = next_run(s.kind, s.expression, s.timezone, first) if first else None
        if first is None or second is None:
            continue  # a schedule that never runs again sets no expectation
        period = second - first + timedelta(days=1)
        periods[s.group_id] = min(period, periods.get(s.group_id, period))
    member = asset_group_members
    conds = [and_(assets.c.last_seen < now - period, exists().where(
        member.c.asset_id == assets.c.id, member.c.group_id == group_id))
        for group_id, period in periods.items()]
    unscheduled = assets.c.last_seen < now - DEFAULT_SCAN_INTERVAL
    if periods:
        unscheduled = and_(unscheduled, not_(exists().where(
            member.c.asset_id == assets.c.id, member.c.group_id.in_(list(periods)))))
    return or_(unscheduled, *conds)
