"""The playbooks API on SQLite and PostgreSQL: store, version, show, enable and disable
(audited); validation and its 422 naming the field and a condition's position; the dry run
over real stored events (a Nessus report imported, its server in the CMDB), capped and
writing nothing; the outbox's dead letters -- made by real deliveries refused as internal
targets -- listed, retried and discarded (audited); who may do what."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.deliver import MAX_ATTEMPTS, backoff, deliver_due
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.clock import now_utc
from patchpilot.db.tables import audit_log, outbox, playbook_versions, playbooks
from patchpilot.reports.mail import SmtpSettings
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token
from tests.builders.playbook_estate import CVE_2007, build_estate

TIER1 = """\
name: high-on-tier1
description: High findings on tier-1 web servers.
trigger: {events: [new, reopened]}
condition: >-
  finding.severity == "High" && asset.criticality == 1 && "dmz" in asset.groups
  && finding.vuln_id.startsWith("CVE-2007-")
actions:
  - type: email
    with: {to: ["{{ asset.owner }}"], lang: ja}
  - type: webhook
    with: {url: "https://soc.example.com/h", secret_env: SOC_HOOK_KEY}
"""
# A condition that does not compile: a second ``==`` at column 21.
BROKEN = TIER1.replace('finding.severity == "High"', 'finding.severity == == "High"')
# (cel-python shows the expression's head, up to the error and a little past it).
BROKEN_MESSAGE = ('condition: does not compile at line 1, column 21:\n'
                  'finding.severity == == "High" && asset.criticality == 1 && "\n'
                  + " " * 20 + "^")
# Two of the report's findings, posted to a loopback address nobody allowed: refused.
LOOPBACK_HOOK = """\
name: loopback-hook
trigger: {events: [new]}
condition: finding.vuln_id in ["CVE-2007-0448", "CVE-2007-5424"]
actions:
  - type: webhook
    with: {url: "http://127.0.0.1:9/hook", secret_env: PP_TEST_HOOK_KEY}
