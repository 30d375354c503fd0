"""Producers and events (issue 11 items 4, 5 and 10).

* ``findings.producer``: which producers report a finding -- ``matcher`` (the knowledge
  base), ``host-updates`` (the host's own pending security updates), later
  ``importer:<format>``.  One finding per (asset, vulnerability, ecosystem, package)
  whoever reports it: the column holds every producer that reports it, sorted and joined
  with ``,`` (almost always one), and the finding's ``data`` JSON lists them as
  ``sources``.  A complete report closes only what its own producer no longer reports.
  Existing rows: the host's pending updates (``"feed":"host-repos"`` in their data, how
  re-matching recognised them until now) are ``host-updates``, the rest ``matcher``.
* ``finding_events``: one row per lifecycle change (new, reopened, fixed, triaged, …),
  written in the same transaction as the change; read in id order.
* ``assets.cloud_instance_id`` and ``assets.artifact`` (the container image or code
  repository an SBOM, lock file or scanner report describes): keys of the asset identity
  (``findings/ingest.py``) that importers match on, indexed like ``machine_id``.
* ``priority_config``: the active priority configuration, one row per change (the latest
  is active), instead of the latest audit row.

No application code is imported: the backfill is plain SQL that both SQLite and
PostgreSQL run.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# How re-matching recognised the host's own pending updates before this revision.
_HOST_REPOS = '%"feed":"host-repos"%'


def upgrade() -> None:
    """Add the producer column (backfilled), the events and priority-config tables."""
    op.add_column("findings", sa.Column("producer", sa.String(100), nullable=False,
                                        server_default="matcher"))
    op.execute(sa.text("UPDATE findings SET producer = 'host-updates' WHERE data LIKE :p")
               .bindparams(p=_HOST_REPOS))
    # The finding's JSON lists its sources too (what the API and the finding page show):
    # appended as the object's last key, portable string SQL, skipped where already there
    # (an upgrade after a downgrade).
    op.execute(sa.text(
        "UPDATE findings SET data = substr(data, 1, length(data) - 1) "
        "|| ',\"sources\":[\"' || producer || '\"]}' "
        "WHERE data LIKE '%}' AND data NOT LIKE '%\"sources\":[%'"))
    # "Which assets does this producer still report open findings on" (re-matching asks
    # it of the matcher) reads this index alone.
    op.create_index("ix_findings_producer", "findings", ["producer", "state", "asset_id"])

    op.add_column("assets", sa.Column("cloud_instance_id", sa.String(200)))
    op.add_column("assets", sa.Column("artifact", sa.String(300)))
    op.create_index("ix_assets_cloud_instance_id", "assets", ["cloud_instance_id"])
    op.create_index("ix_assets_artifact", "assets", ["artifact"])

    op.create_table(
        "finding_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finding_id", sa.Integer,
                  sa.ForeignKey("findings.id", ondelete="CASCADE")),
        sa.Column("asset_id", sa.Integer, sa.ForeignKey("assets.id", ondelete="CASCADE")),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("producer", sa.String(100)),
        sa.Column("actor", sa.String(200)),
        sa.Column("detail", sa.Text),  # JSON
    )
    op.create_index("ix_finding_events_kind", "finding_events", ["kind", "id"])
    op.create_index("ix_finding_events_asset", "finding_events", ["asset_id", "id"])
    # The cascade from a deleted finding (and "a finding's history") would scan the table
    # without it.
    op.create_index("ix_finding_events_finding", "finding_events", ["finding_id", "id"])

    op.create_table(
        "priority_config",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("config", sa.Text, nullable=False),  # JSON
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200)),
    )


def downgrade() -> None:
    """Drop them again (the ``sources`` key stays in the findings' JSON: harmless)."""
    op.drop_table("priority_config")
    op.drop_index("ix_finding_events_finding", table_name="finding_events")
    op.drop_index("ix_finding_events_asset", table_name="finding_events")
    op.drop_index("ix_finding_events_kind", table_name="finding_events")
    op.drop_table("finding_events")
    op.drop_index("ix_findings_producer", table_name="findings")
    op.drop_column("findings", "producer")
    op.drop_index("ix_assets_artifact", table_name="assets")
    op.drop_index("ix_assets_cloud_instance_id", table_name="assets")
    op.drop_column("assets", "artifact")
    op.drop_column("assets", "cloud_instance_id")
