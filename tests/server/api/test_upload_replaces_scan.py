"""An inventory read from a file never replaces the inventory a host's scan stored (issue 11
item 6): the rule lives in the ingest stage, so ``POST /api/inventories`` obeys it as the
upload page always did.  The file is a real npm lock file of ../shared/data/inventories;
SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from patchpilot.db.tables import assets, inventories, jobs
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.inventory.transports.file import read_inventory_bytes
from patchpilot.models import Ecosystem, Package
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token

NPM_LOCK = "inventories/npm-package-lock/syft__npm-lock__package-lock.json"
HOST = "plant2-ws-11"


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", "test-secret-" + "x" * 32)
    with TestClient(create_app(engine), follow_redirects=False) as c:
        yield c


def _scanned_host(engine: Engine) -> tuple[int, int]:
    """The agent's host: its asset id and the id of the inventory its scan stored."""
    scan = Inventory.from_packages(
        [Package(ecosystem=Ecosystem("PyPI"), name="Pygments", version="2.14.0")], complete=True,
        asset=AssetIdentity(hostname=HOST), collector=Collector(name="agent"),
        collected_at=datetime(2024, 5, 1, tzinfo=UTC))
    result = ingest_inventory(engine, scan)
    return result.asset_id, result.inventory_id


def _stored(engine: Engine) -> tuple[list[tuple[object, ...]], int, int]:
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(
            select(assets.c.name, assets.c.last_inventory_id).order_by(assets.c.id))]
        count = conn.execute(select(func.count()).select_from(inventories)).scalar_one()
        queued = conn.execute(select(func.count()).select_from(jobs)).scalar_one()
    return rows, count, queued


def test_the_api_refuses_a_lock_file_over_a_scanned_host(
        client: TestClient, engine: Engine, shared_data: Path) -> None:
    asset_id, scan_id = _scanned_host(engine)
    token, _ = create_api_token(engine, user="analyst-user", role=Role.ANALYST)
    auth = {"Authorization": f"Bearer {token}"}
    lock = (shared_data / NPM_LOCK).read_bytes()
    body = read_inventory_bytes(lock, "package-lock.json", hostname=HOST).to_json()
    before = _stored(engine)
    assert before == ([(HOST, scan_id)], 1, 0)

    answer = client.post("/api/inventories", content=body,
                         headers={**auth, "Content-Type": "application/json"})
    assert answer.status_code == 422
    assert answer.json() == {"detail": (
        f"asset: '{HOST}' is scanned by its agent collector; a file uploaded under its name "
        "would replace that inventory and close its findings. Name the application "
        f"instead, e.g. '{HOST}-app'.")}
    assert _stored(engine) == before  # nothing stored, nothing queued

    # Under the application's own name the same file is a new asset, and a newer upload
    # of it replaces the older one (a file's inventory over a file's).
    app_body = read_inventory_bytes(lock, "package-lock.json", hostname=f"{HOST}-app").to_json()
    for _ in range(2):
        answer = client.post("/api/inventories", content=app_body,
                             headers={**auth, "Content-Type": "application/json"})
        assert answer.status_code == 202
    rows, count, queued = _stored(engine)
    assert [r[0] for r in rows] == [HOST, f"{HOST}-app"]
    assert rows[0] == (HOST, scan_id) and (count, queued) == (3, 2)


def test_the_stage_refuses_it_whatever_the_edge(engine: Engine, shared_data: Path) -> None:
    """ingest_inventory itself refuses (the CLI's ``scan file --server`` and any later edge
    go through it); an agent's own next scan is still taken."""
    from patchpilot.findings.uploads import ReplacesScan

    asset_id, scan_id = _scanned_host(engine)
    lock = (shared_data / NPM_LOCK).read_bytes()
    with pytest.raises(ReplacesScan) as refused:
        ingest_inventory(engine, read_inventory_bytes(lock, "package-lock.json",
                                                      hostname=HOST))
    assert refused.value.field == "asset"
    assert _stored(engine) == ([(HOST, scan_id)], 1, 0)
    _, rescan_id = _scanned_host(engine)
    assert _stored(engine) == ([(HOST, rescan_id)], 2, 0) and rescan_id != scan_id
