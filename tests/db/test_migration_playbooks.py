"""Migrations 0015 and 0016 create the playbook tables as db/tables.py declares them, and
their downgrades drop them."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, inspect

from patchpilot.db.tables import (
    action_rates,
    finding_overrides,
    hooks,
    outbox,
    playbook_cursor,
    playbook_versions,
    playbooks,
    secrets,
    tickets,
)

Migrate = Callable[[Engine, str, str], None]
TABLES = (playbooks, playbook_versions, outbox, playbook_cursor)
TABLES_0016 = (secrets, tickets, hooks, action_rates, finding_overrides)


def test_migrations_0015_0016_up_and_down(engine: Engine, migrate: Migrate) -> None:
    seen = inspect(engine)
    for table in (*TABLES, *TABLES_0016):
        assert [c["name"] for c in seen.get_columns(table.name)] == [c.name for c in table.c]
    assert {(i["name"], tuple(i["column_names"]), bool(i["unique"]))
            for i in seen.get_indexes("outbox")} == {
        ("ux_outbox_once", ("playbook_id", "event_id", "action_index"), True),
        ("ix_outbox_due", ("state", "next_attempt_at"), False),
        ("ix_outbox_playbook_state", ("playbook_id", "state"), False)}
    assert {(i["name"], tuple(i["column_names"]), bool(i["unique"]))
            for i in seen.get_indexes("tickets")} == {
        ("ux_tickets_subject", ("system", "target", "subject"), True),
        ("ix_tickets_finding", ("finding_id",), False)}
    migrate(engine, "downgrade", "0015_playbooks")
    seen = inspect(engine)
    assert not {t.name for t in TABLES_0016} & set(seen.get_table_names())
    assert "step" not in {c["name"] for c in seen.get_columns("outbox")}
    assert "next_run_at" not in {c["name"] for c in seen.get_columns("playbooks")}
    migrate(engine, "downgrade", "0014_imports")
    assert not {t.name for t in TABLES} & set(inspect(engine).get_table_names())
    migrate(engine, "upgrade", "head")
    assert {t.name for t in (*TABLES, *TABLES_0016)} <= set(inspect(engine).get_table_names())
