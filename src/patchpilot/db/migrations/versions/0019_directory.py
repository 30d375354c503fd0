"""Directory sign-in and scoped roles: where a user comes from, and what part of the estate
a user may see.

``users.source`` is ``local`` (a password or tokens kept here: the break-glass admins),
``oidc`` or ``ldap``; ``users.external_id`` is what the directory knows the user by (the
OIDC issuer and subject, the LDAP entry's DN).  ``user_scopes`` limits a user to asset
groups or business services (``kind`` ``group`` or ``service``, ``name`` the group's or
service's name); a user with no row sees the whole estate.

Plain SQL only (a migration never imports application code).

Revision ID: 0019_directory
Revises: 0018_jvn
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_directory"
down_revision = "0018_jvn"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns and the table."""
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("source", sa.String(20), nullable=False,
                                   server_default="local"))
        batch.add_column(sa.Column("external_id", sa.String(500)))
        batch.create_unique_constraint("uq_users_source_external",
                                       ["source", "external_id"])
    op.create_table(
        "user_scopes",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),  # group, service
        sa.Column("name", sa.String(200), primary_key=True),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("user_scopes")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_source_external", type_="unique")
        batch.drop_column("external_id")
        batch.drop_column("source")
