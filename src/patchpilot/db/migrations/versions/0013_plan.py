"""The stored patch plan: ``plan_state``, ``plan_items``, ``plan_hosts``.

The plan of the whole estate is built by ``scans.plan_store`` as one generation of rows
(one per item, one per item and host) and read a page at a time; this step only creates
the tables (empty: the first reader or worker builds the plan).

Plain SQL only: a migration must keep working when the application code changes, so it
imports none of it.

Revision ID: 0013_plan
Revises: 0012_inst
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_plan"
down_revision = "0012_inst"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the three tables."""
    op.create_table(
        "plan_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("next_generation", sa.Integer, nullable=False),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("generated_at", sa.DateTime(timezone=True)),
        sa.Column("since", sa.DateTime(timezone=True)),
        sa.Column("seconds", sa.Float),
    )
    counts = [sa.Column(c, sa.Integer, nullable=False) for c in ("p1", "p2", "p3", "p4")]
    op.create_table(
        "plan_items",
        sa.Column("generation", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("ecosystem", sa.String(100), nullable=False),
        sa.Column("package", sa.String(300), nullable=False),
        sa.Column("fixed_version", sa.String(200), nullable=False),
        sa.Column("manager", sa.String(40), nullable=False),
        sa.Column("command", sa.Text),
        sa.Column("reboot", sa.Boolean, nullable=False),
        sa.Column("located", sa.Boolean, nullable=False),
        sa.Column("workaround", sa.Text),
        sa.Column("vulns", sa.Text, nullable=False),
        sa.Column("n_vulns", sa.Integer, nullable=False),
        *counts,
        sa.Column("known_exploited", sa.Integer, nullable=False),
        sa.Column("risk", sa.Integer, nullable=False),
        sa.Column("pending", sa.Integer, nullable=False),
        sa.Column("verified", sa.Integer, nullable=False),
        *(sa.Column(f"hosts_p{p}", sa.Integer, nullable=False) for p in (1, 2, 3, 4)),
        sa.Column("windows", sa.Text, nullable=False),
    )
    op.create_index("ix_plan_items_rank", "plan_items", ["generation", "rank"])
    op.create_table(
        "plan_hosts",
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("item_key", sa.String(32), nullable=False),
        sa.Column("asset_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("best_priority", sa.SmallInteger),
        *(sa.Column(c, sa.Integer, nullable=False) for c in ("p1", "p2", "p3", "p4")),
        sa.Column("known_exploited", sa.Integer, nullable=False),
        sa.Column("risk", sa.Integer, nullable=False),
        sa.Column("vulns", sa.Text, nullable=False),
        sa.Column("installed_version", sa.String(200)),
        sa.Column("binaries", sa.Text, nullable=False),
        sa.Column("groups", sa.Text, nullable=False),
        sa.Column("reboot_pending", sa.Boolean),
        sa.Column("installations", sa.Text, nullable=False),
    )
    op.create_index("ix_plan_hosts_item", "plan_hosts",
                    ["generation", "item_key", "status", "best_priority", "name"])
    op.create_index("ix_plan_hosts_asset", "plan_hosts",
                    ["generation", "asset_id", "item_key", "status", "best_priority", "p1", "p2",
                     "p3", "p4", "known_exploited", "risk"])


def downgrade() -> None:
    """Drop them."""
    op.drop_table("plan_hosts")
    op.drop_table("plan_items")
    op.drop_table("plan_state")
