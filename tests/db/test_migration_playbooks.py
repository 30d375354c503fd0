"""Migration 0015 creates the playbook tables as db/tables.py declares them, and its
downgrade drops them."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, inspect

from patchpilot.db.tables import outbox, playbook_cursor, playbook_versions, playbooks

Migrate = Callable[[Engine, str, str], None]
TABLES = (playbooks, playbook_versions, outbox, playbook_cursor)


def test_migration_0015_up_and_down(engine: Engine, migrate: Migrate) -> None:
    seen = inspect(engine)
    for table in TABLES:
        assert [c["name"] for c in seen.get_columns(table.name)] == [c.name for c in table.c]
    assert {(i["name"], tuple(i["column_names"]), bool(i["unique"]))
            for i in seen.get_indexes("outbox")} == {
        ("ux_outbox_once", ("playbook_id", "event_id", "action_index"), True),
        ("ix_outbox_due", ("state", "next_attempt_at"), False)}
    migrate(engine, "downgrade", "0014_imports")
    assert not {t.name for t in TABLES} & set(inspect(engine).get_table_names())
    migrate(engine, "upgrade", "head")
    assert {t.name for t in TABLES} <= set(inspect(engine).get_table_names())
