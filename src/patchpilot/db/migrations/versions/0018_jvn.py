"""MyJVN alerts (注意警戒情報, ``getAlertList``): ``jvn_alerts``.

JVN iPedia entries need no table of their own: they are advisories (``affected`` rows of
ecosystem ``CPE``, JVNDB ids as aliases of their CVEs) and ``cve_records`` rows of feed
``jvn`` (the Japanese title, overview, impact, solution and JVN's CVSS per CVE).

Plain SQL only (a migration never imports application code).

Revision ID: 0018_jvn
Revises: 0017_msrc
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_jvn"
down_revision = "0017_msrc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table."""
    op.create_table(
        "jvn_alerts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("link", sa.Text),
        sa.Column("published", sa.String(40)),
        sa.Column("updated", sa.String(40)),
        sa.Column("cves", sa.Text, nullable=False),
        sa.Column("cpes", sa.Text, nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("jvn_alerts")
