"""Findings by filter, sorted and paged on the database: what the dashboard's list shows.

At 1,000,000 findings the list must not sort or count everything it shows a page of:

* the default order (priority, then score, then id, of open findings) is read straight
  from ``ix_findings_worklist`` (state, priority_rank, cvss_score DESC, id), so the first
  page stops after 50 index entries;
* the total comes from ``asset_summary`` when the filter is one the summary counts (open
  findings by priority, severity or KEV, of a group or an asset) and is otherwise counted
  up to ``COUNT_CAP`` ("more than 1,000"), which no page of 50 needs beyond;
* the search box matches ids exactly and package names by prefix, each on its index.

A user limited to part of the estate (issue 18) searches with ``FindingFilter.reach``, the
asset ids they may see (``server.security.reach``): the rows, the count and the summary's
total are all narrowed by it.  None (the whole estate) adds no clause at all, so an
unscoped user's plans are the same as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, false, func, or_, select
from sqlalchemy.engine import Connection

from patchpilot.db.tables import (
    advisories,
    advisory_vulns,
    asset_summary,
    assets,
    finding_priority,
    findings,
)
from patchpilot.findings.summary import BANDS

# The columns a list may be sorted by; anything else is refused, never interpolated.
SORTS: dict[str, Any] = {
    "priority": findings.c.priority_rank,
    "cvss": findings.c.cvss_score,
    "severity": findings.c.severity,
    "vuln": findings.c.vuln_id,
    "package": findings.c.package,
    "asset": assets.c.name,
    "first_seen": findings.c.first_seen,
    "state": findings.c.state,
}


def in_reach(column: Any, reach: frozenset[int] | None) -> Any:
    """The clause "``column`` (an asset id) is one of ``reach``", or None for the whole
    estate: ``assets.groups.within`` for the findings stage, a floor below the groups.
    The ids are rendered inline (``literal_execute``), so a scope of any size fits in one
    statement whatever the driver's parameter limit."""
    if reach is None:
        return None
    if not reach:
        return false()
    return column.in_(bindparam(None, sorted(reach), expanding=True, literal_execute=True))


def _members(flt: FindingFilter, members: Any) -> Any:
    if members is None:
        raise ValueError(f"group {flt.group!r}: pass its members (assets.groups.group_members)")
    return members


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
    vuln_id: str | None = None  # exactly (the API's ``vuln``)
    package: str | None = None  # exactly (the API's ``package``)
    # The asset ids the caller may see (a user limited to part of the estate); None: all.
    reach: frozenset[int] | None = None

    def conditions(self, conn: Connection, members: Any = None) -> list[Any]:
        """The WHERE clauses (``members``: the group's, if the caller resolved them)."""
        conds: list[Any] = []
        if self.state:
            conds.append(findings.c.state == self.state)
        if self.priority is not None:
            conds.append(findings.c.priority_rank == self.priority)
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
        if self.vuln_id:
            conds.append(findings.c.vuln_id == self.vuln_id)
        if self.package:
            conds.append(findings.c.package == self.package)
        if self.group:
            conds.append(findings.c.asset_id.in_(_members(self, members)))
        if self.reach is not None:
            conds.append(in_reach(findings.c.asset_id, self.reach))
        if self.text:
            text = self.text.strip()
            # Ids exactly, package names by prefix (as typed, and in lower case): each is
            # a range of its own index, so the search never scans every finding.
            prefixes = {text, text.lower()}
            # An advisory (DSA-…, GHSA-…) through the knowledge base's list of the
            # vulnerabilities it fixes, read first: a list narrows findings by their
            # indexed vuln_id in both databases (a sub-select would make PostgreSQL scan).
            vulns = sorted(set(conn.execute(
                select(advisory_vulns.c.vuln_id)
                .join(advisories, advisories.c.pk == advisory_vulns.c.advisory_pk)
                .where(advisories.c.id == text)).scalars()))
            by_advisory = ([and_(findings.c.vuln_id.in_(vulns), findings.c.advisory_id == text)]
                           if vulns else [])
            conds.append(or_(findings.c.vuln_id == text.upper(), *by_advisory,
                             *(findings.c.package.between(p, p + "\U0010ffff")
                               for p in sorted(prefixes))))
        return conds


