"""Findings by filter, sorted and paged on the database: what the dashboard's list shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.engine import Connection

from patchpilot.db.tables import (
    asset_group_members,
    asset_groups,
    assets,
    finding_priority,
    findings,
)

# The columns a list may be sorted by; anything else is refused, never interpolated.
SORTS: dict[str, Any] = {
    "priority": finding_priority.c.priority,
    "cvss": findings.c.cvss_score,
    "severity": findings.c.severity,
    "vuln": findings.c.vuln_id,
    "package": findings.c.package,
    "asset": assets.c.name,
    "first_seen": findings.c.first_seen,
    "state": findings.c.state,
}


@dataclass(frozen=True, slots=True)
class FindingFilter:
    """What the list is narrowed to; None means "any"."""

    state: str | None = "open"
    priority: int | None = None
    severity: str | None = None
    known_exploited: bool | None = None
    fix_available: bool | None = None
    group: str | None = None
    asset_id: int | None = None
    text: str | None = None  # a CVE/advisory id (exact) or a package name (prefix)

    def conditions(self) -> list[Any]:
        """The WHERE clauses."""
        conds: list[Any] = []
        if self.state:
            conds.append(findings.c.state == self.state)
        if self.priority is not None:
            conds.append(finding_priority.c.priority == self.priority)
        if self.severity:
            conds.append(findings.c.severity == self.severity)
        if self.known_exploited is not None:
            conds.append(findings.c.known_exploited.is_(self.known_exploited))
        if self.fix_available is True:
            conds.append(findings.c.fixed_version.is_not(None))
        elif self.fix_available is False:
            conds.append(findings.c.fixed_version.is_(None))
        if self.asset_id is not None:
            conds.append(findings.c.asset_id == self.asset_id)
        if self.group:
            conds.append(exists().where(
                asset_group_members.c.asset_id == findings.c.asset_id,
                asset_groups.c.id == asset_group_members.c.group_id,
                asset_groups.c.name == self.group))
        if self.text:
            text = self.text.strip()
            # Ids are matched exactly (indexed); package names by prefix, any case.
            conds.append(or_(findings.c.vuln_id == text.upper(),
                             findings.c.advisory_id == text,
                             func.lower(findings.c.package).like(
                                 text.lower().replace("%", r"\%").replace("_", r"\_") + "%",
                                 escape="\\")))
        return conds


def search_findings(conn: Connection, flt: FindingFilter, *, sort: str = "priority",
                    descending: bool = False, limit: int = 50, offset: int = 0
                    ) -> tuple[int, list[Any]]:
    """(how many match, one page of them) with asset name, priority, reason, due date."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    conds = flt.conditions()
    base = (findings.join(assets, assets.c.id == findings.c.asset_id)
            .outerjoin(finding_priority, finding_priority.c.finding_id == findings.c.id))
    total = int(conn.execute(select(func.count()).select_from(base).where(*conds)).scalar()
                or 0)
    key = SORTS[sort]
    order = [(key.desc() if descending else key.asc()).nulls_last()]
    if sort != "cvss":
        # Within equal keys the work order: highest score first.
        order.append(findings.c.cvss_score.desc().nulls_last())
    order.append(findings.c.id)
    rows = conn.execute(
        select(findings.c.id, findings.c.asset_id, findings.c.vuln_id, findings.c.package,
               findings.c.ecosystem, findings.c.state, findings.c.severity,
               findings.c.cvss_score, findings.c.known_exploited,
               findings.c.installed_version, findings.c.fixed_version, findings.c.first_seen,
               assets.c.name.label("asset"), finding_priority.c.priority,
               finding_priority.c.reason, finding_priority.c.due_date)
        .select_from(base).where(*conds).order_by(*order)
        .limit(max(1, min(limit, 500))).offset(max(0, offset))).all()
    return total, list(rows)
