"""The CMDB API: import by JSON, CSV and YAML; unknown assets; one asset's context."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from patchpilot.db.tables import asset_context
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.models import Ecosystem, Package
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "cmdb.csv"


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


def _auth(engine: Engine, role: Role) -> dict[str, str]:
    token = create_api_token(engine, user=f"{role.value}-user", role=role)[0]
    return {"Authorization": f"Bearer {token}"}


def _scan(engine: Engine, hostname: str, ip: str) -> int:
    inv = Inventory.from_packages(
        [Package(Ecosystem("Debian:12"), "openssl", "3.0.11-1~deb12u2")],
        asset=AssetIdentity(hostname=hostname, ip_addresses=[ip]),
        collector=Collector(name="agent"))
    return ingest_inventory(engine, inv).asset_id


def test_import_csv_json_yaml(client: TestClient, engine: Engine) -> None:
    admin = _auth(engine, Role.ADMIN)
    app, ws = _scan(engine, "plant1-app-07", "10.1.0.17"), _scan(engine, "plant2-ws-11", "10.9.0.1")
    answer = client.post("/api/assets/import", headers={**admin, "Content-Type": "text/csv"},
                         content=EXAMPLE.read_bytes())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["updated"], body["created"], body["changed"], body["defaulted"]) == (2, 0, 2, 0)
    assert [(a["where"], a["asset_id"], a["matched_by"]) for a in body["assets"]] == [
        ("body:2", app, "hostname"), ("body:4", ws, "hostname")]
    assert [u["where"] for u in body["unmatched"]] == ["body:3", "body:5", "body:6"]
    assert body["unmatched"][0]["identity"] == (
        "fqdn=plant1-db-01.plant1.example.jp hostname=plant1-db-01 ip=10.1.0.21")
    assert body["ambiguous"] == []

    answer = client.post("/api/assets/import", headers=admin,
                         json=[{"ip": "10.9.0.1", "tier": 2, "owner": "Kobe IT"}])
    assert answer.json()["assets"][0]["matched_by"] == "ip"
    yaml_body = b"- hostname: plant1-app-07\n  exposure: internal\n"
    answer = client.post("/api/assets/import?create_missing=true",
                         headers={**admin, "Content-Type": "application/yaml"},
                         content=yaml_body + b"- hostname: plant9-new\n  tier: 1\n")
    body = answer.json()
    assert (body["updated"], body["created"]) == (1, 1)
    assert body["assets"][1]["where"] == "body:3"
    viewer = _auth(engine, Role.VIEWER)
    assert client.get("/api/assets/unknown", headers=viewer).json() == []


def test_import_rejects_bad_rows_and_writes_nothing(client: TestClient, engine: Engine) -> None:
    admin = _auth(engine, Role.ADMIN)
    _scan(engine, "plant1-app-07", "10.1.0.17")
    answer = client.post("/api/assets/import", headers={**admin, "Content-Type": "text/csv"},
                         content=b"hostname,tier,env\nplant1-app-07,1,prod\nx,high,qa\n")
    assert answer.status_code == 422
    assert answer.json()["detail"] == ["body:3: criticality must be 1-4, got 'high'"]
    answer = client.post("/api/assets/import", headers=admin,
                         json=[{"hostname": "plant1-app-07", "environment": "qa"}])
    assert answer.json()["detail"] == [
        "body:record 1: environment must be one of production, staging, development, got 'qa'"]
    assert client.post("/api/assets/import", headers=admin, json={}).status_code == 422
    answer = client.post("/api/assets/import", headers={**admin, "Content-Type": "text/plain"},
                         content=b"x")
    assert answer.status_code == 415
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(asset_context)).scalar() == 0


def test_unknown_and_put_context(client: TestClient, engine: Engine) -> None:
    app = _scan(engine, "plant1-app-07", "10.1.0.17")
    viewer, analyst = _auth(engine, Role.VIEWER), _auth(engine, Role.ANALYST)
    unknown = client.get("/api/assets/unknown", headers=viewer).json()
    assert [(u["id"], u["name"], u["criticality"], u["defaulted"]) for u in unknown] == [
        (app, "plant1-app-07", None, False)]
    answer = client.put(f"/api/assets/{app}/context", headers=analyst,
                        json={"criticality": 1, "exposure": "internet-facing",
                              "tags": "pci, dmz"})
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert (got["criticality"], got["exposure"], got["tags"], got["source"]) == (
        1, "internet-facing", ["pci", "dmz"], "manual")
    assert client.get("/api/assets/unknown", headers=viewer).json() == []
    bad = client.put(f"/api/assets/{app}/context", headers=analyst, json={"criticality": 9})
    assert (bad.status_code, bad.json()["detail"]) == (
        422, ["body: criticality must be 1-4, got 9"])
    missing = client.put("/api/assets/999/context", headers=analyst, json={"owner": "x"})
    assert (missing.status_code, missing.json()["detail"]) == (404, "no asset 999")
    assert client.put(f"/api/assets/{app}/context", headers=viewer, json={}).status_code == 403
