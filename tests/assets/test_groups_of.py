"""groups_of: every group of each asset (static members and tag/attribute rules) for a
batch of assets at once (the playbook context's ``asset.groups``)."""

from __future__ import annotations

from sqlalchemy import Engine, insert

from patchpilot.assets.groups import add_members, create_group, groups_of, update_group
from patchpilot.clock import now_utc
from patchpilot.db.tables import assets


def test_groups_of_static_and_rule_groups(engine: Engine) -> None:
    now = now_utc()
    with engine.begin() as conn:
        conn.execute(insert(assets), [
            {"name": "web1", "tags": '["web", "dmz"]', "attributes": '{"site": "osaka"}',
             "first_seen": now, "last_seen": now},
            {"name": "db1", "tags": '["db"]', "attributes": '{"site": "osaka"}',
             "first_seen": now, "last_seen": now},
            {"name": "lab1", "tags": None, "attributes": None,
             "first_seen": now, "last_seen": now}])
        plant = create_group(conn, "t", "plant1")
        add_members(conn, "t", plant, [1, 2])
        web = create_group(conn, "t", "web-dmz")
        update_group(conn, "t", web, rule={"tags": ["web", "dmz"]})
        osaka = create_group(conn, "t", "osaka")
        update_group(conn, "t", osaka, rule={"attributes": {"site": "osaka"}})
        create_group(conn, "t", "empty")
        assert groups_of(conn, [3, 1, 2, 1]) == {
            1: ["osaka", "plant1", "web-dmz"], 2: ["osaka", "plant1"], 3: []}
        assert groups_of(conn, []) == {}
