"""Findings carry their installations: every affected copy of the package on the asset.

``findings.installations`` holds JSON ``[[location, installed version, fixed version,
command], …]``.  Existing rows keep NULL: they stand for the one copy their
``installed_version`` / ``fixed_version`` columns describe, until the next match of their
asset rewrites them.

Plain SQL and the standard library only (a migration never imports application code).

Revision ID: 0012_inst
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_inst"
down_revision = "0012_cover"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add findings.installations."""
    op.add_column("findings", sa.Column("installations", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop findings.installations (a plain ALTER TABLE: SQLite's copy-and-move batch mode
    would drop the findings table, and its cascade the rows that refer to it)."""
    op.drop_column("findings", "installations")
