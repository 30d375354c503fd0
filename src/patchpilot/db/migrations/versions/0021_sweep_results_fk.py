"""A sweep's result rows no longer reference their sweep by a foreign key.

Every result row is written by the one statement that starts a sweep, in the transaction
that inserts the sweep itself, and no sweep is ever deleted: the key held by
construction, while PostgreSQL checked it once per row -- a row lock on the one sweep
taken 100,000 times, about a third of a second of the first answer at 100,000 assets
(issue 19's sweep target).  The reference to the asset stays (its ``ON DELETE CASCADE``).

Plain SQL only (a migration never imports application code).

Revision ID: 0021_sweep_results_fk
Revises: 0020_job_chunks
Create Date: 2026-12-06
"""

from alembic import op

revision = "0021_sweep_results_fk"
down_revision = "0020_job_chunks"
branch_labels = None
depends_on = None

# SQLite's constraints have no names: batch mode names the reflected ones by this.
_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    """Drop the foreign key of ``sweep_results.sweep_id``."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sweep_results DROP CONSTRAINT sweep_results_sweep_id_fkey")
        return
    with op.batch_alter_table("sweep_results", naming_convention=_NAMES) as batch:
        batch.drop_constraint("fk_sweep_results_sweep_id_sweeps", type_="foreignkey")


def downgrade() -> None:
    """Add it again (the rows of sweeps that no longer exist go first)."""
    op.execute("DELETE FROM sweep_results WHERE sweep_id NOT IN (SELECT id FROM sweeps)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sweep_results ADD CONSTRAINT sweep_results_sweep_id_fkey "
                   "FOREIGN KEY (sweep_id) REFERENCES sweeps (id) ON DELETE CASCADE")
        return
    with op.batch_alter_table("sweep_results", naming_convention=_NAMES) as batch:
        batch.create_foreign_key("fk_sweep_results_sweep_id_sweeps", "sweeps", ["sweep_id"],
                                 ["id"], ondelete="CASCADE")
