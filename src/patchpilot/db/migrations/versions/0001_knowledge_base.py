"""Knowledge base: advisories, affected packages, CVE records, KEV, EPSS, feed state.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the knowledge-base tables."""
    op.create_table(
        "feed_state",
        sa.Column("source", sa.String(500), primary_key=True),
        sa.Column("feed", sa.String(50), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("cursor", sa.String(64)),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "advisories",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("feed", sa.String(50), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("modified", sa.String(40)),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_index("ix_advisories_source_id", "advisories", ["source", "id"], unique=True)
    op.create_index("ix_advisories_id", "advisories", ["id"])
    for name, column in (("advisory_vulns", "vuln_id"), ("advisory_aliases", "alias")):
        op.create_table(
            name,
            sa.Column("advisory_pk", sa.Integer,
                      sa.ForeignKey("advisories.pk", ondelete="CASCADE"), nullable=False),
            sa.Column(column, sa.String(200), nullable=False),
        )
        op.create_index(f"ix_{name}_pk", name, ["advisory_pk"])
    op.create_index("ix_advisory_vulns_vuln", "advisory_vulns", ["vuln_id"])
    op.create_index("ix_advisory_aliases_alias", "advisory_aliases", ["alias"])
    op.create_table(
        "affected",
        sa.Column("advisory_pk", sa.Integer,
                  sa.ForeignKey("advisories.pk", ondelete="CASCADE"), nullable=False),
        sa.Column("ecosystem", sa.String(100), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("ranges", sa.Text, nullable=False),
        sa.Column("versions", sa.Text),
        sa.Column("fixed", sa.String(200)),
        sa.Column("severity", sa.String(40)),
    )
    op.create_index("ix_affected_key", "affected", ["ecosystem", "name"])
    op.create_index("ix_affected_pk", "affected", ["advisory_pk"])
    op.create_table(
        "cve_records",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("feed", sa.String(20), primary_key=True),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("modified", sa.String(40)),
        sa.Column("published", sa.String(40)),
        sa.Column("status", sa.String(40)),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_table(
        "kev",
        sa.Column("cve", sa.String(40), primary_key=True),
        sa.Column("date_added", sa.String(10), nullable=False),
        sa.Column("due_date", sa.String(10)),
        sa.Column("ransomware", sa.Boolean, nullable=False),
        sa.Column("vendor", sa.String(200)),
        sa.Column("product", sa.String(200)),
        sa.Column("name", sa.Text),
        sa.Column("required_action", sa.Text),
    )
    op.create_table(
        "epss",
        sa.Column("cve", sa.String(40), primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("percentile", sa.Float, nullable=False),
        sa.Column("date", sa.String(40)),
    )


def downgrade() -> None:
    """Drop the knowledge-base tables."""
    for name in ("epss", "kev", "cve_records", "affected", "advisory_aliases",
                 "advisory_vulns", "advisories", "feed_state"):
        op.drop_table(name)
