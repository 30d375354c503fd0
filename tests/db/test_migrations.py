"""Migration 0011 carries the audited priority configuration over to its table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from sqlalchemy import Engine, delete, insert, select

from patchpilot.db.tables import audit_log, priority_config
from patchpilot.scoring.apply import active_config
from patchpilot.scoring.priority import default_config, parse_config

Migrate = Callable[[Engine, str, str], None]


OLD = parse_config("matrix:\n  Critical: [1, 1, 2, 2]\n")
NEW = parse_config("matrix:\n  Critical: [1, 1, 1, 1]\n  High: [1, 1, 1, 1]\n"
                   "sla_days: {1: 3}\n")
T1 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
T2 = datetime(2026, 6, 2, 9, 30, tzinfo=UTC)


def _audit_row(at: datetime, actor: str, config: object) -> dict[str, object]:
    mapping = orjson.loads(orjson.dumps(config.to_mapping(),  # type: ignore[attr-defined]
                                        option=orjson.OPT_NON_STR_KEYS))
    return {"at": at, "actor": actor, "action": "priority.config", "target": "matrix",
            "detail": orjson.dumps({"config": mapping}).decode()}


def test_migration_0011_copies_the_newest_audited_configuration(engine: Engine,
                                                                migrate: Migrate) -> None:
    migrate(engine, "downgrade", "0010")
    with engine.begin() as conn:
        conn.execute(delete(priority_config))
        conn.execute(insert(audit_log), [
            _audit_row(T1, "sato", OLD),
            {"at": T2, "actor": "ito", "action": "token.revoke", "target": "3",
             "detail": "{}"},
            _audit_row(T2, "tanaka", NEW),
        ])
        # Before 0011 nothing is in the table: the code would fall back to the default.
        assert active_config(conn) == default_config()
    migrate(engine, "upgrade", "head")
    with engine.connect() as conn:
        rows = conn.execute(select(priority_config)).all()
        assert [(r.created_by, r.created_at.replace(tzinfo=UTC) if r.created_at.tzinfo is None
                 else r.created_at) for r in rows] == [("tanaka", T2)]
        assert active_config(conn) == NEW
        # The audit rows are the record of who changed it: all still there.
        assert conn.execute(select(audit_log.c.actor).where(
            audit_log.c.action == "priority.config").order_by(audit_log.c.id)
        ).scalars().all() == ["sato", "tanaka"]
    # Down and up again: the row is not copied twice.
    migrate(engine, "downgrade", "0010")
    migrate(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert conn.execute(select(priority_config.c.created_by)).scalars().all() == ["tanaka"]
        assert active_config(conn) == NEW


def test_migration_0011_without_an_audited_configuration_keeps_the_default(
        engine: Engine, migrate: Migrate) -> None:
    migrate(engine, "downgrade", "0010")
    with engine.begin() as conn:
        conn.execute(insert(audit_log), [{"at": T1, "actor": "ito", "action": "token.revoke",
                                          "target": "3", "detail": "{}"}])
    migrate(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert conn.execute(select(priority_config)).all() == []
        assert active_config(conn) == default_config()
