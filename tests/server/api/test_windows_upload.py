"""``POST /api/inventories`` takes a Windows host's saved ``systeminfo`` (issue 16,
"Inventory" bullet 2): told by its content, stored as the inventory of the host it names
(schema 2, its ``windows`` part), its match queued as for any upload.  Refusals name the
body.  Real files of ../shared/data/windows/systeminfo; SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from patchpilot.db.tables import assets, inventories, jobs
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token
from tests.builders.jobs import run_jobs

FOLDER = "windows/systeminfo"


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", "test-secret-" + "x" * 32)
    with TestClient(create_app(engine), follow_redirects=False) as c:
        yield c


@pytest.fixture
def auth(engine: Engine) -> dict[str, str]:
    token, _ = create_api_token(engine, user="analyst-user", role=Role.ANALYST)
    return {"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}


def test_a_systeminfo_upload_makes_a_windows_asset(client: TestClient, engine: Engine,
                                                   auth: dict[str, str],
                                                   shared_data: Path) -> None:
    body = (shared_data / FOLDER / "srv_2022_systeminfo.txt").read_bytes()
    answer = client.post("/api/inventories", content=body, headers=auth)
    assert answer.status_code == 202, answer.text
    got = answer.json()
    assert got["duplicate"] is False and got["job_id"] is not None
    with engine.connect() as conn:
        asset = conn.execute(select(assets).where(assets.c.id == got["asset_id"])).one()
        stored = conn.execute(select(inventories).where(
            inventories.c.id == got["inventory_id"])).one()
        job = conn.execute(select(jobs.c.kind, jobs.c.asset_id).where(
            jobs.c.id == got["job_id"])).one()
    assert (asset.name, asset.os, asset.last_inventory_id) == (
        "WIN-RIBN7SM07BK", "Microsoft Windows Server 2022 Standard", got["inventory_id"])
    assert (stored.collector, stored.complete, stored.packages) == ("file", True, 0)
    assert tuple(job) == ("match", got["asset_id"])
    document = orjson.loads(stored.document)
    assert document["schema"] == 2
    assert document["os"]["version_id"] == "10.0.20348"
    assert document["windows"] == {
        "product_name": "Microsoft Windows Server 2022 Standard",
        "family": "Windows Server 2022", "release": "21H2", "edition": "Standard",
        "installation_type": None, "build": 20348, "ubr": None, "service_pack": None,
        "architecture": "x64", "kbs": ["KB5004330", "KB5005039", "KB5005552"],
        "kbs_complete": True, "programs": [], "components": {}}
    assert run_jobs(engine) == 1  # the match job runs to its end


def test_a_gzipped_utf16_qfe_list_of_a_known_host(client: TestClient, engine: Engine,
                                                   auth: dict[str, str],
                                                   shared_data: Path) -> None:
    # The Vista host's wmic qfe list names it in its CSName column: the asset is found by
    # that name; with no product named, the inventory's warning says so.
    body = gzip.compress((shared_data / FOLDER / "vista_x64_sp1_qfe.txt").read_bytes())
    answer = client.post("/api/inventories", content=body,
                         headers={**auth, "Content-Encoding": "gzip"})
    assert answer.status_code == 202, answer.text
    with engine.connect() as conn:
        name, document = conn.execute(
            select(assets.c.name, inventories.c.document)
            .join(inventories, inventories.c.id == assets.c.last_inventory_id)).one()
    document = orjson.loads(document)
    assert name == "WINVISTASP0X64"
    assert (document["os"], document["windows"]["family"], len(document["windows"]["kbs"])) \
        == (None, None, 173)
    assert document["warnings"] == [
        "request body: a qfe list names no Windows product; upload the host's systeminfo "
        "output too, so its updates can be judged"]


def test_unreadable_windows_files_are_refused_naming_the_body(
        client: TestClient, engine: Engine, auth: dict[str, str], shared_data: Path) -> None:
    folder = shared_data / FOLDER
    answer = client.post("/api/inventories", headers=auth,
                         content=(folder / "xp_sp2_x86_qfe.txt").read_bytes())
    assert (answer.status_code, answer.json()) == (422, {"detail": (
        "request body: no KB number in any hotfix entry (only: Q147222)")})
    # A QFE list without its CSName column names no host: no asset to store it under.
    answer = client.post("/api/inventories", headers=auth, content=(
        folder / "10_1803_x64_proforworkstations_en-us_A_20190305_qfe.txt").read_bytes())
    assert (answer.status_code, answer.json()) == (422, {"detail": (
        "request body: the Windows file names no host (a QFE list without its CSName "
        "column): send the host's systeminfo output, which names it")})
    with engine.connect() as conn:
        assert conn.execute(select(inventories.c.id)).all() == []
