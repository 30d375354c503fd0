"""Playbooks, second part: secrets, tickets, inbound hooks, rate limits, schedules,
escalation steps.

- ``secrets``: action secrets (API tokens, chat webhook URLs, HMAC keys) encrypted at rest
  (Fernet, the key from ``PATCHPILOT_SECRETS_KEY``); playbooks name them, never hold them.
- ``tickets``: one ticket per (system, target, subject) -- a finding or a plan item -- so
  a ticket is opened once, updated on state changes, closed when the finding is fixed,
  and its closing is reported back on the finding.
- ``hooks``: inbound webhooks (``POST /api/hooks/{name}``): a token (kept as its SHA-256)
  and/or the name of the secret whose HMAC-SHA256 signs the body.
- ``action_rates``: sends per action target in the current window (rate limits).
- ``finding_overrides``: what a playbook (or a person) set on a finding by hand: a
  priority that re-prioritisation keeps (the higher of it and the computed one), an
  assignee, tags.
- ``playbooks.next_run_at``: a schedule trigger's next due moment (claimed by
  compare-and-set, so a run happens once however many workers tick).
- ``outbox.step`` (an escalation chain's next step), ``outbox.target`` (where it went,
  for rate limits and the page) and ``outbox.outcome`` (JSON: e.g. the ticket's key).

Plain SQL only (a migration never imports application code).

Revision ID: 0016_automation
Revises: 0015_playbooks
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_automation"
down_revision = "0015_playbooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables and columns."""
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("hint", sa.String(40), nullable=False),  # masked: "…f3a9"
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(20), nullable=False),  # jira, redmine, github, gitlab
        sa.Column("target", sa.String(500), nullable=False),  # base URL + project
        sa.Column("subject", sa.String(300), nullable=False),  # finding:ID, plan:KEY
        sa.Column("finding_id", sa.Integer,
                  sa.ForeignKey("findings.id", ondelete="SET NULL")),
        sa.Column("playbook_id", sa.Integer,
                  sa.ForeignKey("playbooks.id", ondelete="SET NULL")),
        sa.Column("key", sa.String(200), nullable=False),  # PROJ-12, #34
        sa.Column("url", sa.String(1000)),
        sa.Column("state", sa.String(20), nullable=False),  # open, closed
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ux_tickets_subject", "tickets", ["system", "target", "subject"],
                    unique=True)
    op.create_index("ix_tickets_finding", "tickets", ["finding_id"])
    op.create_table(
        "hooks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("token_sha256", sa.String(64)),
        sa.Column("hmac_secret", sa.String(200)),  # a name in ``secrets``
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_received_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "action_rates",
        sa.Column("target", sa.String(500), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent", sa.Integer, nullable=False),
    )
    op.create_table(
        "finding_overrides",
        sa.Column("finding_id", sa.Integer,
                  sa.ForeignKey("findings.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("priority", sa.Integer),  # 1 (P1) .. 4; NULL: the computed one
        sa.Column("assignee", sa.String(200)),
        sa.Column("tags", sa.Text),  # JSON list
        sa.Column("reason", sa.Text),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_finding_overrides_assignee", "finding_overrides", ["assignee"])
    with op.batch_alter_table("playbooks") as batch:
        batch.add_column(sa.Column("next_run_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("step", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("target", sa.String(500)))
        batch.add_column(sa.Column("outcome", sa.Text))
    op.create_index("ix_outbox_playbook_state", "outbox", ["playbook_id", "state"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_outbox_playbook_state", "outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("outcome")
        batch.drop_column("target")
        batch.drop_column("step")
    with op.batch_alter_table("playbooks") as batch:
        batch.drop_column("next_run_at")
    op.drop_index("ix_finding_overrides_assignee", "finding_overrides")
    op.drop_table("finding_overrides")
    op.drop_table("action_rates")
    op.drop_table("hooks")
    op.drop_index("ix_tickets_finding", "tickets")
    op.drop_index("ux_tickets_subject", "tickets")
    op.drop_table("tickets")
    op.drop_table("secrets")
