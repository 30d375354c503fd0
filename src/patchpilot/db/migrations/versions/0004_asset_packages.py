"""The packages of each asset's latest inventory, indexed for sweeps and re-matching.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create asset_packages."""
    op.create_table(
        "asset_packages",
        sa.Column("asset_id", sa.Integer,
                  sa.ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ecosystem", sa.String(100), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("installed", sa.Text, nullable=False),
    )
    op.create_index("ix_asset_packages_key", "asset_packages", ["ecosystem", "name"])
    op.create_index("ix_asset_packages_asset", "asset_packages", ["asset_id"])


def downgrade() -> None:
    """Drop asset_packages."""
    op.drop_table("asset_packages")
