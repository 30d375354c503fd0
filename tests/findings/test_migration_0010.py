"""Migration 0010 (producers, events, priority configuration) on rows from before it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from sqlalchemy import Engine, inspect, select, text

from patchpilot.db.tables import finding_events, findings, priority_config

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MATCHER_DATA = {"vuln_id": "CVE-2022-40896", "package": "pygments",
                "evidence": {"feed": "osv", "source": "PYSEC-2023-117"}}
HOST_DATA = {"vuln_id": "CVE-2021-4034", "package": "polkit",
             "evidence": {"feed": "host-repos", "source": "dnf updateinfo"}}


def _old_finding(conn, fid: int, vuln: str, package: str, data: dict) -> None:  # type: ignore[no-untyped-def]
    conn.execute(text(
        "INSERT INTO findings (id, asset_id, vuln_id, ecosystem, package, state, first_seen, "
        "last_seen, times_reopened, new_from_feed, known_exploited, data, priority_rank) "
        "VALUES (:id, 1, :v, 'AlmaLinux:8', :p, 'open', :t, :t, 0, false, false, :d, 5)"),
        {"id": fid, "v": vuln, "p": package, "t": T0,
         "d": orjson.dumps(data).decode()})


def test_upgrade_downgrade_upgrade_with_rows(engine: Engine,
                                             migrate: Callable[[Engine, str, str], None]
                                             ) -> None:
    migrate(engine, "downgrade", "0009")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO assets (id, name, tags, attributes, first_seen, "
                          "last_seen, ip_addresses) VALUES (1, 'plant2-ws-11', '[]', '{}', "
                          ":t, :t, '[]')"), {"t": T0})
        _old_finding(conn, 1, "CVE-2022-40896", "pygments", MATCHER_DATA)
        _old_finding(conn, 2, "CVE-2021-4034", "polkit", HOST_DATA)

    migrate(engine, "upgrade", "head")
    with engine.begin() as conn:
        rows = {r.id: (r.producer, orjson.loads(r.data)) for r in conn.execute(
            select(findings.c.id, findings.c.producer, findings.c.data))}
        assert rows == {1: ("matcher", {**MATCHER_DATA, "sources": ["matcher"]}),
                        2: ("host-updates", {**HOST_DATA, "sources": ["host-updates"]})}
        conn.execute(finding_events.insert().values(at=T0, finding_id=1, asset_id=1,
                                                    kind="new", producer="matcher"))
        conn.execute(priority_config.insert().values(config="{}", created_at=T0,
                                                     created_by="sato"))

    migrate(engine, "downgrade", "0009")
    with engine.connect() as conn:
        schema = inspect(conn)
        assert {"finding_events", "priority_config"}.isdisjoint(schema.get_table_names())
        assert "producer" not in {c["name"] for c in schema.get_columns("findings")}
        assert {"cloud_instance_id", "artifact"}.isdisjoint(
            c["name"] for c in schema.get_columns("assets"))
        assert conn.execute(text("SELECT id FROM findings ORDER BY id")).scalars().all() \
            == [1, 2]

    # Again: the same backfill, and the JSON's sources not written twice.
    migrate(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert {r.id: (r.producer, orjson.loads(r.data)) for r in conn.execute(
            select(findings.c.id, findings.c.producer, findings.c.data))} == rows
        assert conn.execute(select(finding_events)).all() == []
        assert conn.execute(select(priority_config)).all() == []
