"""GET /api/events: paging through the events real ingests wrote, by id with ``next``; the
kind and asset filters; bad cursors and kinds refused; viewers only.  Real advisories
(AlmaLinux's ALSA-2022:0818 for firefox, KEV), processed by the pipeline, both databases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from patchpilot.db.tables import finding_events
from patchpilot.findings.events import KINDS
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory, OsInfo
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package
from patchpilot.pipeline import process_inventory
from patchpilot.server.api.events import EventKind
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token

FEEDS = {
    "osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json",
    "kev/known_exploited_vulnerabilities.json": "kev/known_exploited_vulnerabilities.json",
}
ALMA8 = Ecosystem("AlmaLinux:8")
OLD, NEW = "91.6.0-1.el8_5.alma", "91.7.0-3.el8_5.alma"  # before and after the fix


def _upload(engine: Engine, host: str, firefox: str) -> int:
    """Store an AlmaLinux 8 host's inventory and process it as the match job does."""
    inv = Inventory.from_packages(
        [Package(ALMA8, "firefox", firefox, arch="x86_64", source_name="firefox",
                 source_version=firefox)],
        os=OsInfo(id="almalinux", version_id="8.5"), collector=Collector(name="local"),
        asset=AssetIdentity(hostname=host))
    stored = ingest_inventory(engine, inv)
    process_inventory(engine, stored.inventory_id)
    return stored.asset_id


@pytest.fixture
def estate(engine: Engine, feed_dir) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Two hosts with firefox's ten fixes open; the first then updates (ten fixed)."""
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    one = _upload(engine, "alma-1", OLD)
    two = _upload(engine, "alma-2", OLD)
    assert _upload(engine, "alma-1", NEW) == one
    return {"alma-1": one, "alma-2": two}


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


@pytest.fixture
def viewer(engine: Engine) -> dict[str, str]:
    token = create_api_token(engine, user="vera", role=Role.VIEWER)[0]
    return {"Authorization": f"Bearer {token}"}


def _stored(engine: Engine) -> list[tuple[int, str, int | None, int | None]]:
    with engine.connect() as conn:
        return [(r.id, r.kind, r.finding_id, r.asset_id) for r in conn.execute(
            select(finding_events).order_by(finding_events.c.id))]


def _page_all(client: TestClient, headers: dict[str, str], limit: int,
              **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every page from the start, following ``next``; (events, requests made)."""
    out: list[dict[str, Any]] = []
    after, calls = 0, 0
    while True:
        answer = client.get("/api/events", headers=headers,
                            params={"after": after, "limit": limit, **params})
        calls += 1
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if not body["events"]:
            assert body["next"] == after  # nothing new: ask again with the same cursor
            return out, calls
        assert body["next"] == body["events"][-1]["id"]
        out.extend(body["events"])
        after = body["next"]


def test_pages_through_every_event(engine: Engine, estate: dict[str, int],
                                   client: TestClient, viewer: dict[str, str]) -> None:
    stored = _stored(engine)
    # 10 new per host, 10 fixed on the updated one (no priority moved: first ranks only).
    assert sorted((kind, asset) for _, kind, _, asset in stored) == sorted(
        [("new", estate["alma-1"])] * 10 + [("new", estate["alma-2"])] * 10
        + [("fixed", estate["alma-1"])] * 10)
    events, calls = _page_all(client, viewer, limit=7)
    assert calls == 6  # 30 events: 7 + 7 + 7 + 7 + 2, then the empty page
    assert [(e["id"], e["kind"], e["finding_id"], e["asset_id"]) for e in events] == stored
    assert {e["producer"] for e in events} == {"matcher"}
    assert all(e["at"] and e["actor"] is None and e["detail"] is None for e in events)
    # From the middle: everything after that id, nothing before.
    middle = stored[14][0]
    answer = client.get(f"/api/events?after={middle}", headers=viewer).json()
    assert [e["id"] for e in answer["events"]] == [s[0] for s in stored[15:]]


def test_kind_and_asset_filters(engine: Engine, estate: dict[str, int],
                                client: TestClient, viewer: dict[str, str]) -> None:
    stored = _stored(engine)
    fixed, _ = _page_all(client, viewer, limit=4, kind="fixed")
    assert [e["id"] for e in fixed] == [s[0] for s in stored if s[1] == "fixed"]
    both, _ = _page_all(client, viewer, limit=100, kind=["fixed", "new"])
    assert len(both) == 30
    none, _ = _page_all(client, viewer, limit=100, kind="sla_breached")
    assert none == []
    second, _ = _page_all(client, viewer, limit=100, asset_id=estate["alma-2"])
    assert [e["id"] for e in second] == [s[0] for s in stored if s[3] == estate["alma-2"]]
    assert len(second) == 10
    new_first, _ = _page_all(client, viewer, limit=3, kind="new", asset_id=estate["alma-1"])
    assert [e["id"] for e in new_first] == [s[0] for s in stored
                                            if s[1] == "new" and s[3] == estate["alma-1"]]


@pytest.mark.parametrize("query", [
    "after=-1", "after=abc", f"after={2**31}", "after=1.5", "limit=0", "limit=1001",
    "kind=nope", "kind=new&kind=NEW", "asset_id=0", "asset_id=x",
])
def test_bad_parameters_are_422(client: TestClient, viewer: dict[str, str],
                                query: str) -> None:
    answer = client.get(f"/api/events?{query}", headers=viewer)
    assert answer.status_code == 422, answer.text


def test_viewer_allowed_no_token_refused(client: TestClient, viewer: dict[str, str]) -> None:
    assert client.get("/api/events").status_code == 401
    assert client.get("/api/events", headers={"Authorization": "Bearer nope"}
                      ).status_code == 401
    answer = client.get("/api/events", headers=viewer)
    assert (answer.status_code, answer.json()) == (200, {"events": [], "next": 0})


def test_the_schema_lists_every_kind() -> None:
    assert get_args(EventKind) == KINDS
