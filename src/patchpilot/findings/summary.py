"""Per-asset counts of findings: what the overview, the asset list and the reports add up.

Aggregating a million findings on every page view cannot answer in 300 ms, so each write
that changes an asset's findings or their priorities -- a scan applied
(``lifecycle._apply``), a triage decision (``reapply_decisions``), a re-prioritisation
(``scoring.apply.reprioritise``) -- calls :func:`refresh` for the assets it touched, in
its own transaction: one ``DELETE`` and one ``INSERT … SELECT … GROUP BY asset_id`` over
those assets' rows only (``ix_findings_key`` leads with ``asset_id``).  The estate's
figures are then sums over at most one row per asset.

Time moves without a write: an open finding becomes overdue when its due date passes.
Each row therefore keeps the count ``as_of`` its refresh and ``next_due``, the earliest
due date still ahead then; until ``next_due`` the count is exact.  Readers count the few
rows past it from the findings themselves (:func:`stale`), and idle workers refresh them
(:func:`refresh_stale`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, bindparam, delete, or_, select, text
from sqlalchemy.engine import Connection

from patchpilot.clock import now_utc
from patchpilot.db.tables import asset_summary

# Risk of an open finding for the "top risky" lists: the patch plan's weights, so one P1
# outweighs any number of P4s (see scans/plan.py); a finding not yet prioritised weighs
# as a P3.
RISK_WEIGHTS = {1: 1000, 2: 100, 3: 10, 4: 1}
UNPRIORITISED_WEIGHT = 10
# Severity bands and their columns; anything else (missing, unrecognised) is "unknown".
BANDS = {"Critical": "critical", "High": "high", "Medium": "medium", "Low": "low",
         "None": "none"}
_CHUNK = 5000


def _fix_days(dialect: str) -> str:
    detected = "COALESCE(f.reopened_at, f.first_seen)"
    if dialect == "postgresql":
        return f"EXTRACT(EPOCH FROM f.fixed_at - {detected}) / 86400.0"
    return f"julianday(f.fixed_at) - julianday({detected})"


def _insert_sql(dialect: str, where: str) -> str:
    is_open = "f.state = 'open'"
    fixed = "f.state = 'fixed' AND fp.finding_id IS NOT NULL"
    bands = ", ".join(f"SUM(CASE WHEN {is_open} AND f.severity = '{band}' THEN 1 ELSE 0 END)"
                      for band in BANDS)
    known = ", ".join(f"'{band}'" for band in BANDS)
    weights = " ".join(f"WHEN {p} THEN {w}" for p, w in RISK_WEIGHTS.items())
    priorities = ", ".join(f"SUM(CASE WHEN {is_open} AND fp.priority = {p} THEN 1 ELSE 0 END)"
                           for p in RISK_WEIGHTS)
    return f"""
INSERT INTO asset_summary (asset_id, open_total, p1, p2, p3, p4, critical, high, medium, low,
                           "none", unknown, kev, risk, triaged, overdue, next_due, as_of,
                           fixed, fixed_within, fix_days)
SELECT f.asset_id,
       SUM(CASE WHEN {is_open} THEN 1 ELSE 0 END),
       {priorities},
       {bands},
       SUM(CASE WHEN {is_open} AND (f.severity IS NULL OR f.severity NOT IN ({known}))
                THEN 1 ELSE 0 END),
       SUM(CASE WHEN {is_open} AND f.known_exploited THEN 1 ELSE 0 END),
       SUM(CASE WHEN {is_open} THEN CASE fp.priority {weights}
                                    ELSE {UNPRIORITISED_WEIGHT} END ELSE 0 END),
       SUM(CASE WHEN f.state IN ('accepted', 'false_positive', 'not_affected')
                THEN 1 ELSE 0 END),
       SUM(CASE WHEN {is_open} AND fp.due_date < :now THEN 1 ELSE 0 END),
       MIN(CASE WHEN {is_open} AND fp.due_date >= :now THEN fp.due_date END),
       :now,
       SUM(CASE WHEN {fixed} THEN 1 ELSE 0 END),
       SUM(CASE WHEN {fixed} AND f.fixed_at <= fp.due_date THEN 1 ELSE 0 END),
       COALESCE(SUM(CASE WHEN {fixed} THEN {_fix_days(dialect)} END), 0)
FROM findings f LEFT JOIN finding_priority fp ON fp.finding_id = f.id
{where}
GROUP BY f.asset_id
"""


def refresh(conn: Connection, asset_ids: Iterable[int] | None = None, *,
            now: datetime | None = None) -> None:
    """Recompute the summary rows of ``asset_ids`` (None: every asset), set-based."""
    params: dict[str, Any] = {"now": now or now_utc()}
    dialect = conn.dialect.name
    if asset_ids is None:
        conn.execute(delete(asset_summary))
        conn.execute(_statement(_insert_sql(dialect, "")), params)
        return
    ids = sorted(set(asset_ids))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        conn.execute(delete(asset_summary).where(asset_summary.c.asset_id.in_(chunk)))
        stmt = _statement(_insert_sql(dialect, "WHERE f.asset_id IN :ids")).bindparams(
            bindparam("ids", expanding=True))
        conn.execute(stmt, {**params, "ids": chunk})


def _statement(sql: str) -> Any:
    # Typed so that SQLite gets SQLAlchemy's own datetime text, as in every other column.
    return text(sql).bindparams(bindparam("now", type_=DateTime(timezone=True)))


def stale(now: datetime) -> Any:
    """The condition on ``asset_summary`` rows whose overdue count is out of date."""
    return or_(asset_summary.c.next_due < now, asset_summary.c.as_of > now)


def refresh_stale(conn: Connection, *, now: datetime | None = None) -> int:
    """Refresh the rows whose overdue count time has overtaken; how many."""
    now = now or now_utc()
    ids = list(conn.execute(select(asset_summary.c.asset_id).where(stale(now))).scalars())
    if ids:
        refresh(conn, ids, now=now)
    return len(ids)
