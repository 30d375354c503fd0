"""The groups API: groups and members, schedules, windows, scan-now, SSH targets -- and an
SSH target scanned end to end by the server's worker against a real sshd."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from patchpilot import worker
from patchpilot.clock import aware
from patchpilot.db.tables import assets, audit_log, inventories, jobs
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token
from tests.sshd import SshServer, sshd_problem, start_sshd


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


@pytest.fixture
def admin(engine: Engine) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_api_token(engine, user='root', role=Role.ADMIN)[0]}"}


@pytest.fixture
def analyst(engine: Engine) -> dict[str, str]:
    token = create_api_token(engine, user="ana", role=Role.ANALYST)[0]
    return {"Authorization": f"Bearer {token}"}


def _asset(engine: Engine, name: str, tags: list[str] | None = None) -> int:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        return int(conn.execute(insert(assets).values(
            name=name, first_seen=now, last_seen=now, tags=orjson.dumps(tags or []).decode(),
            attributes="{}").returning(assets.c.id)).scalar_one())


def test_groups_members_and_rules(client: TestClient, engine: Engine,
                                  admin: dict[str, str]) -> None:
    web, db, tagged = _asset(engine, "web"), _asset(engine, "db"), _asset(engine, "x", ["dmz"])
    made = client.post("/api/groups", headers=admin,
                       json={"name": "osaka", "max_concurrent_scans": 2,
                             "rule": {"tags": ["dmz"]}})
    assert made.status_code == 201, made.text
    group = made.json()
    assert (group["name"], group["max_concurrent_scans"], group["rule"]) == (
        "osaka", 2, {"tags": ["dmz"], "attributes": {}})
    gid = group["id"]
    assert client.post("/api/groups", headers=admin, json={"name": "osaka"}).status_code == 409
    added = client.post(f"/api/groups/{gid}/members", headers=admin,
                        json={"asset_ids": [web, db, web]})
    assert added.json() == {"added": 2}
    missing = client.post(f"/api/groups/{gid}/members", headers=admin,
                          json={"asset_ids": [9999]})
    assert missing.status_code == 404 and "9999" in missing.json()["detail"]
    one = client.get(f"/api/groups/{gid}", headers=admin).json()
    assert one["members"] == {"static": [web, db], "all": [web, db, tagged]}
    assert client.delete(f"/api/groups/{gid}/members/{db}", headers=admin).status_code == 204
    assert client.delete(f"/api/groups/{gid}/members/{db}", headers=admin).status_code == 404
    changed = client.patch(f"/api/groups/{gid}", headers=admin,
                           json={"rule": None, "max_concurrent_scans": 3}).json()
    assert (changed["rule"], changed["max_concurrent_scans"]) == (None, 3)
    assert changed["members"] == {"static": [web], "all": [web]}
    listed = client.get("/api/groups", headers=admin).json()
    assert [(g["name"], g["static_members"]) for g in listed] == [("osaka", 1)]


def test_schedules_and_windows(client: TestClient, admin: dict[str, str]) -> None:
    gid = client.post("/api/groups", headers=admin, json={"name": "tokyo"}).json()["id"]
    made = client.post(f"/api/groups/{gid}/schedules", headers=admin,
                       json={"kind": "cron", "expression": "0 2 * * 6", "timezone": "Asia/Tokyo"})
    assert made.status_code == 201, made.text
    schedule = made.json()
    next_run = datetime.fromisoformat(schedule["next_run_at"])
    assert next_run.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%a %H:%M") == "Sat 02:00"
    bad = client.post(f"/api/groups/{gid}/schedules", headers=admin,
                      json={"kind": "cron", "expression": "0 2 * * 6", "timezone": "Tokio"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("timezone:")
    bad = client.post(f"/api/groups/{gid}/schedules", headers=admin,
                      json={"kind": "rrule", "expression": "FREQ=NEVER"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("expression:")
    changed = client.patch(f"/api/schedules/{schedule['id']}", headers=admin,
                           json={"kind": "rrule", "expression": "FREQ=DAILY;BYHOUR=3",
                                 "enabled": False}).json()
    assert (changed["kind"], changed["enabled"], changed["timezone"]) == (
        "rrule", False, "Asia/Tokyo")
    assert len(client.get(f"/api/groups/{gid}/schedules", headers=admin).json()) == 1

    window = client.post(f"/api/groups/{gid}/windows", headers=admin,
                         json={"rrule": "FREQ=WEEKLY;BYDAY=SA;BYHOUR=1", "duration": "4h",
                               "timezone": "Asia/Tokyo", "description": "Saturday night"})
    assert window.status_code == 201, window.text
    assert (window.json()["kind"], window.json()["duration_minutes"]) == ("window", 240)
    blackout = client.post(f"/api/groups/{gid}/windows", headers=admin,
                           json={"kind": "blackout", "starts_at": "2024-12-28T00:00:00+09:00",
                                 "ends_at": "2025-01-04T00:00:00+09:00"})
    assert blackout.status_code == 201, blackout.text
    assert blackout.json()["starts_at"] == "2024-12-27T15:00:00+00:00"
    for body, field in (({"rrule": "FREQ=DAILY"}, "duration"),
                        ({"rrule": "FREQ=DAILY", "duration": "soon"}, "duration"),
                        ({"starts_at": "2024-12-28T00:00:00", "ends_at":
                          "2024-12-29T00:00:00"}, "starts_at")):
        refused = client.post(f"/api/groups/{gid}/windows", headers=admin, json=body)
        assert refused.status_code == 422 and field in refused.json()["detail"]
    assert [w["kind"] for w in client.get(f"/api/groups/{gid}/windows", headers=admin).json()
            ] == ["window", "blackout"]
    assert client.delete(f"/api/windows/{blackout.json()['id']}", headers=admin
                         ).status_code == 204
    assert client.delete(f"/api/schedules/{schedule['id']}", headers=admin).status_code == 204
    group = client.get(f"/api/groups/{gid}", headers=admin).json()
    assert (len(group["schedules"]), len(group["windows"])) == (0, 1)


def test_scan_now_and_its_override_are_audited(client: TestClient, engine: Engine,
                                               admin: dict[str, str],
                                               analyst: dict[str, str]) -> None:
    target = client.post("/api/ssh-targets", headers=admin,
                         json={"target": "root@db-7.example"}).json()
    gid = client.post("/api/groups", headers=admin, json={"name": "g"}).json()["id"]
    client.post(f"/api/groups/{gid}/members", headers=admin,
                json={"asset_ids": [target["asset_id"]]})
    # A window that never opens again: a plain scan-now waits, the override does not.
    client.post(f"/api/groups/{gid}/windows", headers=admin,
                json={"starts_at": "2020-01-01T00:00:00Z", "ends_at": "2020-01-02T00:00:00Z"})
    waiting = client.post(f"/api/groups/{gid}/scan-now", headers=analyst, json={})
    assert waiting.status_code == 202
    assert (waiting.json()["run_after"], waiting.json()["ssh_scan"]) == (None, 0)
    refused = client.post(f"/api/groups/{gid}/scan-now", headers=analyst,
                          json={"override": True})
    assert refused.status_code == 422 and "reason" in refused.json()["detail"]
    forced = client.post(f"/api/groups/{gid}/scan-now", headers=analyst,
                         json={"override": True, "reason": "KEV added CVE-2024-6387"})
    assert forced.status_code == 202 and forced.json()["ssh_scan"] == 1
    assert client.post("/api/groups/999/scan-now", headers=analyst, json={}).status_code == 404
    with engine.connect() as conn:
        [job] = conn.execute(select(jobs)).all()
        entry = conn.execute(select(audit_log).where(
            audit_log.c.action == "group.scan_now.override")).one()
    assert (job.kind, orjson.loads(job.payload)["target"]) == ("ssh_scan", "root@db-7.example")
    assert entry.actor == "ana"
    assert orjson.loads(entry.detail)["reason"] == "KEV added CVE-2024-6387"


def test_ssh_target_of_an_asset(client: TestClient, engine: Engine,
                                admin: dict[str, str]) -> None:
    asset_id = _asset(engine, "legacy")
    answer = client.patch(f"/api/assets/{asset_id}/ssh-target", headers=admin,
                          json={"ssh_target": "scan@legacy.example:2222"})
    assert answer.status_code == 200
    bad = client.patch(f"/api/assets/{asset_id}/ssh-target", headers=admin,
                       json={"ssh_target": "a b c"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("ssh_target:")
    assert client.patch("/api/assets/999/ssh-target", headers=admin,
                        json={"ssh_target": "x"}).status_code == 404
    with engine.connect() as conn:
        assert conn.execute(select(assets.c.ssh_target).where(assets.c.id == asset_id)
                            ).scalar() == "scan@legacy.example:2222"


# --- an SSH target scanned by the server's worker ------------------------------------------

@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A real sshd on a loopback port (skipped without sshd or root, failed under CI)."""
    problem = sshd_problem()
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"cannot start sshd under CI=true: {problem}")
        pytest.skip(problem)
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


