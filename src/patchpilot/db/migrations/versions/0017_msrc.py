"""Microsoft Security Response Center knowledge: ``msrc_products``, ``msrc_vulns``,
``msrc_fixes``.

- ``msrc_products``: the CVRF product tree (ProductID → full name) with the normalised
  family, version, edition and architecture that Windows matching compares with a host.
- ``msrc_vulns``: per document month and CVE: title, worst MSRC severity, exploitation
  flags (exploit evidence next to KEV), description, FAQ, workarounds/mitigations.
- ``msrc_fixes``: per month, CVE, product and Vendor Fix: KB, superseded KBs, fixed
  build, restart, URL, and the product's CVSS 3.1 score/vector, severity and impact.

Plain SQL only (a migration never imports application code).

Revision ID: 0017_msrc
Revises: 0016_automation
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_msrc"
down_revision = "0016_automation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables."""
    op.create_table(
        "msrc_products",
        sa.Column("product_id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("family", sa.String(300), nullable=False),
        sa.Column("version", sa.String(40)),
        sa.Column("edition", sa.String(100)),
        sa.Column("arch", sa.String(10)),
        sa.Column("branch", sa.String(100)),
        sa.Column("month", sa.String(10), nullable=False),
    )
    op.create_index("ix_msrc_products_family", "msrc_products", ["family", "version"])
    op.create_table(
        "msrc_vulns",
        sa.Column("month", sa.String(10), primary_key=True),
        sa.Column("cve", sa.String(40), primary_key=True),
        sa.Column("title", sa.Text),
        sa.Column("severity", sa.String(20)),
        sa.Column("exploited", sa.Boolean, nullable=False),
        sa.Column("publicly_disclosed", sa.Boolean, nullable=False),
        sa.Column("exploitability", sa.String(100)),
        sa.Column("description", sa.Text),
        sa.Column("faq", sa.Text),
        sa.Column("workaround", sa.Text),
    )
    op.create_index("ix_msrc_vulns_cve", "msrc_vulns", ["cve"])
    op.create_table(
        "msrc_fixes",
        sa.Column("month", sa.String(10), primary_key=True),
        sa.Column("cve", sa.String(40), primary_key=True),
        sa.Column("product_id", sa.String(40), primary_key=True),
        sa.Column("fix", sa.String(200), primary_key=True),
        sa.Column("kb", sa.String(20)),
        sa.Column("supersedes", sa.String(500)),
        sa.Column("fixed_build", sa.String(300)),
        sa.Column("restart", sa.Boolean),
        sa.Column("url", sa.Text),
        sa.Column("subtype", sa.String(100)),
        sa.Column("cvss_score", sa.Float),
        sa.Column("cvss_vector", sa.String(200)),
        sa.Column("severity", sa.String(20)),
        sa.Column("impact", sa.String(100)),
    )
    op.create_index("ix_msrc_fixes_kb", "msrc_fixes", ["kb"])
    op.create_index("ix_msrc_fixes_product", "msrc_fixes", ["product_id", "cve"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_msrc_fixes_product", "msrc_fixes")
    op.drop_index("ix_msrc_fixes_kb", "msrc_fixes")
    op.drop_table("msrc_fixes")
    op.drop_index("ix_msrc_vulns_cve", "msrc_vulns")
    op.drop_table("msrc_vulns")
    op.drop_index("ix_msrc_products_family", "msrc_products")
    op.drop_table("msrc_products")
