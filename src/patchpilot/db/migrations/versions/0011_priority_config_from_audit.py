"""The active priority configuration moves from the audit log to ``priority_config``.

Before this revision the configuration in force was the ``detail.config`` of the newest
``priority.config`` audit row; from now on it is the newest ``priority_config`` row (the
audit row stays, as the record of who changed it).  This step copies that newest audited
configuration into the table, so an installation keeps the configuration it had.  It is
skipped when the table already has rows (a re-run after a downgrade keeps them).

Plain SQL and the standard library only: a migration must keep working when the
application code changes, so it imports none of it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-11
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# scoring.apply.CONFIG_ACTION when this revision was written.
_ACTION = "priority.config"


def upgrade() -> None:
    """Copy the newest audited priority configuration into ``priority_config``."""
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT 1 FROM priority_config LIMIT 1")).first() is not None:
        return
    row = conn.execute(sa.text(
        "SELECT id, detail FROM audit_log WHERE action = :action ORDER BY id DESC LIMIT 1"),
        {"action": _ACTION}).first()
    if row is None:
        return  # never changed: the shipped default stays in force
    config = json.loads(row.detail or "{}").get("config")
    if not isinstance(config, dict):
        return  # an audit row without a configuration cannot be put in force
    # The time and the actor are copied by the database itself, in its own column types.
    conn.execute(sa.text(
        "INSERT INTO priority_config (config, created_at, created_by) "
        "SELECT :config, at, actor FROM audit_log WHERE id = :id"),
        {"config": json.dumps(config, separators=(",", ":"), ensure_ascii=False),
         "id": row.id})

def downgrade() -> None:
    """Nothing to undo: revision 0010's downgrade drops the table with its rows, and the
    audit rows this copied from were never changed."""
