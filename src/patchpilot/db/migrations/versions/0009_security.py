"""Security hardening: a role per API token, server-side dashboard sessions, login
throttling, agents held for an admin's approval.

* ``api_tokens.role``: the role a token was created with.  A token acts with the lower of
  its own role and its user's current role, so a viewer token of an admin stays a viewer
  token, and demoting the user demotes every token.  Existing tokens get their user's role
  (what they acted with until now).
* ``web_sessions``: a dashboard session is a row (the cookie carries its random id, only
  the SHA-256 of which is stored), so logout, token revocation, user removal and role
  changes end it at once instead of when the cookie expires.
* ``login_throttle``: failed sign-ins per user name and per client address, shared by
  every server process behind a load balancer.
* ``agents.pending_asset_id``: an agent whose first inventory names an asset another agent
  reports for is not bound to it; it waits here for an admin to approve or refuse.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns and tables; backfill each token's role from its user."""
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("role", sa.String(20)))
    op.execute("UPDATE api_tokens SET role = (SELECT role FROM users "
               "WHERE users.id = api_tokens.user_id)")
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("role", existing_type=sa.String(20), nullable=False)

    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        # The API token the session was opened with (NULL: a password login); revoking
        # the token ends the session.
        sa.Column("token_id", sa.Integer, sa.ForeignKey("api_tokens.id", ondelete="CASCADE")),
        # The role the session acts with (the token's, or the user's at login); a change
        # of the user's role ends the session.
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("user_role", sa.String(20), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("client", sa.String(100)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_web_sessions_user", "web_sessions", ["user_id"])

    op.create_table(
        "login_throttle",
        # "user:NAME" or "addr:IP"
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
    )

    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("pending_asset_id", sa.Integer,
                                   sa.ForeignKey("assets.id", ondelete="SET NULL",
                                                 name="fk_agents_pending_asset")))
        batch.add_column(sa.Column("pending_since", sa.DateTime(timezone=True)))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("agents") as batch:
        batch.drop_constraint("fk_agents_pending_asset", type_="foreignkey")
        batch.drop_column("pending_since")
        batch.drop_column("pending_asset_id")
    op.drop_table("login_throttle")
    op.drop_index("ix_web_sessions_user", table_name="web_sessions")
    op.drop_table("web_sessions")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("role")
