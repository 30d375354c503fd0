"""Migration 0017 creates the MSRC tables as db/tables.py declares them, and its downgrade
drops them."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, inspect

from patchpilot.db.tables import msrc_fixes, msrc_products, msrc_vulns

Migrate = Callable[[Engine, str, str], None]
TABLES = (msrc_products, msrc_vulns, msrc_fixes)


def test_migration_0017_up_and_down(engine: Engine, migrate: Migrate) -> None:
    seen = inspect(engine)
    for table in TABLES:
        assert [c["name"] for c in seen.get_columns(table.name)] == [c.name for c in table.c]
        assert seen.get_pk_constraint(table.name)["constrained_columns"] == [
            c.name for c in table.primary_key.columns]
        assert {(i["name"], tuple(i["column_names"])) for i in seen.get_indexes(table.name)} \
            == {(i.name, tuple(c.name for c in i.columns)) for i in table.indexes}
    migrate(engine, "downgrade", "0016_automation")
    assert not {t.name for t in TABLES} & set(inspect(engine).get_table_names())
    migrate(engine, "upgrade", "head")
    assert {t.name for t in TABLES} <= set(inspect(engine).get_table_names())
