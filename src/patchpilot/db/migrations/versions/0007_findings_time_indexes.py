"""Indexes for the dashboard's weekly trend (opened by first_seen, fixed by fixed_at).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Index findings by when they were first seen and when they were fixed."""
    op.create_index("ix_findings_first_seen", "findings", ["first_seen"])
    op.create_index("ix_findings_fixed_at", "findings", ["fixed_at"])


def downgrade() -> None:
    """Drop the indexes."""
    op.drop_index("ix_findings_fixed_at", "findings")
    op.drop_index("ix_findings_first_seen", "findings")
