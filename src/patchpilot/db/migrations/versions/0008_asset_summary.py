"""The dashboard at scale: per-asset counts (asset_summary) and the findings list's indexes.

asset_summary is filled from the stored findings; findings.priority_rank copies each
finding's priority so that the list's default order (priority, score, id) is read from
one index instead of sorting every open finding.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COUNTS = ("open_total", "p1", "p2", "p3", "p4", "critical", "high", "medium", "low", "none",
           "unknown", "kev", "risk", "triaged", "overdue")


def upgrade() -> None:
    """Add the sort column and indexes; create asset_summary and compute it."""
    with op.batch_alter_table("findings") as batch:
        batch.add_column(sa.Column("priority_rank", sa.SmallInteger, nullable=False,
                                   server_default="5"))
    # Fixed findings too: a fixed finding keeps the priority it had (scoring.apply), and
    # its rank with it, as in a database that had this column all along.
    op.execute("UPDATE findings SET priority_rank = (SELECT priority FROM finding_priority fp "
               "WHERE fp.finding_id = findings.id) WHERE id IN "
               "(SELECT finding_id FROM finding_priority)")
    score = ("cvss_score DESC NULLS LAST" if op.get_bind().dialect.name == "postgresql"
             else "cvss_score DESC")
    op.execute(f"CREATE INDEX ix_findings_worklist ON findings (state, priority_rank, {score}, "
               "id)")
    op.execute(f"CREATE INDEX ix_findings_score ON findings (state, {score}, id)")
    op.create_index("ix_findings_reopened_at", "findings", ["reopened_at"])
    # The worklist index leads with state: (state, severity) is redundant, and every
    # index costs each of the million inserts a re-match can bring.
    op.drop_index("ix_findings_state", "findings")
    op.create_index("ix_findings_package", "findings", ["package"])
    op.create_index("ix_finding_priority_due", "finding_priority", ["due_date"])
    op.create_table(
        "asset_summary",
        sa.Column("asset_id", sa.Integer, sa.ForeignKey("assets.id", ondelete="CASCADE"),
                  primary_key=True),
        *(sa.Column(name, sa.Integer, nullable=False) for name in _COUNTS),
        sa.Column("next_due", sa.DateTime(timezone=True)),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fixed", sa.Integer, nullable=False),
        sa.Column("fixed_within", sa.Integer, nullable=False),
        sa.Column("fix_days", sa.Float, nullable=False),
    )
    op.create_index("ix_asset_summary_risk", "asset_summary", ["risk"])
    op.create_index("ix_asset_summary_next_due", "asset_summary", ["next_due"])
    # Fill it from the stored findings: the summary's INSERT as it stood at this revision,
    # written out here so the migration never changes with the application's code.  The
    # counts are as of now (a test may pass the moment in the config's attributes).
    config = op.get_context().config
    now = (config.attributes.get("now") if config is not None else None) or datetime.now(UTC)
    op.get_bind().execute(sa.text(_fill_sql(op.get_bind().dialect.name)).bindparams(
        sa.bindparam("now", type_=sa.DateTime(timezone=True))), {"now": now})


_BANDS = ("Critical", "High", "Medium", "Low", "None")
_RISK_WEIGHTS = {1: 1000, 2: 100, 3: 10, 4: 1}
_UNPRIORITISED_WEIGHT = 10


def _fill_sql(dialect: str) -> str:
    """One INSERT … SELECT … GROUP BY asset_id over every finding (findings/summary.py's
    statement at revision 0008)."""
    is_open = "f.state = 'open'"
    fixed = "f.state = 'fixed' AND fp.finding_id IS NOT NULL"
    bands = ", ".join(f"SUM(CASE WHEN {is_open} AND f.severity = '{band}' THEN 1 ELSE 0 END)"
                      for band in _BANDS)
    known = ", ".join(f"'{band}'" for band in _BANDS)
    weights = " ".join(f"WHEN {p} THEN {w}" for p, w in _RISK_WEIGHTS.items())
    priorities = ", ".join(f"SUM(CASE WHEN {is_open} AND fp.priority = {p} THEN 1 ELSE 0 END)"
                           for p in _RISK_WEIGHTS)
    detected = "COALESCE(f.reopened_at, f.first_seen)"
    fix_days = (f"EXTRACT(EPOCH FROM f.fixed_at - {detected}) / 86400.0"
                if dialect == "postgresql"
                else f"julianday(f.fixed_at) - julianday({detected})")
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
                                    ELSE {_UNPRIORITISED_WEIGHT} END ELSE 0 END),
       SUM(CASE WHEN f.state IN ('accepted', 'false_positive', 'not_affected')
                THEN 1 ELSE 0 END),
       SUM(CASE WHEN {is_open} AND fp.due_date < :now THEN 1 ELSE 0 END),
       MIN(CASE WHEN {is_open} AND fp.due_date >= :now THEN fp.due_date END),
       :now,
       SUM(CASE WHEN {fixed} THEN 1 ELSE 0 END),
       SUM(CASE WHEN {fixed} AND f.fixed_at <= fp.due_date THEN 1 ELSE 0 END),
       COALESCE(SUM(CASE WHEN {fixed} THEN {fix_days} END), 0)
FROM findings f LEFT JOIN finding_priority fp ON fp.finding_id = f.id
GROUP BY f.asset_id
"""


def downgrade() -> None:
    """Drop them."""
    op.drop_table("asset_summary")
    op.drop_index("ix_finding_priority_due", "finding_priority")
    op.create_index("ix_findings_state", "findings", ["state", "severity"])
    for name in ("ix_findings_package", "ix_findings_reopened_at",
                 "ix_findings_worklist", "ix_findings_score"):
        op.drop_index(name, "findings")
    # Not in batch mode: on SQLite that copies findings to a new table and drops the old
    # one, and with foreign keys on that drop deletes every finding_priority row (ON DELETE
    # CASCADE).  SQLite drops a column itself since 3.35, which RETURNING already needs.
    op.drop_column("findings", "priority_rank")
