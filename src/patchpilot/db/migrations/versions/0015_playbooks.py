"""Playbooks: ``playbooks``, ``playbook_versions``, ``outbox``, ``playbook_cursor``.

A playbook is a YAML document kept in every version; ``outbox`` holds one row per
(playbook, event, action) -- unique, so evaluating the same events twice queues nothing
more -- with its delivery state; ``playbook_cursor`` is the last finding event evaluated.

Plain SQL only (a migration never imports application code).

Revision ID: 0015_playbooks
Revises: 0014_imports
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_playbooks"
down_revision = "0014_imports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables."""
    op.create_table(
        "playbooks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "playbook_versions",
        sa.Column("playbook_id", sa.Integer,
                  sa.ForeignKey("playbooks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("playbook_id", sa.Integer,
                  sa.ForeignKey("playbooks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("playbook_version", sa.Integer, nullable=False),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("action_index", sa.Integer, nullable=False),
        sa.Column("action_type", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ux_outbox_once", "outbox", ["playbook_id", "event_id", "action_index"],
                    unique=True)
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"])
    op.create_table(
        "playbook_cursor",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("playbook_cursor")
    op.drop_index("ix_outbox_due", "outbox")
    op.drop_index("ux_outbox_once", "outbox")
    op.drop_table("outbox")
    op.drop_table("playbook_versions")
    op.drop_table("playbooks")