"""
REFUSED = ("webhook: 127.0.0.1 resolves to 127.0.0.1, an internal address; refused (allow "
           "its range with PATCHPILOT_WEBHOOK_ALLOW_NETWORKS)")


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


@pytest.fixture
def auth(engine: Engine) -> dict[str, dict[str, str]]:
    """A bearer header per role (users ``<role>-u``)."""
    return {role.value: {"Authorization": "Bearer " + create_api_token(
        engine, user=f"{role.value}-u", role=role)[0]} for role in Role}


def _audit(engine: Engine, prefix: str) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.target)
            .where(audit_log.c.action.startswith(prefix)).order_by(audit_log.c.id))]


def _counts(**some: int) -> dict[str, int]:
    return {"queued": 0, "sent": 0, "failed": 0, "dead": 0, "discarded": 0, **some}


SUMMARY = {"name": "high-on-tier1", "description": "High findings on tier-1 web servers.",
           "enabled": True, "events": ["new", "reopened"], "schedule": None,
           "condition": ('finding.severity == "High" && asset.criticality == 1 && "dmz" in '
                         'asset.groups && finding.vuln_id.startsWith("CVE-2007-")'),
           "actions": ["email", "webhook"]}


def test_store_version_show_and_list(client: TestClient, engine: Engine,
                                     auth: dict[str, dict[str, str]]) -> None:
    admin = auth["admin"]
    made = client.put("/api/playbooks/high-on-tier1", headers=admin, json={"document": TIER1})
    assert made.status_code == 201
    body = made.json()
    assert body == {**SUMMARY, "id": 1, "version": 1, "updated_by": "admin-u",
                    "updated_at": body["updated_at"], "outbox": _counts()}
    # The same document again: nothing changes.
    same = client.put("/api/playbooks/high-on-tier1", headers=admin, json={"document": TIER1})
    assert (same.status_code, same.json()["version"]) == (200, 1)
    # The YAML itself as the body (curl --data-binary @file -H 'Content-Type: text/yaml').
    second = TIER1.replace("lang: ja", "lang: en")
    changed = client.put("/api/playbooks/high-on-tier1",
                         headers={**admin, "Content-Type": "text/yaml"},
                         content=second.encode())
    assert (changed.status_code, changed.json()["version"]) == (200, 2)
    listed = client.get("/api/playbooks", headers=auth["viewer"])
    assert listed.status_code == 200
    assert [(p["name"], p["version"], p["enabled"], p["actions"], p["outbox"])
            for p in listed.json()] == [("high-on-tier1", 2, True, ["email", "webhook"],
                                         _counts())]
    shown = client.get("/api/playbooks/high-on-tier1", headers=auth["viewer"]).json()
    assert shown["document"] == second
    assert [(v["version"], v["created_by"]) for v in shown["versions"]] == [
        (2, "admin-u"), (1, "admin-u")]
    first = client.get("/api/playbooks/high-on-tier1/versions/1", headers=auth["viewer"])
    assert (first.json()["name"], first.json()["version"], first.json()["document"]) == (
        "high-on-tier1", 1, TIER1)
    missing = client.get("/api/playbooks/high-on-tier1/versions/3", headers=auth["viewer"])
    assert (missing.status_code, missing.json()) == (404, {
        "detail": "version: playbook 'high-on-tier1' has no version 3 (its latest is 2)"})
    unknown = client.get("/api/playbooks/nope", headers=auth["viewer"])
    assert (unknown.status_code, unknown.json()) == (
        404, {"detail": "name: no playbook named 'nope'"})
    assert _audit(engine, "playbook.") == [
        ("admin-u", "playbook.add", "playbook:high-on-tier1"),
        ("admin-u", "playbook.update", "playbook:high-on-tier1")]


def test_enable_and_disable(client: TestClient, engine: Engine,
                            auth: dict[str, dict[str, str]]) -> None:
    assert client.put("/api/playbooks/high-on-tier1", headers=auth["admin"],
                      json={"document": TIER1}).status_code == 201
    off = client.post("/api/playbooks/high-on-tier1/disable", headers=auth["admin"])
    assert (off.status_code, off.json()["enabled"], off.json()["version"]) == (200, False, 1)
    on = client.post("/api/playbooks/high-on-tier1/enable", headers=auth["admin"])
    assert (on.status_code, on.json()["enabled"]) == (200, True)
    for role in ("viewer", "analyst"):
        refused = client.post("/api/playbooks/high-on-tier1/disable", headers=auth[role])
        assert (refused.status_code, refused.json()) == (
            403, {"detail": f"requires the admin role; you are {role}"})
    assert client.post("/api/playbooks/nope/enable",
                       headers=auth["admin"]).status_code == 404
    assert _audit(engine, "playbook.") == [
        ("admin-u", "playbook.add", "playbook:high-on-tier1"),
        ("admin-u", "playbook.disable", "playbook:high-on-tier1"),
        ("admin-u", "playbook.enable", "playbook:high-on-tier1")]


def test_refusals_name_the_field_and_store_nothing(client: TestClient, engine: Engine,
                                                   auth: dict[str, dict[str, str]]) -> None:
    admin = auth["admin"]
    answer = client.put("/api/playbooks/high-on-tier1", headers=admin,
                        json={"document": BROKEN})
    assert (answer.status_code, answer.json()) == (
        422, {"detail": BROKEN_MESSAGE, "field": "condition"})
    answer = client.put("/api/playbooks/other-name", headers=admin, json={"document": TIER1})
    assert (answer.status_code, answer.json()) == (422, {
        "detail": "name: the document is named 'high-on-tier1', not 'other-name' as the "
                  "path says", "field": "name"})
    answer = client.put("/api/playbooks/x", headers={**admin, "Content-Type": "text/yaml"},
                        content=b"name: [x\n")
    assert answer.status_code == 422
    assert answer.json()["field"] is None
    assert answer.json()["detail"].startswith("document:2: not valid YAML: ")
    answer = client.put("/api/playbooks/high-on-tier1", headers=admin,
                        json={"document": TIER1.replace("type: webhook", "type: fax")})
    assert (answer.status_code, answer.json()["field"]) == (422, "actions[1].type")
    assert answer.json()["detail"].startswith("actions[1].type: unknown action 'fax' (one of ")
    answer = client.put("/api/playbooks/high-on-tier1",
                        headers={**admin, "Content-Type": "application/xml"}, content=b"<x/>")
    assert answer.status_code == 415
    answer = client.put("/api/playbooks/high-on-tier1", headers=admin, json={"doc": TIER1})
    assert (answer.status_code, answer.json()) == (422, {"detail": "document: Field required"})
    # Roles: viewers and analysts do not store.
    for role in ("viewer", "analyst"):
        refused = client.put("/api/playbooks/high-on-tier1", headers=auth[role],
                             json={"document": TIER1})
        assert refused.status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(playbooks)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(playbook_versions)
                            ).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar_one() == 0


def test_validate(client: TestClient, engine: Engine, auth: dict[str, dict[str, str]]) -> None:
    ok = client.post("/api/playbooks/validate", headers=auth["analyst"],
                     json={"document": TIER1})
    assert (ok.status_code, ok.json()) == (200, {"valid": True, "summary": SUMMARY})
    bad = client.post("/api/playbooks/validate", headers=auth["analyst"],
                      json={"document": BROKEN})
    assert (bad.status_code, bad.json()) == (
        422, {"detail": BROKEN_MESSAGE, "field": "condition"})
    misspelt = client.post("/api/playbooks/validate", headers=auth["admin"], json={
        "document": TIER1.replace("asset.criticality", "asset.critical")})
    assert (misspelt.status_code, misspelt.json()["field"]) == (422, "condition")
    assert misspelt.json()["detail"] == (
        "condition: asset has no field 'critical' (line 1, column 37; its fields: id, name, "
        "criticality, exposure, environment, owner, groups, tags)")
    assert client.post("/api/playbooks/validate", headers=auth["viewer"],
                       json={"document": TIER1}).status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(playbooks)).scalar_one() == 0


def test_preview_over_stored_events(client: TestClient, engine: Engine, shared_data: Path,
                                    auth: dict[str, dict[str, str]]) -> None:
    build_estate(engine, shared_data)  # 16 events, no playbook
    with engine.connect() as conn:
        audited = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    answer = client.post("/api/playbooks/preview", headers=auth["analyst"],
                         json={"document": TIER1, "since": "30d"})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["total"], body["events"], body["shown"], body["capped"]) == (12, 6, 12, False)
    assert [{k: v for k, v in item.items() if k != "at"} for item in body["items"]] == [
        {"event_id": event, "kind": "new", "subject": f"finding:{event}",
         "action_index": index, "action": kind, "asset": "testphp",
         "vuln_id": CVE_2007[event - 10], "severity": "High"}
        for event in range(10, 16) for index, kind in ((0, "email"), (1, "webhook"))]
    # From an ISO moment after the events: nothing.
    later = (now_utc() + timedelta(minutes=5)).isoformat()
    none = client.post("/api/playbooks/preview", headers=auth["analyst"],
                       json={"document": TIER1, "since": later}).json()
    assert (none["total"], none["events"], none["items"]) == (0, 0, [])
    # Fourteen actions on every new finding: 210, the first 200 answered.
    many = ("name: many\ntrigger: {events: [new]}\nactions:\n"
            + '  - type: email\n    with: {to: ["soc@plant.example"]}\n' * 14)
    capped = client.post("/api/playbooks/preview", headers=auth["analyst"],
                         json={"document": many}).json()
    assert (capped["total"], capped["events"], capped["shown"], capped["capped"],
            len(capped["items"])) == (210, 15, 200, True, 200)
    assert (capped["items"][-1]["event_id"], capped["items"][-1]["action_index"]) == (15, 3)
    bad = client.post("/api/playbooks/preview", headers=auth["analyst"],
                      json={"document": TIER1, "since": "last month"})
    assert (bad.status_code, bad.json()) == (422, {
        "detail": "since: 'last month' is neither a duration (30d, 12h) nor an ISO 8601 "
                  "moment (2026-01-31 or 2026-01-31T08:00:00+09:00)", "field": "since"})
    broken = client.post("/api/playbooks/preview", headers=auth["analyst"],
                         json={"document": BROKEN})
    assert (broken.status_code, broken.json()["field"]) == (422, "condition")
    assert client.post("/api/playbooks/preview", headers=auth["viewer"],
                       json={"document": TIER1}).status_code == 403
    # A dry run stores and sends nothing.
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(playbooks)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(audit_log)
                            ).scalar_one() == audited


def _dead_letters(engine: Engine, shared_data: Path, monkeypatch: pytest.MonkeyPatch
                  ) -> Engine:
    """Two webhook rows delivered until dead (an internal target nobody allowed)."""
    monkeypatch.setenv("PP_TEST_HOOK_KEY", "k")
    estate = build_estate(engine, shared_data, LOOPBACK_HOOK)
    assert evaluate_events(estate).queued == 2
    settings = DeliverySettings(SmtpSettings())
    now = now_utc()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        done = deliver_due(estate, settings, now)
        assert (done.failed + done.dead) == 2
        now += backoff(attempt)
    return estate


def test_dead_letters_retry_and_discard(client: TestClient, engine: Engine,
                                        shared_data: Path, monkeypatch: pytest.MonkeyPatch,
                                        auth: dict[str, dict[str, str]]) -> None:
    _dead_letters(engine, shared_data, monkeypatch)
    viewer, admin = auth["viewer"], auth["admin"]
    dead = client.get("/api/outbox", headers=viewer, params={"state": "dead"})
    assert dead.status_code == 200
    body = dead.json()
    assert (body["next"], body["counts"]) == (2, _counts(dead=2))
    assert [(r["id"], r["playbook"], r["event_id"], r["action_type"], r["subject"],
             r["state"], r["attempts"], r["target"], r["last_error"], r["outcome"])
            for r in body["rows"]] == [
        (1, "loopback-hook", 10, "webhook", "finding:10", "dead", MAX_ATTEMPTS,
         "http://127.0.0.1:9", REFUSED, None),
        (2, "loopback-hook", 15, "webhook", "finding:15", "dead", MAX_ATTEMPTS,
         "http://127.0.0.1:9", REFUSED, None)]
    # The payload is the event's context; no setting of the action (nor a secret) shows.
    assert set(body["rows"][0]["payload"]) == {"playbook", "event", "finding", "asset"}
    assert "PP_TEST_HOOK_KEY" not in dead.text and "/hook" not in dead.text
    # Paging by id, the playbook filter.
    page = client.get("/api/outbox", headers=viewer, params={"after": 1, "limit": 1}).json()
    assert ([r["id"] for r in page["rows"]], page["next"]) == ([2], 2)
    assert client.get("/api/outbox", headers=viewer, params={"playbook": "other"}
                      ).json()["rows"] == []
    assert [p["outbox"] for p in client.get("/api/playbooks", headers=viewer).json()] == [
        _counts(dead=2)]
    # Viewers and analysts may not lay hands on a row.
    for role in ("viewer", "analyst"):
        assert client.post("/api/outbox/1/retry", headers=auth[role]).status_code == 403
        assert client.post("/api/outbox/1/discard", headers=auth[role]).status_code == 403
    before = now_utc()
    retried = client.post("/api/outbox/1/retry", headers=admin)
    assert retried.status_code == 200
    row = retried.json()
    assert (row["state"], row["attempts"], row["done_at"], row["last_error"]) == (
        "queued", 0, None, REFUSED)
    assert row["next_attempt_at"] >= before.isoformat()[:19]
    again = client.post("/api/outbox/1/retry", headers=admin)
    assert (again.status_code, again.json()) == (409, {
        "detail": "id: outbox row 1 is queued; only a failed or dead row can be retried"})
    gone = client.post("/api/outbox/2/discard", headers=admin)
    assert (gone.status_code, gone.json()["state"]) == (200, "discarded")
    assert client.post("/api/outbox/2/retry", headers=admin).status_code == 409
    assert client.post("/api/outbox/99/discard", headers=admin).json() == {
        "detail": "id: no outbox row 99"}
    listed = client.get("/api/outbox", headers=viewer).json()
    assert [(r["id"], r["state"]) for r in listed["rows"]] == [(1, "queued"), (2, "discarded")]
    assert listed["counts"] == _counts(queued=1, discarded=1)
    assert client.get("/api/outbox", headers=viewer, params={"state": "lost"}
                      ).status_code == 422
    assert _audit(engine, "outbox.") == [("admin-u", "outbox.retry", "outbox:1"),
                                         ("admin-u", "outbox.discard", "outbox:2")]
    # The retried row is delivered again at once (and refused again: failed, 1 attempt);
    # the discarded one never.
    done = deliver_due(engine, DeliverySettings(SmtpSettings()))
    assert (done.sent, done.failed, done.dead) == (0, 1, 0)
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(
            select(outbox.c.id, outbox.c.state, outbox.c.attempts).order_by(outbox.c.id))
        ] == [(1, "failed", 1), (2, "discarded", MAX_ATTEMPTS)]

