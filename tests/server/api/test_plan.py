"""GET /api/plan (JSON, CSV, Ansible), PUT /api/priority-config, GET /api/sla, findings."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from patchpilot.scoring.apply import reprioritise_engine
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token
from tests.builders.plan_estate import FEEDS, OLD_FIREFOX, OLD_KERNEL, context, scan

__all__ = ["FEEDS"]


@pytest.fixture
def client(engine: Engine, feed_dir) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from patchpilot.knowledge.update import update_from

    update_from(engine, [feed_dir(FEEDS)])
    dmz = scan(engine, "plant1-web-01", OLD_FIREFOX, OLD_KERNEL)
    dev = scan(engine, "plant2-dev-07", OLD_FIREFOX)
    context(engine, dmz, 1, "internet-facing", "production")
    context(engine, dev, 4, "isolated", "development")
    reprioritise_engine(engine)  # what the CMDB import's prioritise job does
    with TestClient(create_app(engine)) as c:
        yield c


def _auth(engine: Engine, role: Role) -> dict[str, str]:
    token = create_api_token(engine, user=f"{role.value}-u", role=role)[0]
    return {"Authorization": f"Bearer {token}"}


def test_plan_json_csv_ansible(client: TestClient, engine: Engine) -> None:
    viewer = _auth(engine, Role.VIEWER)
    plan = client.get("/api/plan", headers=viewer).json()
    assert sorted(i["package"] for i in plan["items"]) == ["firefox", "kernel"]
    assert plan["items"][0]["risk"] >= plan["items"][1]["risk"]
    firefox = next(i for i in plan["items"] if i["package"] == "firefox")
    assert firefox["command"] == "dnf upgrade firefox" and firefox["pending"] == 2
    assert firefox["summary"].startswith("firefox → 91.7.0-3.el8_5.alma fixes")
    rows = list(csv.DictReader(io.StringIO(client.get("/api/plan.csv", headers=viewer).text)))
    assert sorted((r["package"], r["host"]) for r in rows) == [
        ("firefox", "plant1-web-01"), ("firefox", "plant2-dev-07"), ("kernel", "plant1-web-01")]
    archive = zipfile.ZipFile(io.BytesIO(client.get("/api/plan/ansible", headers=viewer)
                                         .content))
    assert sorted(archive.namelist()) == ["inventory.ini", "inventory.yml", "playbook.yml"]
    plays = yaml.safe_load(archive.read("playbook.yml"))
    assert [p["hosts"] for p in plays] == ["pp_item_1", "pp_item_2"]
    files = client.get("/api/plan/ansible", headers=viewer, params={"format": "json"}).json()
    assert set(files["files"]) == {"inventory.ini", "inventory.yml", "playbook.yml"}


def test_findings_carry_priority_and_reason(client: TestClient, engine: Engine) -> None:
    viewer = _auth(engine, Role.VIEWER)
    items = client.get("/api/findings", headers=viewer,
                       params={"vuln": "CVE-2022-26485"}).json()["items"]
    assert [(i["asset"], i["priority"]) for i in items] == [("plant1-web-01", "P1"),
                                                            ("plant2-dev-07", "P2")]
    assert items[0]["priority_reason"].startswith("P1: ")
    assert "; known exploited; internet-facing" in items[0]["priority_reason"]
    # The same reason as a code with its values, for a client that words it itself.
    code = items[0]["priority_reason_code"]
    assert (code["code"], code["priority"], code["tier"], code["adjustments"]) == (
        "matrix", 1, 1, [{"code": "kev"}, {"code": "internet_facing"}])
    detail = client.get(f"/api/findings/{items[0]['id']}", headers=viewer).json()
    assert (detail["priority_reason"], detail["priority_reason_code"]) == (
        items[0]["priority_reason"], code)
    everything = client.get("/api/findings", headers=viewer, params={"limit": 1000}).json()
    order = [int(i["priority"][1]) for i in everything["items"]]
    assert order == sorted(order)


def test_changing_the_matrix_reprioritises(client: TestClient, engine: Engine) -> None:
    admin = _auth(engine, Role.ADMIN)
    before = client.get("/api/priority-config", headers=admin).json()
    assert before["config"]["matrix"]["Critical"] == [1, 1, 2, 3]
    body = "matrix:\n  Critical: [1, 1, 1, 1]\n  High: [1, 1, 1, 1]\n  Medium: [1, 1, 1, 2]\n"
    answer = client.put("/api/priority-config", headers={**admin,
                                                         "Content-Type": "application/yaml"},
                        content=body)
    assert answer.status_code == 200 and answer.json()["findings_changed"] > 0
    after = client.get("/api/priority-config", headers=admin).json()
    assert after["config"]["matrix"]["Critical"] == [1, 1, 1, 1]
    bad = client.put("/api/priority-config", headers={**admin,
                                                      "Content-Type": "application/yaml"},
                     content="matrix:\n  Critical: [4, 1, 1, 1]\n")
    assert bad.status_code == 422 and "matrix.Critical" in bad.json()["detail"]
    sla = client.get("/api/sla", headers=admin, params={"by": "service"}).json()
    assert sla["by"] == "service"
    # The two KEV firefox CVEs on both hosts are overdue at once: CISA's due date (2022-03-21)
    # is earlier than any SLA counted from today, and the earlier date wins.
    assert [(r["key"], r["fixed"], r["overdue"]) for r in sla["rows"]] == [("web shop", 0, 4)]


def test_overview_and_findings_filters_agree(client: TestClient, engine: Engine) -> None:
    """The overview's JSON and the list's filtered totals are the same figures."""
    from sqlalchemy import func, select

    from patchpilot.db.tables import finding_priority, findings

    viewer = _auth(engine, Role.VIEWER)
    o = client.get("/api/overview", headers=viewer).json()
    with engine.connect() as conn:
        by_priority = {f"P{p}": n for p, n in conn.execute(
            select(finding_priority.c.priority, func.count()).join(
                findings, findings.c.id == finding_priority.c.finding_id)
            .where(findings.c.state == "open").group_by(finding_priority.c.priority))}
        kev = conn.execute(select(func.count()).select_from(findings).where(
            findings.c.state == "open", findings.c.known_exploited.is_(True))).scalar_one()
    assert o["by_priority"] == by_priority and sum(by_priority.values()) == o["open_total"]
    assert o["known_exploited"] == kev > 0
    assert [a["name"] for a in o["top_assets"]] == ["plant1-web-01", "plant2-dev-07"]
    assert o["assets_total"] == 2
    # Two AlmaLinux 8 errata are all the knowledge base holds for the estate's release:
    # under the threshold of ten, so its "no findings" elsewhere would not mean "clean".
    assert o["coverage"] == [{"ecosystem": "AlmaLinux:8", "packages": 3, "advisories": 2,
                              "assets": 2, "covered": False}]

    def total(**params: object) -> tuple[int, bool]:
        answer = client.get("/api/findings", headers=viewer, params=params).json()
        assert len(answer["items"]) == min(answer["total"], 100)
        return answer["total"], answer["total_exact"]

    assert total() == (o["open_total"], True)
    for key, n in by_priority.items():
        assert total(priority=int(key[1])) == (n, True)
    assert total(kev=True) == (kev, True)
    assert total(q="firefox") == (total(package="firefox")[0], True)
    assert total(q="FIREFOX") == total(q="firefox")  # typed in capitals: tried in lower case
    assert total(q="refox") == (0, True)  # a prefix, not any substring
    assert total(q="CVE-2022-26485") == (2, True)
    # One asset through the list and through the overview of a group holding it.
    dmz = client.get("/api/findings", headers=viewer,
                     params={"vuln": "CVE-2022-26485"}).json()["items"][0]["asset_id"]
    admin = _auth(engine, Role.ADMIN)
    group = client.post("/api/groups", headers=admin, json={"name": "dmz"}).json()["id"]
    assert client.post(f"/api/groups/{group}/members", headers=admin,
                       json={"asset_ids": [dmz]}).status_code in (200, 201, 204)
    scoped = client.get("/api/overview", headers=viewer, params={"group": "dmz"}).json()
    assert scoped["assets_total"] == 1
    assert scoped["coverage"] == [{"ecosystem": "AlmaLinux:8", "packages": 2,
                                   "advisories": 2, "assets": 1, "covered": False}]
    assert client.get(f"/api/assets/{dmz}", headers=viewer).json()["coverage"] == [
        {"ecosystem": "AlmaLinux:8", "packages": 2, "advisories": 2, "assets": 1,
         "covered": False}]
    assert total(group="dmz") == (scoped["open_total"], True) == total(asset_id=dmz)
    assert client.get("/api/overview", headers=viewer, params={"group": "nope"}
                      ).status_code == 404
    assert client.get("/api/findings", headers=viewer, params={"sort": "nope"}
                      ).status_code == 422


def test_plan_pages_and_item_hosts(client: TestClient, engine: Engine) -> None:
    viewer = _auth(engine, Role.VIEWER)
    first = client.get("/api/plan", headers=viewer, params={"limit": 1}).json()
    assert (first["total"], first["stale"], first["next_cursor"]) == (2, False, "1")
    assert first["generated_at"].endswith("+00:00") and len(first["items"]) == 1
    top = first["items"][0]
    second = client.get("/api/plan", headers=viewer,
                        params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert second["next_cursor"] is None
    assert {top["package"], second["items"][0]["package"]} == {"firefox", "kernel"}
    firefox = next(i for i in (top, second["items"][0]) if i["package"] == "firefox")
    # The DMZ server's firefox findings are P1, the dev box's P2; both any time.
    assert firefox["hosts_by_priority"] == {"P1": 1, "P2": 1}
    assert firefox["hosts_by_window"] == [{"window": None, "hosts": 2}]
    assert [h["name"] for h in firefox["first_hosts"]] == ["plant1-web-01", "plant2-dev-07"]
    hosts = client.get(f"/api/plan/items/{firefox['key']}/hosts", headers=viewer,
                       params={"limit": 1}).json()
    assert (hosts["total"], hosts["next_cursor"]) == (2, "1")
    assert [h["name"] for h in hosts["hosts"]] == ["plant1-web-01"]
    assert hosts["hosts"][0]["vulns"] == firefox["vulns"]
    rest = client.get(f"/api/plan/items/{firefox['key']}/hosts", headers=viewer,
                      params={"limit": 1, "cursor": "1"}).json()
    assert [h["name"] for h in rest["hosts"]] == ["plant2-dev-07"] and rest["next_cursor"] is None
    # Filters: a reboot is needed by the kernel only; no host has a P1 kernel finding
    # outside the DMZ server; an unknown item or group is told apart.
    kernel = client.get("/api/plan", headers=viewer, params={"reboot": "true"}).json()
    assert [i["package"] for i in kernel["items"]] == ["kernel"]
    assert client.get("/api/plan/items/" + "0" * 20 + "/hosts",
                      headers=viewer).status_code == 404
    assert client.get("/api/plan", headers=viewer,
                      params={"group": "nowhere"}).status_code == 404
    assert client.get("/api/plan", headers=viewer, params={"cursor": "x"}).status_code == 422
