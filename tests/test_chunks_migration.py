"""Migration 0020 adds the chunk columns of ``jobs`` as db/tables.py declares them; its
downgrade drops them with the chunk rows."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, func, inspect, select

from patchpilot import queue
from patchpilot.db.tables import jobs

Migrate = Callable[[Engine, str, str], None]
CHUNK_COLUMNS = ["parent_id", "chunks_total", "chunks_done"]


def test_migration_0020_up_and_down(engine: Engine, migrate: Migrate) -> None:
    seen = inspect(engine)
    assert [c["name"] for c in seen.get_columns("jobs")] == [c.name for c in jobs.c]
    assert ("ix_jobs_parent", ("parent_id",)) in {
        (i["name"], tuple(i["column_names"])) for i in seen.get_indexes("jobs")}
    with engine.begin() as conn:
        queue.enqueue(conn, "noop", {})
    job = queue.lease(engine, "w", kinds=("noop",))
    assert job is not None
    with engine.begin() as conn:
        queue.split(conn, job, "noop", [{"n": 1}, {"n": 2}])
    migrate(engine, "downgrade", "0019_directory")
    columns = [c["name"] for c in inspect(engine).get_columns("jobs")]
    assert not set(CHUNK_COLUMNS) & set(columns)
    with engine.connect() as conn:  # the parent stays, its chunks are gone
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 1
    migrate(engine, "upgrade", "head")
    assert [c["name"] for c in inspect(engine).get_columns("jobs")] == [c.name for c in jobs.c]
