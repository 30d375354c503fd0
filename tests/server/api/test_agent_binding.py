"""An agent reports only for the asset it is bound to; enrolment spends each use once.

Issue 10, items 3 and 4: a newly enrolled agent whose first inventory says
``hostname: vm`` must not take over the asset ``vm`` another agent reports for (and close
its findings with an empty inventory): it is held for an admin's approval (409).  And 20
concurrent enrolments with a one-use token enrol exactly one agent.  On SQLite and
PostgreSQL, through the real API (TestClient) and the real ingest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update

from patchpilot import worker
from patchpilot.agent.runtime import Agent, AgentConfig
from patchpilot.clock import now_utc
from patchpilot.db.tables import (
    agents,
    assets,
    audit_log,
    enrolment_tokens,
    findings,
    inventories,
)
from patchpilot.findings.ingest import AssetClaimedError, ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package
from patchpilot.server.api.agents import EnrolRequest, enrol
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token, create_enrolment_token

FEEDS = {"osv/PYSEC-2023-117.yaml": "osv/pypi/pygments/PYSEC-2023-117.yaml"}
OLD_PYGMENTS = Package(Ecosystem("PyPI"), "Pygments", "2.14.0")  # CVE-2022-40896


def _inventory(hostname: str, *packages: Package, machine_id: str | None = None) -> bytes:
    return Inventory.from_packages(
        list(packages), complete=True,
        asset=AssetIdentity(hostname=hostname, machine_id=machine_id),
        collector=Collector(name="agent")).to_json()


@pytest.fixture
def client(engine: Engine, feed_dir) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    with TestClient(create_app(engine)) as c:
        yield c


@pytest.fixture
def admin(engine: Engine) -> dict[str, str]:
    token, _ = create_api_token(engine, user="admin-user", role=Role.ADMIN)
    return {"Authorization": f"Bearer {token}"}


def _enrol(client: TestClient, token: str, name: str) -> tuple[int, dict[str, str]]:
    answer = client.post("/api/agents/enrol", json={"token": token, "name": name})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return body["agent_id"], {"Authorization": f"Bearer {body['credential']}"}


def _upload(client: TestClient, auth: dict[str, str], body: bytes, key: str | None = None
            ) -> object:
    headers = {**auth, "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    return client.post("/api/inventories", content=body, headers=headers)


def _run_jobs(engine: Engine) -> int:
    ran = 0
    while worker.run_once(engine, "test-worker"):
        ran += 1
    return ran


def _findings(engine: Engine) -> list[tuple[int, str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(
            findings.c.asset_id, findings.c.vuln_id, findings.c.state).order_by(findings.c.id))]


def _agents(engine: Engine) -> list[tuple[int, int | None, int | None, bool, bool]]:
    """(id, asset_id, pending_asset_id, pending_since set, revoked) per agent."""
    with engine.connect() as conn:
        return [(r.id, r.asset_id, r.pending_asset_id, r.pending_since is not None,
                 r.revoked_at is not None)
                for r in conn.execute(select(agents).order_by(agents.c.id))]


def _audit(engine: Engine, action: str) -> list[tuple[str, str, dict[str, object]]]:
    with engine.connect() as conn:
        return [(r.actor, r.target, orjson.loads(r.detail or "{}")) for r in conn.execute(
            select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id))]


def _inventory_count(engine: Engine, asset_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inventories).where(
            inventories.c.asset_id == asset_id)).scalar_one())


def test_a_new_agent_cannot_take_over_an_asset(client: TestClient, engine: Engine,
                                               admin: dict[str, str]) -> None:
    token = create_enrolment_token(engine, created_by="test", uses=3)
    first, first_auth = _enrol(client, token, "vm")
    answer = _upload(client, first_auth, _inventory("vm", OLD_PYGMENTS))
    assert answer.status_code == 202
    vm = answer.json()["asset_id"]
    assert _run_jobs(engine) == 1
    assert _findings(engine) == [(vm, "CVE-2022-40896", "open")]

    # The probe: a new agent says it is "vm" and sends an empty, complete inventory.
    second, second_auth = _enrol(client, token, "intruder")
    answer = _upload(client, second_auth, _inventory("vm"), key="k1")
    assert answer.status_code == 409
    assert answer.json()["detail"] == (
        f"asset 'vm' (id {vm}) is reported by agent {first}; agent {second} is held until "
        f"an admin approves it: `patchpilot agents approve {second}` or POST "
        f"/api/agents/{second}/approve (the dashboard's overview lists held agents)")
    assert _upload(client, second_auth, _inventory("vm"), key="k1").status_code == 409
    assert _run_jobs(engine) == 0
    assert _findings(engine) == [(vm, "CVE-2022-40896", "open")]  # nothing closed
    assert _inventory_count(engine, vm) == 1
    assert _agents(engine) == [(first, vm, None, False, False),
                               (second, None, vm, True, False)]
    # Held once, audited once (the agent's retries do not flood the log).
    assert _audit(engine, "agent.hold") == [
        (f"agent:{second}", str(second),
         {"asset_id": vm, "asset": "vm", "owner_agent_id": first})]
    held = client.get("/api/agents", params={"pending": "true"}, headers=admin).json()
    assert [(a["id"], a["name"], a["pending_asset_id"], a["pending_asset"], a["asset_id"])
            for a in held] == [(second, "intruder", vm, "vm", None)]
    listed = client.get("/api/agents", headers=admin).json()
    assert [(a["id"], a["asset_id"], a["asset"], a["pending_asset_id"]) for a in listed] == [
        (first, vm, "vm", None), (second, None, None, vm)]

    # The bound agent reports for its own asset whatever hostname it names.
    answer = _upload(client, first_auth, _inventory("someone-else", OLD_PYGMENTS))
    assert (answer.status_code, answer.json()["asset_id"]) == (202, vm)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(assets)).scalar_one() == 1


def test_approve_moves_the_asset_and_reject_revokes(client: TestClient, engine: Engine,
                                                    admin: dict[str, str]) -> None:
    token = create_enrolment_token(engine, created_by="test", uses=3)
    first, first_auth = _enrol(client, token, "old-vm")
    vm = _upload(client, first_auth, _inventory("vm", OLD_PYGMENTS)).json()["asset_id"]
    second, second_auth = _enrol(client, token, "new-vm")
    assert _upload(client, second_auth, _inventory("vm", OLD_PYGMENTS),
                   key="k2").status_code == 409
    # Nothing to decide for an agent that is not held; no such agent.
    answer = client.post(f"/api/agents/{first}/approve", headers=admin)
    assert (answer.status_code, answer.json()["detail"]) == (
        409, f"agent {first}: is not waiting for approval")
    answer = client.post("/api/agents/999/approve", headers=admin)
    assert (answer.status_code, answer.json()["detail"]) == (
        404, "agent 999: no such active agent")

    answer = client.post(f"/api/agents/{second}/approve", headers=admin)
    assert (answer.status_code, answer.json()) == (
        200, {"agent_id": second, "asset_id": vm, "approved": True, "revoked": False})
    assert _agents(engine) == [(first, None, None, False, False),
                               (second, vm, None, False, False)]
    assert _audit(engine, "agent.approve") == [
        ("admin-user", str(second), {"asset_id": vm, "unbound_agents": [first]})]
    # The held upload, retried with its key, now goes to the asset.
    answer = _upload(client, second_auth, _inventory("vm", OLD_PYGMENTS), key="k2")
    assert (answer.status_code, answer.json()["asset_id"]) == (202, vm)
    assert _inventory_count(engine, vm) == 2
    # The unbound agent is held in turn; rejected with revoke, its credential is dead.
    assert _upload(client, first_auth, _inventory("vm", OLD_PYGMENTS)).status_code == 409
    assert _agents(engine)[0] == (first, None, vm, True, False)
    answer = client.post(f"/api/agents/{first}/reject", headers=admin, json={"revoke": True})
    assert (answer.status_code, answer.json()) == (
        200, {"agent_id": first, "asset_id": vm, "approved": False, "revoked": True})
    assert _agents(engine) == [(first, None, None, False, True),
                               (second, vm, None, False, False)]
    assert _audit(engine, "agent.reject") == [
        ("admin-user", str(first), {"asset_id": vm, "revoked": True})]
    assert _upload(client, first_auth, _inventory("vm", OLD_PYGMENTS)).status_code == 401
    assert _inventory_count(engine, vm) == 2


def test_a_revoked_owner_does_not_block_a_new_agent(client: TestClient, engine: Engine,
                                                     admin: dict[str, str]) -> None:
    token = create_enrolment_token(engine, created_by="test", uses=2)
    first, first_auth = _enrol(client, token, "vm")
    vm = _upload(client, first_auth, _inventory("vm", OLD_PYGMENTS)).json()["asset_id"]
    assert client.delete(f"/api/agents/{first}", headers=admin).status_code == 204
    second, second_auth = _enrol(client, token, "vm-reinstalled")
    answer = _upload(client, second_auth, _inventory("vm", OLD_PYGMENTS))
    assert (answer.status_code, answer.json()["asset_id"]) == (202, vm)
    assert [a[:3] for a in _agents(engine)] == [(first, vm, None), (second, vm, None)]


def test_two_new_agents_claiming_one_asset_at_once(engine: Engine) -> None:
    """Only one of two unbound agents racing for an existing asset gets it."""
    seeded = ingest_inventory(engine, Inventory.from_packages(
        [OLD_PYGMENTS], asset=AssetIdentity(hostname="vm"), collector=Collector(name="ssh")))
    token = create_enrolment_token(engine, created_by="test", uses=2)
    ids = [enrol(EnrolRequest(token=token, name=f"a{i}"), engine).agent_id for i in (1, 2)]
    inv = Inventory.from_json(_inventory("vm", OLD_PYGMENTS), "test")
    barrier = threading.Barrier(2)
    outcome: dict[int, str] = {}

    def claim(agent_id: int) -> None:
        barrier.wait()
        try:
            ingest_inventory(engine, inv, agent_id=agent_id)
            outcome[agent_id] = "bound"
        except AssetClaimedError:
            outcome[agent_id] = "held"

    threads = [threading.Thread(target=claim, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcome.values()) == ["bound", "held"]
    winner = next(i for i, o in outcome.items() if o == "bound")
    loser = next(i for i, o in outcome.items() if o == "held")
    assert sorted(_agents(engine)) == sorted([
        (winner, seeded.asset_id, None, False, False),
        (loser, None, seeded.asset_id, True, False)])
    assert _inventory_count(engine, seeded.asset_id) == 2


@pytest.mark.parametrize("uses", [1, 3])
def test_concurrent_enrolments_spend_each_use_once(engine: Engine, uses: int) -> None:
    token = create_enrolment_token(engine, created_by="test", uses=uses)
    barrier = threading.Barrier(20)
    results: list[int] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        barrier.wait()
        try:
            enrol(EnrolRequest(token=token, name=f"agent-{i}"), engine)
            code = 201
        except HTTPException as exc:
            code = exc.status_code
        with lock:
            results.append(code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == [201] * uses + [401] * (20 - uses)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(agents)).scalar_one() == uses
        assert conn.execute(select(enrolment_tokens.c.uses_left)).scalar_one() == 0


def test_an_expired_or_revoked_token_enrols_no_one(engine: Engine) -> None:
    expired = create_enrolment_token(engine, created_by="test", uses=5, ttl_hours=0)
    revoked = create_enrolment_token(engine, created_by="test")
    with engine.begin() as conn:
        conn.execute(update(enrolment_tokens).where(enrolment_tokens.c.uses_left.is_(None))
                     .values(revoked_at=now_utc()))
    for token in (expired, revoked, "ppe_unknown-token"):
        with pytest.raises(HTTPException) as refused:
            enrol(EnrolRequest(token=token, name="x"), engine)
        assert refused.value.status_code == 401
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(agents)).scalar_one() == 0
        assert sorted(conn.execute(select(enrolment_tokens.c.uses_left)).scalars(),
                      key=str) == [5, None]


def test_a_held_agent_keeps_its_inventory_spooled(client: TestClient, engine: Engine,
                                                  admin: dict[str, str], tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The agent runtime on a 409: the upload stays spooled, one log line, no retry before
    ``hold_retry``; once approved, it goes."""
    token = create_enrolment_token(engine, created_by="test", uses=2)
    _, first_auth = _enrol(client, token, "vm")
    vm = _upload(client, first_auth, _inventory("vm", OLD_PYGMENTS)).json()["asset_id"]
    config = AgentConfig(server="http://testserver", state_dir=tmp_path / "agent",
                         enrol_token=token, name="intruder", hold_retry=3600)
    agent = Agent(config, client=client)
    agent.ensure_enrolled()
    key = agent.spool.put(_inventory("vm", OLD_PYGMENTS))
    with caplog.at_level(logging.INFO, logger="patchpilot.agent.runtime"):
        assert agent.flush() == 0
        assert agent.flush() == 0  # held: not retried before hold_retry
    held = [r.getMessage() for r in caplog.records if "held by the server" in r.getMessage()]
    assert len(held) == 1 and f"asset 'vm' (id {vm}) is reported by agent" in held[0]
    assert [k for k, _ in agent.spool.pending()] == [key]
    assert _inventory_count(engine, vm) == 1
    second = _agents(engine)[1][0]
    assert client.post(f"/api/agents/{second}/approve", headers=admin).status_code == 200
    agent.held_until = 0.0  # hold_retry has passed
    assert agent.flush() == 1
    assert (agent.spool.pending(), agent.held_until) == ([], None)
    assert _inventory_count(engine, vm) == 2
