"""Migration 0019: users keep their rows (all local), and scopes and directory ids can be
stored; down and up again on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from patchpilot.db.tables import user_scopes, users

Migrate = Callable[[Engine, str, str], None]
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def test_migration_0019_users_are_local_and_scopes_are_stored(engine: Engine,
                                                              migrate: Migrate) -> None:
    migrate(engine, "downgrade", "0018_jvn")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO users (name, role, created_at, disabled) VALUES ('sato', 'admin', "
            f"'{NOW.isoformat()}', false)")
    migrate(engine, "upgrade", "head")
    with engine.begin() as conn:
        assert conn.execute(select(users.c.name, users.c.source, users.c.external_id)).all() \
            == [("sato", "local", None)]
        uid = conn.execute(insert(users).values(
            name="plant1-op", role="analyst", created_at=NOW, disabled=False, source="ldap",
            external_id="uid=op,ou=people,dc=example,dc=org").returning(users.c.id)
        ).scalar_one()
        conn.execute(insert(user_scopes), [{"user_id": uid, "kind": "group",
                                            "name": "plant1"}])
        assert conn.execute(select(user_scopes.c.name)).scalars().all() == ["plant1"]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(users).values(
            name="other", role="viewer", created_at=NOW, disabled=False, source="ldap",
            external_id="uid=op,ou=people,dc=example,dc=org"))
    migrate(engine, "downgrade", "0018_jvn")
    migrate(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert conn.execute(select(users.c.name, users.c.source)).all() == [
            ("sato", "local"), ("plant1-op", "local")]