COUNT_CAP = 1_000


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the list: its rows, how many match (``exact`` False: more than that)."""

    total: int
    exact: bool
    rows: list[Any]


def count_from_summary(conn: Connection, flt: FindingFilter, members: Any = None
                       ) -> int | None:
    """How many findings match, from ``asset_summary`` -- or None if it cannot tell."""
    named = [flt.priority is not None, bool(flt.severity), flt.known_exploited is not None]
    if (flt.state != "open" or flt.text or flt.vuln_id or flt.package
            or flt.fix_available is not None or sum(named) > 1):
        return None
    s = asset_summary
    if flt.priority is not None:
        column: Any = s.c[f"p{flt.priority}"] if flt.priority in (1, 2, 3, 4) else None
    elif flt.severity:
        band = BANDS.get(flt.severity)
        column = s.c[band] if band else (s.c.unknown if flt.severity == "Unknown" else None)
    elif flt.known_exploited is not None:
        column = s.c.kev if flt.known_exploited else s.c.open_total - s.c.kev
    else:
        column = s.c.open_total
    if column is None:
        return 0
    stmt = select(func.coalesce(func.sum(column), 0))
    if flt.asset_id is not None:
        stmt = stmt.where(s.c.asset_id == flt.asset_id)
    if flt.group:
        stmt = stmt.where(s.c.asset_id.in_(_members(flt, members)))
    if flt.reach is not None:
        stmt = stmt.where(in_reach(s.c.asset_id, flt.reach))
    return int(conn.execute(stmt).scalar_one())


def search_findings(conn: Connection, flt: FindingFilter, *, sort: str = "priority",
                    descending: bool = False, limit: int = 50, offset: int = 0,
                    members: Any = None) -> Page:
    """One page of matching findings with asset name, priority, reason and due date.

    ``members``: the asset ids of ``flt.group`` (``assets.groups.group_members``, a list
    or a sub-select), resolved once by the caller -- groups are the assets stage's, a
    floor above this one.
    """
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    conds = flt.conditions(conn, members)
    base = (findings.join(assets, assets.c.id == findings.c.asset_id)
            .outerjoin(finding_priority, finding_priority.c.finding_id == findings.c.id))
    total = count_from_summary(conn, flt, members)
    exact = total is not None
    if total is None:
        # Every filter is on findings' own columns: no join needed to count.
        capped = select(findings.c.id).where(*conds).limit(COUNT_CAP + 1).subquery()
        total = int(conn.execute(select(func.count()).select_from(capped)).scalar_one())
        exact = total <= COUNT_CAP
        total = min(total, COUNT_CAP)
    key = SORTS[sort]
    selective = flt.text or flt.vuln_id or flt.package or flt.asset_id is not None
    if selective and sort in ("priority", "cvss"):
        # A search or one asset is a few hundred rows on their own index: sort those,
        # rather than walk an order index past a million others (SQLite plans a bound
        # parameter blind, and would walk; "+ 0" keeps it off the order indexes).
        key = key + 0
    if sort == "priority":
        # priority_rank is never NULL (5: not prioritised yet), so the order is the index's.
        order = [key.desc() if descending else key.asc()]
    else:
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
               findings.c.installations, findings.c.producer,
               assets.c.name.label("asset"), finding_priority.c.priority,
               finding_priority.c.reason, finding_priority.c.due_date)
        .select_from(base).where(*conds).order_by(*order)
        .limit(max(1, min(limit, 1000))).offset(max(0, offset))).all()
    return Page(total, exact, list(rows))
