"""Prioritisation: asset context from the CMDB, finding priorities with reasons and SLAs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create asset_context and finding_priority."""
    op.create_table(
        "asset_context",
        sa.Column("asset_id", sa.Integer, sa.ForeignKey("assets.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("criticality", sa.Integer),
        sa.Column("environment", sa.String(20)),
        sa.Column("exposure", sa.String(20)),
        sa.Column("data_classification", sa.String(50)),
        sa.Column("owner", sa.String(200)),
        sa.Column("service", sa.String(200)),
        sa.Column("location", sa.String(200)),
        sa.Column("compensating_control", sa.Text),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_asset_context_service", "asset_context", ["service"])
    op.create_table(
        "finding_priority",
        sa.Column("finding_id", sa.Integer,
                  sa.ForeignKey("findings.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("due_date", sa.DateTime(timezone=True)),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_finding_priority", "finding_priority", ["priority", "due_date"])


def downgrade() -> None:
    """Drop them."""
    op.drop_table("finding_priority")
    op.drop_table("asset_context")
