"""Affected rows carry their advisory's id, feed, priority and vulnerabilities.

The matcher reads only ``affected`` rows of the host's packages; with these columns it
needs neither a join nor a second query per host (the 50 ms budget of a 2,000-package
host).  The knowledge base is derived data, rebuilt by ``patchpilot db update``: rather
than back-filling, the advisory tables are emptied and their sources marked for reload.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns; empty the advisory tables so the next update reloads them."""
    for table in ("affected", "advisory_vulns", "advisory_aliases", "advisories"):
        op.execute(f"DELETE FROM {table}")
    op.execute("DELETE FROM feed_state WHERE kind = 'advisory'")
    with op.batch_alter_table("affected") as batch:
        batch.add_column(sa.Column("advisory_id", sa.String(200), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("feed", sa.String(50), nullable=False, server_default=""))
        batch.add_column(sa.Column("priority", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("vulns", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    """Drop the columns."""
    with op.batch_alter_table("affected") as batch:
        for column in ("vulns", "priority", "feed", "advisory_id"):
            batch.drop_column(column)
