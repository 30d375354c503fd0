"""An SBOM or lock file with no readable package never closes an asset's findings (issue 10
item 8), and the dashboard shows admins the agents held for approval (item 3).

The estate is the page tests' (tests/builders/web_data.py): plant2-ws-11 (an agent's host,
firefox and Pygments 2.14.0) and plant1-build-02, with ALSA-2022:0818 and PYSEC-2023-117
loaded.  The uploads are real files of ../shared/data/inventories.  SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from patchpilot.db.tables import assets, findings, inventories
from patchpilot.findings.ingest import AssetClaimedError, ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.server.api.agents import EnrolRequest, enrol
from patchpilot.server.security import Role, create_api_token, create_enrolment_token
from tests.builders.jobs import run_jobs
from tests.builders.sessions import role_client, sign_in
from tests.builders.web_data import INV, POETRY_LOCK, load

EMPTY_SBOM = f"{INV}/spdx/osv-scalibr__sbom__spdx__minimal.spdx.json"  # no packages
PURL_LESS_SBOM = f"{INV}/cyclonedx/osv-scalibr__sbom__cdx__sbom.bom.json"  # none readable
EMPTY_PIPFILE = f"{INV}/pipfile-lock/osv-scalibr__language__python__pipfilelock__empty.json"
APP = "plant3-docs-build"


@pytest.fixture
def client(engine: Engine, shared_data: Path, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The page tests' estate (``web_data.load``), one user per role, a client."""
    load(engine, shared_data, tmp_path / "feeds")
    with role_client(engine, monkeypatch) as c:
        yield c


Rows = list[tuple[object, ...]]


def _state(engine: Engine, name: str) -> tuple[Rows, Rows]:
    """An asset's findings (vuln, package, state) and inventories (collector, packages,
    complete)."""
    with engine.connect() as conn:
        asset_id = conn.execute(select(assets.c.id).where(assets.c.name == name)).scalar_one()
        found = [tuple(r) for r in conn.execute(
            select(findings.c.vuln_id, findings.c.package, findings.c.state)
            .where(findings.c.asset_id == asset_id).order_by(findings.c.vuln_id))]
        stored = [tuple(r) for r in conn.execute(
            select(inventories.c.collector, inventories.c.packages, inventories.c.complete)
            .where(inventories.c.asset_id == asset_id).order_by(inventories.c.id))]
    return found, stored


def _upload(client: TestClient, csrf: str, name: str, data: bytes) -> object:
    return client.post("/assets/upload", data={"csrf": csrf, "asset": APP},
                       files={"file": (name, data)})


def test_an_upload_with_no_package_is_refused(client: TestClient, engine: Engine,
                                              shared_data: Path) -> None:
    csrf = sign_in(client, "analyst-user", "analyst-password")
    lock = (shared_data / POETRY_LOCK).read_bytes()
    assert _upload(client, csrf, "poetry.lock", lock).status_code == 303
    assert run_jobs(engine) == 1
    before = _state(engine, APP)
    assert before == ([("CVE-2022-40896", "pygments", "open")], [("file", 21, True)])

    answer = _upload(client, csrf, "minimal.spdx.json", (shared_data / EMPTY_SBOM).read_bytes())
    assert answer.status_code == 422
    assert ("<li>minimal.spdx.json: no package could be read from it (SPDX document lists no "
            "packages); an inventory without packages would mark every finding of the asset "
            "fixed, so it is not used</li>") in answer.text
    answer = _upload(client, csrf, "sbom.bom.json", (shared_data / PURL_LESS_SBOM).read_bytes())
    assert answer.status_code == 422
    assert "<li>sbom.bom.json: no package could be read from it (1 component not matched" \
        in answer.text
    answer = _upload(client, csrf, "Pipfile.lock", (shared_data / EMPTY_PIPFILE).read_bytes())
    assert answer.status_code == 422
    assert "<li>Pipfile.lock: no package could be read from it; an inventory" in answer.text
    # An Inventory JSON listing nothing is refused too.
    empty = Inventory.from_packages([], asset=AssetIdentity(hostname=APP),
                                    collector=Collector(name="file")).to_json()
    answer = _upload(client, csrf, "inventory.json", empty)
    assert answer.status_code == 422
    assert ("<li>inventory.json: the inventory lists no package; it would mark every finding "
            "of the asset fixed, so it is not stored</li>") in answer.text
    assert run_jobs(engine) == 0
    assert _state(engine, APP) == before


def test_the_api_refuses_a_file_inventory_with_no_package(client: TestClient,
                                                          engine: Engine) -> None:
    token, _ = create_api_token(engine, user="analyst-user", role=Role.ANALYST)
    before = _state(engine, "plant1-build-02")
    body = Inventory.from_packages([], asset=AssetIdentity(hostname="plant1-build-02"),
                                   collector=Collector(name="file")).to_json()
    answer = client.post("/api/inventories", content=body,
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/json"})
    assert (answer.status_code, answer.json()["detail"]) == (
        422, "request body: the inventory (collector 'file') lists no package: nothing could "
             "be read from the file it was made of, so it is not stored")
    assert run_jobs(engine) == 0
    assert _state(engine, "plant1-build-02") == before


def test_an_empty_complete_inventory_closes_nothing(client: TestClient,
                                                    engine: Engine) -> None:
    """Defence in depth: whatever sends it, an inventory with no package is stored as
    incomplete (document and column), so the match job closes no finding."""
    before = _state(engine, "plant2-ws-11")
    assert len(before[0]) == 11 and {f[2] for f in before[0]} == {"open"}
    inv = Inventory.from_packages([], complete=True, collector=Collector(name="agent"),
                                  asset=AssetIdentity(hostname="plant2-ws-11",
                                                      machine_id="4f0c2a9e0"))
    stored = ingest_inventory(engine, inv, enqueue_match=True)
    assert run_jobs(engine) == 1
    found, kept = _state(engine, "plant2-ws-11")
    assert found == before[0]  # all eleven still open
    assert kept == [*before[1], ("agent", 0, False)]
    with engine.connect() as conn:
        document = conn.execute(select(inventories.c.document).where(
            inventories.c.id == stored.inventory_id)).scalar_one()
    assert orjson.loads(document)["complete"] is False
    assert orjson.loads(document)["warnings"] == [
        "no package in this inventory: stored as incomplete, so it closes no finding"]


def test_the_overview_shows_admins_the_held_agents(client: TestClient,
                                                   engine: Engine) -> None:
    token = create_enrolment_token(engine, created_by="test", uses=2)
    owner, intruder = (enrol(EnrolRequest(token=token, name=n), engine).agent_id
                       for n in ("ws-11", "intruder"))
    inv = Inventory.from_packages([], asset=AssetIdentity(hostname="plant2-ws-11"),
                                  collector=Collector(name="agent"))
    ingest_inventory(engine, inv, agent_id=owner)
    with pytest.raises(AssetClaimedError):
        ingest_inventory(engine, inv, agent_id=intruder)
    sign_in(client, "admin-user", "admin-password")
    page = client.get("/overview").text
    assert 'id="held-agents"' in page
    assert f"<td>intruder ({intruder})</td>" in page
    assert f"<code>patchpilot agents approve {intruder}</code>" in page
    client.cookies.set("pp_lang", "ja")
    sign_in(client, "analyst-user", "analyst-password")
    assert 'id="held-agents"' not in client.get("/overview").text  # admins only
