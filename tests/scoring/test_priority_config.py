"""The active priority configuration is the newest ``priority_config`` row (issue 11
item 10), not the newest audit row; every change is still audited."""

from __future__ import annotations

import orjson
from sqlalchemy import Engine, insert, select

from patchpilot.clock import now_utc
from patchpilot.db.tables import audit_log, priority_config
from patchpilot.scoring.apply import active_config, save_config
from patchpilot.scoring.priority import default_config, parse_config

FIRST = parse_config("matrix:\n  Critical: [1, 1, 2, 2]\n")
SECOND = parse_config("method: ssvc\n")


def test_each_saved_configuration_is_a_row_and_the_newest_is_in_force(engine: Engine) -> None:
    with engine.begin() as conn:
        assert active_config(conn) == default_config()
        save_config(conn, FIRST, "sato")
        save_config(conn, SECOND, "tanaka")
    with engine.connect() as conn:
        rows = conn.execute(select(priority_config).order_by(priority_config.c.id)).all()
        assert [r.created_by for r in rows] == ["sato", "tanaka"]
        assert [orjson.loads(r.config)["method"] for r in rows] == ["matrix", "ssvc"]
        assert active_config(conn) == SECOND
        audited = conn.execute(select(audit_log.c.actor, audit_log.c.target).where(
            audit_log.c.action == "priority.config").order_by(audit_log.c.id)).all()
        assert [tuple(r) for r in audited] == [("sato", "matrix"), ("tanaka", "ssvc")]


def test_an_audit_row_alone_does_not_change_the_configuration(engine: Engine) -> None:
    # Before: the newest audit row was the configuration, so anything writing an audit
    # row with this action silently changed every finding's priority.
    with engine.begin() as conn:
        save_config(conn, FIRST, "sato")
        mapping = orjson.loads(orjson.dumps(SECOND.to_mapping(),
                                            option=orjson.OPT_NON_STR_KEYS))
        conn.execute(insert(audit_log).values(
            at=now_utc(), actor="mallory", action="priority.config", target="ssvc",
            detail=orjson.dumps({"config": mapping}).decode()))
    with engine.connect() as conn:
        assert active_config(conn) == FIRST
