"""Divisible jobs: a heavy job (a re-match, a re-prioritisation of the estate) splits into
chunk jobs that any number of workers take.

``jobs.parent_id`` is the job a chunk belongs to (its chunks go when it goes);
``jobs.chunks_total`` and ``jobs.chunks_done`` count a parent's chunks -- the last chunk to
finish is the one whose increment reaches the total, so exactly one of them hands the
parent its finishing step, whichever worker or process runs it.  A parent waits in state
``waiting`` (no new column: ``state`` is free text) while its chunks run.

Plain SQL only (a migration never imports application code).

Revision ID: 0020_job_chunks
Revises: 0019_directory
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_job_chunks"
down_revision = "0019_directory"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns and the index of a parent's chunks."""
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("parent_id", sa.Integer))
        batch.add_column(sa.Column("chunks_total", sa.Integer))
        batch.add_column(sa.Column("chunks_done", sa.Integer))
        batch.create_foreign_key("fk_jobs_parent_id", "jobs", ["parent_id"], ["id"],
                                 ondelete="CASCADE")
    op.create_index("ix_jobs_parent", "jobs", ["parent_id"])


def downgrade() -> None:
    """Drop them (chunk rows first: without their parent column they would be orphans)."""
    op.execute("DELETE FROM jobs WHERE parent_id IS NOT NULL")
    op.drop_index("ix_jobs_parent", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("fk_jobs_parent_id", type_="foreignkey")
        batch.drop_column("chunks_done")
        batch.drop_column("chunks_total")
        batch.drop_column("parent_id")
