"""The estate at a glance: the overview's figures, for the estate or a scope of assets.

Counts come from ``asset_summary`` (see ``findings.summary``): a sum over at most one row
per asset instead of an aggregate over every finding, which is what keeps the page under
300 ms with 1,000,000 findings.  The definitions are those of ``scoring.sla`` (overdue,
compliance, MTTR over prioritised findings), and the executive report reads the same
figures (``reports.data``), so the page and the PDF agree.  Only the weekly trend reads
findings, by the indexed time columns of the weeks shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, false, func, literal, not_, or_, select
from sqlalchemy.engine import Connection

from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import (
    asset_context,
    asset_group_members,
    asset_summary,
    assets,
    finding_priority,
    findings,
    schedules,
)
from patchpilot.findings.coverage import estate_coverage
from patchpilot.findings.summary import BANDS
from patchpilot.scans.schedules import next_run

SEVERITIES = ("Critical", "High", "Medium", "Low", "None", "Unknown")
# An asset nobody scheduled is "not scanned" after a week (the default).
DEFAULT_SCAN_INTERVAL = timedelta(days=7)
TREND_WEEKS = 12
# IN lists are sent in chunks: PostgreSQL and SQLite both cap bound parameters.
_CHUNK = 5000


@dataclass(slots=True)
class Overview:
    """The figures of the overview page."""

    open_total: int = 0
    by_priority: dict[str, int] = field(default_factory=dict)  # "P1".."P4", "unprioritised"
    by_severity: dict[str, int] = field(default_factory=dict)
    known_exploited: int = 0
    kev_assets: int = 0
    overdue: int = 0
    fixed: int = 0  # prioritised findings fixed (ever)
    fixed_within_sla: int = 0
    sla_compliance: float | None = None  # 0..1
    mttr_days: float | None = None
    trend: list[dict[str, Any]] = field(default_factory=list)  # week, opened, fixed
    top_assets: list[dict[str, Any]] = field(default_factory=list)
    top_services: list[dict[str, Any]] = field(default_factory=list)
    not_scanned: int = 0
    not_scanned_assets: list[dict[str, Any]] = field(default_factory=list)
    assets_total: int = 0
    # Per ecosystem of the estate: packages, assets, advisories loaded, covered or not --
    # not covered first (findings.coverage: one GROUP BY over a few rows per asset).
    coverage: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def in_scope(column: Any, ids: list[int] | None) -> Any:
    """``column IN ids`` (chunked into an OR of INs), or true for the whole estate."""
    if ids is None:
        return literal(True)
    if not ids:
        return literal(False)
    return or_(*(column.in_(ids[i:i + _CHUNK]) for i in range(0, len(ids), _CHUNK)))


def overview(conn: Connection, *, now: datetime | None = None, top: int = 10,
             asset_ids: list[int] | None = None, weeks: int = TREND_WEEKS) -> Overview:
    """Every figure of the overview, of the estate or of ``asset_ids``."""
    now = now or now_utc()
    out = Overview()
    s = asset_summary
    scope = in_scope(s.c.asset_id, asset_ids)
    sums = [func.coalesce(func.sum(c), 0) for c in (
        s.c.open_total, s.c.p1, s.c.p2, s.c.p3, s.c.p4, *(s.c[b] for b in BANDS.values()),
        s.c.unknown, s.c.kev, s.c.fixed, s.c.fixed_within, s.c.fix_days)]
    row = conn.execute(select(*sums, func.count().filter(s.c.kev > 0)).where(scope)).one()
    (out.open_total, p1, p2, p3, p4, *bands, unknown, out.known_exploited, out.fixed,
     out.fixed_within_sla, fix_days, out.kev_assets) = row
    out.open_total, out.known_exploited = int(out.open_total), int(out.known_exploited)
    out.fixed, out.fixed_within_sla = int(out.fixed), int(out.fixed_within_sla)
    out.by_priority = {k: int(v) for k, v in zip(("P1", "P2", "P3", "P4"),
                                                 (p1, p2, p3, p4), strict=True) if v}
    unprioritised = out.open_total - sum(out.by_priority.values())
    if unprioritised:
        out.by_priority["unprioritised"] = unprioritised
    out.by_severity = {k: int(v) for k, v in zip(SEVERITIES, (*bands, unknown), strict=True)
                       if v}
    out.overdue = _overdue(conn, scope, now)
    due = out.fixed + out.overdue
    out.sla_compliance = round(out.fixed_within_sla / due, 4) if due else None
    out.mttr_days = round(float(fix_days) / out.fixed, 2) if out.fixed else None

    out.trend = trend(conn, asset_ids, now, weeks)
    out.top_assets = [
        {"id": r.asset_id, "name": r.name, "risk": int(r.risk), "open": int(r.open_total)}
        for r in conn.execute(
            select(s.c.asset_id, assets.c.name, s.c.risk, s.c.open_total)
            .join(assets, assets.c.id == s.c.asset_id).where(scope, s.c.risk > 0)
            .order_by(s.c.risk.desc(), s.c.asset_id).limit(top))]
    risk = func.sum(s.c.risk).label("risk")
    out.top_services = [
        {"service": r.service, "risk": int(r.risk), "open": int(r.open)}
        for r in conn.execute(
            select(asset_context.c.service, risk, func.sum(s.c.open_total).label("open"))
            .join(asset_context, asset_context.c.asset_id == s.c.asset_id)
            .where(scope, asset_context.c.service.is_not(None), s.c.open_total > 0)
            .group_by(asset_context.c.service).order_by(risk.desc(), asset_context.c.service)
            .limit(top))]
    asset_scope = in_scope(assets.c.id, asset_ids)
    out.assets_total = int(conn.execute(select(func.count()).select_from(assets)
                                        .where(asset_scope)).scalar() or 0)
    late = and_(asset_scope, not_scanned_condition(conn, now))
    out.not_scanned = int(conn.execute(select(func.count()).select_from(assets)
                                       .where(late)).scalar() or 0)
    out.not_scanned_assets = [
        {"id": r.id, "name": r.name, "last_seen": r.last_seen}
        for r in conn.execute(select(assets.c.id, assets.c.name, assets.c.last_seen)
                              .where(late).order_by(assets.c.last_seen).limit(top))]
    out.coverage = [c.to_dict() for c in estate_coverage(conn, asset_ids)]
    return out


def _overdue(conn: Connection, scope: Any, now: datetime) -> int:
    """Open findings past due at ``now``: each summary row's count as of its refresh,
    plus the due dates passed since (minus those not yet reached, for a ``now`` before
    the refresh) -- a range of ``ix_finding_priority_due``, however long ago the rows
    were made."""
    s, f, fp = asset_summary, findings, finding_priority
    base, lo, hi = conn.execute(select(func.coalesce(func.sum(s.c.overdue), 0),
                                       func.min(s.c.as_of), func.max(s.c.as_of))
                                .where(scope)).one()
    if lo is None:
        return 0
    total = int(base)
    crossed = (select(func.count()).select_from(fp)
               .join(f, f.c.id == fp.c.finding_id).join(s, s.c.asset_id == f.c.asset_id)
               .where(scope, f.c.state == "open"))
    if aware(lo) < now:  # type: ignore[operator]
        total += int(conn.execute(crossed.where(
            fp.c.due_date >= lo, fp.c.due_date < now, fp.c.due_date >= s.c.as_of))
            .scalar_one())
    if aware(hi) > now:  # type: ignore[operator]
        total -= int(conn.execute(crossed.where(
            fp.c.due_date >= now, fp.c.due_date < hi, fp.c.due_date < s.c.as_of))
            .scalar_one())
    return total


def trend(conn: Connection, asset_ids: list[int] | None, now: datetime,
          weeks: int = TREND_WEEKS) -> list[dict[str, Any]]:
    """Findings opened and fixed per week (Mondays, UTC), the last ``weeks`` weeks.

    "Opened" counts every opening: a finding first seen, and one reopened (a regression),
    in the week; "fixed", the findings fixed in it (a finding reopened since keeps no fix
    date: its reopening counts, its earlier fix no more).  Of the estate, each week of
    each column is one ``COUNT`` over a range of that column's index -- one statement of
    ``3 × weeks`` counts, which an index answers without computing anything per finding.
    Of a scope of assets (a group, a user's part of the estate), see :func:`_scope_trend`.
    """
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=today.weekday() + 7 * (weeks - 1))  # a Monday
    bounds = [start + timedelta(weeks=i) for i in range(weeks + 1)]
    if asset_ids is not None:
        first, reopened, fixed = _scope_trend(conn, asset_ids, bounds)
    else:
        columns = (findings.c.first_seen, findings.c.reopened_at, findings.c.fixed_at)
        counts = conn.execute(select(*(
            select(func.count()).select_from(findings)
            .where(column >= bounds[i], column < bounds[i + 1]).scalar_subquery()
            for column in columns for i in range(weeks)))).one()
        first, reopened, fixed = ([int(n) for n in counts[k * weeks:(k + 1) * weeks]]
                                  for k in range(3))
    return [{"week": bounds[i].strftime("%Y-%m-%d"), "opened": int(first[i] + reopened[i]),
             "fixed": int(fixed[i])} for i in range(weeks)]


def _scope_trend(conn: Connection, asset_ids: list[int], bounds: list[datetime]
                 ) -> tuple[list[int], list[int], list[int]]:
    """The weekly counts (first seen, reopened, fixed) of the findings of ``asset_ids``.

    The estate's way -- a count per week over each time column's index, each finding
    then checked against the scope -- reads every finding of the estate in the weeks
    (2 s for a group of 500 of 10,000 assets).  Here the scope's findings are read by
    their asset (``ix_findings_key``), those with a date in the weeks kept, each date
    given its week by a ``CASE`` and the weeks counted in one ``GROUP BY`` (0.15 s)."""
    f = findings
    weeks = len(bounds) - 1
    columns = (f.c.first_seen, f.c.reopened_at, f.c.fixed_at)

    def week(column: Any) -> Any:  # the first branch that holds decides
        return case((column < bounds[0], None),
                    *((column < bounds[i + 1], i) for i in range(weeks)), else_=None)

    ids = sorted(asset_ids)
    dated = (select(*(week(c).label(f"w{k}") for k, c in enumerate(columns)))
             .where(f.c.asset_id.in_(bindparam(None, ids, expanding=True,
                                               literal_execute=True)) if ids else false(),
                    or_(*(c >= bounds[0] for c in columns)))
             .subquery())
    out: tuple[list[int], list[int], list[int]] = ([0] * weeks, [0] * weeks, [0] * weeks)
    for *found, n in conn.execute(select(dated.c.w0, dated.c.w1, dated.c.w2, func.count())
                                  .group_by(dated.c.w0, dated.c.w1, dated.c.w2)):
        for counts, w in zip(out, found, strict=True):
            if w is not None:
                counts[w] += int(n)
    return out


def not_scanned_condition(conn: Connection, now: datetime) -> Any:
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
