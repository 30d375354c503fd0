"""Coverage: what the knowledge base holds per ecosystem, and what each asset has.

``knowledge_coverage`` keeps, per ecosystem (a distribution's with its release,
``Debian:12``), how many advisories and ``affected`` rows the knowledge base holds;
``asset_ecosystems`` keeps, per asset, how many packages of each ecosystem its latest
inventory lists.  Both are small (one row per ecosystem; a few per asset) and are kept
current by the writes that change what they count -- a feed's advisories written, an
inventory ingested -- so that "no findings" can be told from "nothing to judge with" on
every page without aggregating millions of rows (knowledge/coverage.py,
findings/coverage.py).  This step creates them and fills them from the stored rows.

Plain SQL only: a migration must keep working when the application code changes, so it
imports none of it.

Revision ID: 0012_cover
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_cover"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create both tables and fill them from ``affected`` and ``asset_packages``."""
    op.create_table(
        "knowledge_coverage",
        sa.Column("ecosystem", sa.String(100), primary_key=True),
        sa.Column("advisories", sa.Integer, nullable=False),
        sa.Column("affected", sa.Integer, nullable=False),
    )
    op.create_table(
        "asset_ecosystems",
        sa.Column("asset_id", sa.Integer, sa.ForeignKey("assets.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("ecosystem", sa.String(100), primary_key=True),
        sa.Column("packages", sa.Integer, nullable=False),
    )
    op.create_index("ix_asset_ecosystems_ecosystem", "asset_ecosystems", ["ecosystem"])
    op.execute("INSERT INTO knowledge_coverage (ecosystem, advisories, affected) "
               "SELECT ecosystem, COUNT(DISTINCT advisory_pk), COUNT(*) FROM affected "
               "GROUP BY ecosystem")
    # Each asset_packages row stands for the installed packages listed in its JSON array
    # (the binaries of one source package): their number is the asset's package count.
    installed = ("json_array_length(CAST(installed AS json))"
                 if op.get_bind().dialect.name == "postgresql"
                 else "json_array_length(installed)")
    op.execute("INSERT INTO asset_ecosystems (asset_id, ecosystem, packages) "
               f"SELECT asset_id, ecosystem, SUM({installed}) FROM asset_packages "
               "GROUP BY asset_id, ecosystem")


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_asset_ecosystems_ecosystem", "asset_ecosystems")
    op.drop_table("asset_ecosystems")
    op.drop_table("knowledge_coverage")