def test_ssh_target_is_scanned_by_the_worker(client: TestClient, engine: Engine,
                                             admin: dict[str, str], sshd: SshServer,
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line())
    monkeypatch.setenv("PATCHPILOT_SSH_KNOWN_HOSTS", str(known_hosts))
    monkeypatch.setenv("PATCHPILOT_SSH_IDENTITY", str(sshd.client_key))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    gid = client.post("/api/groups", headers=admin, json={"name": "no-agents"}).json()["id"]
    made = client.post("/api/ssh-targets", headers=admin,
                       json={"target": f"root@127.0.0.1:{sshd.port}", "group_id": gid})
    assert made.status_code == 201
    asset_id = made.json()["asset_id"]
    assert client.post(f"/api/groups/{gid}/scan-now", headers=admin,
                       json={"override": True, "reason": "first scan"}).json()["ssh_scan"] == 1
    job = worker.run_once(engine, "test-worker")
    assert job is not None and job.kind == "ssh_scan"
    with engine.connect() as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job.id)).one()
        stored = conn.execute(select(inventories).where(inventories.c.asset_id == asset_id)
                              ).one()
        match = conn.execute(select(jobs).where(jobs.c.kind == "match")).one()
    assert row.state == "done", row.error
    result = orjson.loads(row.result)
    assert (result["asset_id"], result["inventory_id"], result["match_job_id"]) == (
        asset_id, stored.id, match.id)
    assert (stored.collector, stored.complete) == ("ssh", True)
    assert result["packages"] == stored.packages > 100  # this Debian machine's packages
    assert orjson.loads(match.payload) == {"inventory_id": stored.id}
    assert aware(row.finished_at) is not None


def test_unreachable_ssh_target_fails_the_job_with_its_reason(
        engine: Engine, client: TestClient, admin: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    monkeypatch.setenv("PATCHPILOT_SSH_KNOWN_HOSTS", str(known_hosts))
    monkeypatch.delenv("PATCHPILOT_SSH_IDENTITY", raising=False)
    from tests.sshd import free_port

    gid = client.post("/api/groups", headers=admin, json={"name": "gone"}).json()["id"]
    client.post("/api/ssh-targets", headers=admin,
                json={"target": f"root@127.0.0.1:{free_port()}", "group_id": gid})
    client.post(f"/api/groups/{gid}/scan-now", headers=admin,
                json={"override": True, "reason": "check"})
    job = worker.run_once(engine, "test-worker")
    assert job is not None
    with engine.connect() as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job.id)).one()
    # Retried later (attempt 1 of 3), with the reason kept.
    assert (row.state, row.attempts) == ("queued", 1)
    assert row.error.startswith("SshScanFailed: root@127.0.0.1:") and "unreachable" in row.error
