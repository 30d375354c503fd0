"""Inbound webhooks over HTTP on both databases: the hook's token or a real HMAC-SHA256 of
the body lets a call in; an unknown hook, a disabled one and a wrong credential get the
same 401; a body over 1 MiB is 413 and one that is not JSON 400 naming the problem; the
event carries the asset and finding the body names, and a playbook on ``hook_received``
acts on it."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.deliver import deliver_due
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.automation.hooks import (
    MAX_BODY,
    HookBodyTooLarge,
    create_hook,
    receive,
    set_hook_enabled,
)
from patchpilot.automation.secrets import set_secret
from patchpilot.cli import app as cli_app
from patchpilot.db.tables import audit_log, finding_events, finding_overrides, hooks, outbox
from patchpilot.reports.mail import SmtpSettings
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token

Build = Callable[..., Engine]
KEY = "a-test-secrets-key-0123456789abcdef"
HMAC_KEY = "ids-shared-hmac-key-0123456789"
IDS = """\
name: ids-alert-raise
trigger: {events: [hook_received]}
condition: event.detail.hook == "ids" && type(finding.id) != null_type
actions:
  - type: set_priority
    with: {priority: P1, reason: "IDS: {{ event.detail.body.signature }}"}
"""
ALERT = {"host": "testphp.vulnweb.com", "cve": "cve-2007-5424", "signature": "ET EXPLOIT"}
REFUSED = {"detail": "hook refused: unknown or disabled hook, or wrong credentials"}


@pytest.fixture
def served(estate_with: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[Engine, TestClient, dict[str, str]]]:
    """The estate with the IDS playbook, hook ``ids`` (token) and hook ``siem`` (token and
    HMAC secret), and the app: (engine, client, tokens by hook)."""
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATCHPILOT_SECRETS_KEY", KEY)
    estate = estate_with(IDS)
    with estate.begin() as conn:
        set_secret(conn, "admin", "siem-hmac", HMAC_KEY, KEY)
        tokens = {"ids": create_hook(conn, "admin", "ids")[1],
                  "siem": create_hook(conn, "admin", "siem", hmac_secret="siem-hmac")[1]}
    with TestClient(create_app(estate)) as client:
        yield estate, client, tokens


def _post(client: TestClient, name: str, body: bytes, **headers: str) -> Any:
    return client.post(f"/api/hooks/{name}", content=body,
                       headers={"Content-Type": "application/json", **headers})


def _events(estate: Engine) -> list[Any]:
    with estate.connect() as conn:
        return conn.execute(select(finding_events).where(
            finding_events.c.kind == "hook_received").order_by(finding_events.c.id)).all()


def _audits(estate: Engine, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    with estate.connect() as conn:
        return [(r.actor, r.target, orjson.loads(r.detail)) for r in conn.execute(
            select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id))]


def test_a_token_call_names_the_finding_and_the_playbook_raises_it(served: Any) -> None:
    estate, client, tokens = served
    answer = _post(client, "ids", orjson.dumps(ALERT),
                   Authorization=f"Bearer {tokens['ids']}")
    assert answer.status_code == 202, answer.text
    [event] = _events(estate)
    assert answer.json() == {"event_id": event.id}
    assert (event.finding_id, event.asset_id, event.producer, orjson.loads(event.detail)) == (
        15, 1, "hook", {"hook": "ids", "body": ALERT})
    with estate.connect() as conn:
        last = conn.execute(select(hooks.c.name, hooks.c.last_received_at)
                            .order_by(hooks.c.name)).all()
    assert [(n, at is not None) for n, at in last] == [("ids", True), ("siem", False)]
    assert _audits(estate, "hook.received") == [
        ("hook:ids", "hook:ids", {"event_id": event.id, "auth": "token",
                                  "bytes": len(orjson.dumps(ALERT)), "asset_id": 1,
                                  "finding_id": 15})]
    # The playbook takes the event: one set_priority for finding 15, delivered.
    assert evaluate_events(estate).queued == 1
    with estate.connect() as conn:
        row = conn.execute(select(outbox.c.event_id, outbox.c.subject,
                                  outbox.c.action_type)).one()
    assert tuple(row) == (event.id, "finding:15", "set_priority")
    settings = DeliverySettings(SmtpSettings(host="127.0.0.1", port=1, sender="p@x.org"))
    assert deliver_due(estate, settings).sent == 1
    with estate.connect() as conn:
        override = conn.execute(select(finding_overrides)).one()
    assert (override.finding_id, override.priority, override.reason, override.set_by) == (
        15, 1, "IDS: ET EXPLOIT", "playbook:ids-alert-raise")
    # The token is in no audit row.
    with estate.connect() as conn:
        logged = " ".join(r.detail for r in conn.execute(select(audit_log.c.detail)))
    assert tokens["ids"] not in logged and tokens["ids"][4:] not in logged


def test_an_hmac_signed_call_by_address_and_cve_list(served: Any) -> None:
    estate, client, _tokens = served
    body = orjson.dumps({"ip": "44.228.249.3", "cves": ["CVE-1999-0001", "CVE-2006-1015"]})
    signed = "sha256=" + hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest()
    answer = _post(client, "siem", body, **{"X-PatchPilot-Signature": signed})
    assert answer.status_code == 202, answer.text
    [event] = _events(estate)
    assert (event.id, event.finding_id, event.asset_id) == (
        answer.json()["event_id"], 1, 1)
    assert _audits(estate, "hook.received")[0][2]["auth"] == "hmac"
    # The signature of another body, or made with another key, does not let it in.
    other = orjson.dumps({"ip": "44.228.249.3"})
    assert _post(client, "siem", other, **{"X-PatchPilot-Signature": signed}).json() == \
        REFUSED
    forged = "sha256=" + hmac.new(b"guess", body, hashlib.sha256).hexdigest()
    refused = _post(client, "siem", body, **{"X-PatchPilot-Signature": forged})
    assert (refused.status_code, refused.json()) == (401, REFUSED)
    # A hook without an HMAC secret takes no signature.
    signed_ids = _post(client, "ids", body, **{"X-PatchPilot-Signature": signed})
    assert (signed_ids.status_code, signed_ids.json()) == (401, REFUSED)
    assert len(_events(estate)) == 1


def test_every_refusal_is_the_same_401(served: Any) -> None:
    estate, client, tokens = served
    body = orjson.dumps(ALERT)
    with estate.begin() as conn:
        create_hook(conn, "admin", "old")
        set_hook_enabled(conn, "admin", "old", False)
    cases = [("ids", {"Authorization": "Bearer pph_wrong"}),
             ("nope", {"Authorization": f"Bearer {tokens['ids']}"}),
             ("ids", {}),
             ("siem", {"Authorization": f"Bearer {tokens['ids']}"}),  # another hook's token
             ("old", {"Authorization": "Bearer pph_x"})]
    answers = [_post(client, name, body, **headers) for name, headers in cases]
    assert [(a.status_code, a.json(), a.headers.get("www-authenticate")) for a in answers] \
        == [(401, REFUSED, "Bearer")] * len(cases)
    assert _events(estate) == []
    assert [(actor, target, detail["reason"]) for actor, target, detail
            in _audits(estate, "hook.refused")] == [
        ("hook", "hook:ids", "wrong credentials"), ("hook", "hook:nope", "unknown hook"),
        ("hook", "hook:ids", "no credentials"), ("hook", "hook:siem", "wrong credentials"),
        ("hook", "hook:old", "wrong credentials")]


def test_a_disabled_hook_refuses_its_own_token(served: Any) -> None:
    estate, client, tokens = served
    with estate.begin() as conn:
        set_hook_enabled(conn, "admin", "ids", False)
    answer = _post(client, "ids", orjson.dumps(ALERT), Authorization=f"Bearer {tokens['ids']}")
    assert (answer.status_code, answer.json()) == (401, REFUSED)
    assert _audits(estate, "hook.refused")[-1][2] == {"reason": "disabled",
                                                      "bytes": len(orjson.dumps(ALERT))}


def test_oversize_and_invalid_bodies(served: Any) -> None:
    estate, client, tokens = served
    auth = {"Authorization": f"Bearer {tokens['ids']}"}
    big = b'{"pad": "' + b"x" * MAX_BODY + b'"}'
    too_big = _post(client, "ids", big, **auth)
    assert too_big.status_code == 413
    assert too_big.json() == {"detail": "request body larger than 1 MiB"}
    with estate.begin() as conn, pytest.raises(HookBodyTooLarge, match="body: larger than"):
        receive(conn, "ids", big, auth)
    bad = _post(client, "ids", b'{"host": "testphp", "cve": }', **auth)
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("body: not valid JSON: unexpected character")
    # Said only to a caller that authenticated.
    assert _post(client, "ids", b'{"host": ', Authorization="Bearer pph_x").json() == REFUSED
    assert _events(estate) == []
    assert _audits(estate, "hook.refused")[-2][2]["reason"].startswith("body: not valid JSON")


def test_a_body_naming_no_known_host_is_kept_without_a_subject(served: Any) -> None:
    estate, client, tokens = served
    auth = {"Authorization": f"Bearer {tokens['ids']}"}
    for body in ({"host": "nowhere.example", "cve": "CVE-2007-5424"}, ["not", "a", "map"],
                 {"hostname": "testphp", "vuln_id": "CVE-2000-0001"}):
        assert _post(client, "ids", orjson.dumps(body), **auth).status_code == 202
    assert [(e.asset_id, e.finding_id, orjson.loads(e.detail)["body"])
            for e in _events(estate)] == [
        (None, None, {"host": "nowhere.example", "cve": "CVE-2007-5424"}),
        (None, None, ["not", "a", "map"]),
        (1, None, {"hostname": "testphp", "vuln_id": "CVE-2000-0001"})]
    # Events without a finding do not match the playbook's condition.
    assert evaluate_events(estate).queued == 0


def test_the_admin_api_adds_lists_disables_and_removes(served: Any) -> None:
    estate, client, _tokens = served
    admin = {"Authorization": "Bearer "
             + create_api_token(estate, user="root", role=Role.ADMIN)[0]}
    made = client.post("/api/automation/hooks", headers=admin, json={"name": "scanner"})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert token.startswith("pph_") and len(token) > 40
    listed = client.get("/api/automation/hooks", headers=admin).json()
    assert [(h["name"], h["enabled"], h["hmac_secret"], h["url"]) for h in listed] == [
        ("ids", True, None, "/api/hooks/ids"), ("scanner", True, None, "/api/hooks/scanner"),
        ("siem", True, "siem-hmac", "/api/hooks/siem")]
    assert all("token" not in h for h in listed)
    with estate.connect() as conn:
        stored = conn.execute(select(hooks.c.token_sha256)
                              .where(hooks.c.name == "scanner")).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    call = {"Authorization": f"Bearer {token}"}
    assert _post(client, "scanner", b"{}", **call).status_code == 202
    again = client.post("/api/automation/hooks", headers=admin, json={"name": "scanner"})
    assert again.status_code == 409
    unknown = client.post("/api/automation/hooks", headers=admin,
                          json={"name": "x", "hmac_secret": "missing"})
    assert unknown.status_code == 422
    assert "hmac_secret: no secret named 'missing'" in unknown.text
    off = client.patch("/api/automation/hooks/scanner", headers=admin, json={"enabled": False})
    assert off.json()["enabled"] is False
    assert _post(client, "scanner", b"{}", **call).status_code == 401
    assert client.delete("/api/automation/hooks/scanner", headers=admin).status_code == 204
    assert client.delete("/api/automation/hooks/scanner", headers=admin).status_code == 404
    assert [a[1] for a in _audits(estate, "hook.add")] == ["hook:ids", "hook:siem",
                                                           "hook:scanner"]


def test_the_hook_commands(served: Any, database_url: str,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    estate, client, _tokens = served
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli_app, list(args), terminal_width=200,
                               env={"COLUMNS": "200"})
        assert result.exit_code == code, result.output
        return result.output

    added = run("hook", "add", "edr", "--hmac-secret", "siem-hmac").splitlines()
    assert added[0] == "hook edr added: POST /api/hooks/edr"
    token = added[-1]
    assert token.startswith("pph_")
    assert _post(client, "edr", b'{"a": 1}', Authorization=f"Bearer {token}").status_code == 202
    listed = json.loads(run("hook", "list", "--json"))
    assert [(h["name"], h["hmac_secret"], h["last_received_at"] is not None)
            for h in listed] == [("edr", "siem-hmac", True), ("ids", None, False),
                                 ("siem", "siem-hmac", False)]
    assert "error: name: a hook named 'edr' exists" in run("hook", "add", "edr", code=2)
    assert run("hook", "disable", "edr").strip() == "hook edr disabled"
    assert run("hook", "remove", "edr").strip() == "hook edr removed"
    assert "no hook named 'edr'" in run("hook", "remove", "edr", code=2)
    assert _post(client, "edr", b"{}", Authorization=f"Bearer {token}").status_code == 401
