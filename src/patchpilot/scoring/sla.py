"""SLA: due dates met or missed, overdue findings, compliance and MTTR -- as SQL aggregates.

A finding's due date is written with its priority (``finding_priority.due_date``, see
``scoring.apply``).  Per asset group, business service or priority:

* **open** findings, and how many are **overdue** (due date passed, still open);
* **fixed** findings, and how many were fixed **within** the SLA (fixed at or before due);
* **compliance** = fixed within SLA / (fixed + open overdue): a finding counts against it
  once its due date has passed unfixed, not only when it is finally fixed -- otherwise the
  worst backlog would look compliant until someone patched it;
* **MTTR** (mean time to remediate, days) = mean of fixed_at − detection over fixed
  findings (detection: reopened_at for a regression, else first_seen).

Triaged findings (accepted, false positive, not affected) count in neither.  An asset in
two groups counts in both; one in none is under "(no group)".
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, bindparam, case, cast, false, func, literal, select
from sqlalchemy.engine import Connection

from patchpilot.clock import iso, now_utc
from patchpilot.db.tables import (
    asset_context,
    asset_group_members,
    asset_groups,
    assets,
    finding_priority,
    findings,
)
from patchpilot.scoring import reasons

DIMENSIONS = ("group", "service", "priority")
NO_GROUP = "(no group)"
NO_SERVICE = "(no service)"


@dataclass(frozen=True, slots=True)
class SlaRow:
    """SLA figures of one group, service or priority."""

    key: str
    open: int
    overdue: int
    fixed: int
    fixed_within_sla: int
    compliance: float | None  # 0..1; None when nothing is due yet
    mttr_days: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _days_between(conn: Connection, later: Any, earlier: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def _of_assets(column: Any, asset_ids: Collection[int]) -> Any:
    """``column`` (an asset id) is one of ``asset_ids`` (inline: any number fits)."""
    if not asset_ids:
        return false()
    return column.in_(bindparam(None, sorted(asset_ids), expanding=True,
                                literal_execute=True))


def sla_report(conn: Connection, by: str = "priority", *, now: datetime | None = None,
               group: str | None = None,
               asset_ids: Collection[int] | None = None) -> list[SlaRow]:
    """SLA figures per ``by`` (group, service or priority), optionally of one group only,
    of the findings of ``asset_ids`` only (None: every asset; a user's part of the
    estate)."""
    if by not in DIMENSIONS:
        raise ValueError(f"by: {by!r} must be one of {', '.join(DIMENSIONS)}")
    now = now or now_utc()
    f, fp = findings, finding_priority
    detected = func.coalesce(f.c.reopened_at, f.c.first_seen)
    is_open = f.c.state == "open"
    is_fixed = f.c.state == "fixed"
    one = literal(1)
    source: Any = f.join(fp, fp.c.finding_id == f.c.id).outerjoin(
        asset_context, asset_context.c.asset_id == f.c.asset_id)
    if by == "group" or group is not None:
        source = (source.outerjoin(asset_group_members,
                                   asset_group_members.c.asset_id == f.c.asset_id)
                  .outerjoin(asset_groups,
                             asset_groups.c.id == asset_group_members.c.group_id))
    stmt = select(
        func.sum(case((is_open, one), else_=0)).label("open"),
        func.sum(case((and_(is_open, fp.c.due_date < now), one), else_=0)).label("overdue"),
        func.sum(case((is_fixed, one), else_=0)).label("fixed"),
        func.sum(case((and_(is_fixed, f.c.fixed_at <= fp.c.due_date), one),
                      else_=0)).label("within"),
        func.avg(case((is_fixed, cast(_days_between(conn, f.c.fixed_at, detected), Float)),
                      else_=None)).label("mttr"),
    ).select_from(source).where(f.c.state.in_(("open", "fixed")))
    if group is not None:
        stmt = stmt.where(asset_groups.c.name == group)
    if asset_ids is not None:
        stmt = stmt.where(_of_assets(f.c.asset_id, asset_ids))
    key: Any
    if by == "group":
        key = func.coalesce(asset_groups.c.name, NO_GROUP)
    elif by == "service":
        key = func.coalesce(asset_context.c.service, NO_SERVICE)
    else:
        key = fp.c.priority
    stmt = stmt.add_columns(key.label("key")).group_by(key).order_by(key)
    out = []
    for r in conn.execute(stmt):
        fixed, within, overdue = int(r.fixed or 0), int(r.within or 0), int(r.overdue or 0)
        due = fixed + overdue
        out.append(SlaRow(key=f"P{r.key}" if by == "priority" else str(r.key),
                          open=int(r.open or 0), overdue=overdue, fixed=fixed,
                          fixed_within_sla=within,
                          compliance=round(within / due, 4) if due else None,
                          mttr_days=round(float(r.mttr), 2) if r.mttr is not None else None))
    return out


def overdue_findings(conn: Connection, *, now: datetime | None = None, limit: int = 1000,
                     asset_ids: Collection[int] | None = None) -> list[dict[str, Any]]:
    """Open findings past their due date, most overdue first (of ``asset_ids`` only
    unless None)."""
    now = now or now_utc()
    stmt = (select(findings.c.id, findings.c.vuln_id, findings.c.package, assets.c.name,
                   finding_priority.c.priority, finding_priority.c.due_date,
                   finding_priority.c.reason)
            .join(finding_priority, finding_priority.c.finding_id == findings.c.id)
            .join(assets, assets.c.id == findings.c.asset_id)
            .where(findings.c.state == "open", finding_priority.c.due_date < now))
    if asset_ids is not None:
        stmt = stmt.where(_of_assets(findings.c.asset_id, asset_ids))
    rows = conn.execute(stmt.order_by(finding_priority.c.due_date, findings.c.id)
                        .limit(limit)).all()
    return [{"finding_id": r.id, "vuln_id": r.vuln_id, "package": r.package,
             "asset": r.name, "priority": r.priority, "due_date": iso(r.due_date),
             "reason": reasons.reason_text(r.reason),
             "reason_code": reasons.loads(r.reason)} for r in rows]
