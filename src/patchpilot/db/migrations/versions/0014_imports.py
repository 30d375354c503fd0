"""Imports of third-party scanner reports: ``imports``, ``asset_facts``,
``assets.discovered_by``.

``imports`` is one row per imported file (its content digest, so the same file twice changes
nothing, its status and progress while a job runs, its summary); ``asset_facts`` keeps a
report's informational items (Nessus severity 0, Qualys "information gathered") per asset
and producer, replaced by each import; ``assets.discovered_by`` names the producer that
created an asset no agent, scan or CMDB knew (``patchpilot assets unknown``).

Plain SQL only (a migration never imports application code).

Revision ID: 0014_imports
Revises: 0013_techrep
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_imports"
down_revision = "0013_techrep"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables and the column."""
    op.create_table(
        "imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("format", sa.String(50)),
        sa.Column("producer", sa.String(100)),
        sa.Column("scope", sa.String(100)),
        sa.Column("asset", sa.String(300)),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("progress", sa.Integer, nullable=False, server_default="0"),
        sa.Column("total", sa.Integer),
        sa.Column("spool", sa.String(1000)),
        sa.Column("summary", sa.Text),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_imports_digest", "imports", ["digest", "status"])
    op.create_table(
        "asset_facts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("asset_id", sa.Integer, sa.ForeignKey("assets.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("producer", sa.String(100), nullable=False),
        sa.Column("fact_id", sa.String(200), nullable=False),
        sa.Column("title", sa.String(500)),
        sa.Column("port", sa.Integer),
        sa.Column("protocol", sa.String(20)),
        sa.Column("service", sa.String(100)),
        sa.Column("detail", sa.Text),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_asset_facts_asset", "asset_facts", ["asset_id", "producer"])
    op.add_column("assets", sa.Column("discovered_by", sa.String(100), nullable=True))


def downgrade() -> None:
    """Drop them (the column with a plain ALTER TABLE: SQLite's copy-and-move batch mode
    would drop ``assets`` and, through ON DELETE CASCADE, every finding)."""
    op.drop_column("assets", "discovered_by")
    op.drop_index("ix_asset_facts_asset", "asset_facts")
    op.drop_table("asset_facts")
    op.drop_index("ix_imports_digest", "imports")
    op.drop_table("imports")
