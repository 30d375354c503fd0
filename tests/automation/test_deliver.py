"""Delivery: mail arrives at a real SMTP server (aiosmtpd) on loopback, a webhook at a local
HTTP server with its HMAC checked; an internal target is refused unless allowed (SSRF);
failures back off and end dead."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, insert, select

from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.deliver import MAX_ATTEMPTS, backoff, deliver_due
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.clock import now_utc
from patchpilot.db.tables import audit_log, outbox, users
from patchpilot.reports.mail import SmtpSettings

Build = Callable[..., Engine]
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
ONE = """\
name: one
trigger: {events: [new]}
condition: finding.vuln_id == "CVE-2007-5424"
actions:
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """An HTTP server on loopback that keeps what was POSTed and answers ``status``."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def _queue(estate_with: Build, action: str) -> Engine:
    estate = estate_with(ONE + action)
    assert evaluate_events(estate).queued == 1
    return estate


def _state(estate: Engine) -> tuple[Any, ...]:
    with estate.connect() as conn:
        return tuple(conn.execute(select(outbox.c.state, outbox.c.attempts,
                                         outbox.c.last_error)).one())


def test_email_arrives_in_japanese(estate_with: Build) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[email.message.Message] = []

    class Inbox(Message):  # type: ignore[misc]
        def handle_message(self, message: email.message.Message) -> None:
            received.append(message)

    estate = _queue(estate_with, '  - type: email\n    with: {to: ["{{ asset.owner }}", '
                                 '"soc@plant.example"], lang: ja}\n')
    port = _free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = DeliverySettings(SmtpSettings(host="127.0.0.1", port=port,
                                                 sender="patchpilot@plant.example"))
        done = deliver_due(estate, settings)
        again = deliver_due(estate, settings)
    finally:
        controller.stop()
    assert (done.sent, done.failed, again.sent) == (1, 0, 0)
    assert _state(estate) == ("sent", 1, None)
    assert len(received) == 1
    msg = email.message_from_bytes(received[0].as_bytes(), policy=email.policy.default)
    assert msg["To"] == "web-owner@plant.example, soc@plant.example"
    assert msg["From"] == "patchpilot@plant.example"
    assert str(msg["Subject"]) == "PatchPilot: testphp で CVE-2007-5424（High）: new"
    body = msg.get_content()  # type: ignore[attr-defined]
    assert "プレイブック one が" in body
    assert "脆弱性:         CVE-2007-5424、High（CVSS 7.5）" in body
    assert "資産:           testphp（重要度 1、production）" in body
    assert "優先度:         P3" in body
    with estate.connect() as conn:
        assert conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.target)
                            .order_by(audit_log.c.id.desc()).limit(1)).one() == (
            "playbook", "playbook.action.sent", "outbox:1")


def test_webhook_is_signed_and_delivered_once(estate_with: Build, receiver: Receiver,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PP_TEST_HOOK_KEY", "k-42")
    estate = _queue(estate_with, f'  - type: webhook\n    with: {{url: "{receiver.url}", '
                                 f'secret_env: PP_TEST_HOOK_KEY}}\n')
    settings = DeliverySettings(SmtpSettings(), allow_networks=LOOPBACK)
    assert deliver_due(estate, settings).sent == 1
    assert deliver_due(estate, settings).sent == 0
    assert _state(estate) == ("sent", 1, None)
    [(headers, body)] = receiver.received
    expected = "sha256=" + hmac.new(b"k-42", body, hashlib.sha256).hexdigest()
    assert headers["x-patchpilot-signature"] == expected
    assert headers["x-patchpilot-event"] == "new"
    # Outbox row 1, step 0, first attempt: the id a receiver deduplicates on.
    assert (headers["x-patchpilot-delivery"], headers["x-patchpilot-attempt"]) == ("1.0", "1")
    assert headers["content-type"] == "application/json"
    sent = orjson.loads(body)
    assert (sent["playbook"], sent["event"]["id"], sent["finding"]["vuln_id"],
            sent["asset"]["owner"]) == ("one", 15, "CVE-2007-5424", "web-owner@plant.example")


def test_internal_target_is_refused_unless_allowed(estate_with: Build, receiver: Receiver,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PP_TEST_HOOK_KEY", "k")
    estate = _queue(estate_with, f'  - type: webhook\n    with: {{url: "{receiver.url}", '
                                 f'secret_env: PP_TEST_HOOK_KEY}}\n')
    done = deliver_due(estate, DeliverySettings(SmtpSettings()))
    assert (done.sent, done.failed) == (0, 1)
    state, attempts, error = _state(estate)
    assert (state, attempts) == ("failed", 1)
    assert error == ("webhook: 127.0.0.1 resolves to 127.0.0.1, an internal address; refused "
                     "(allow its range with PATCHPILOT_WEBHOOK_ALLOW_NETWORKS)")
    assert receiver.received == []
    # Another range allowed is not enough.
    other = DeliverySettings(SmtpSettings(),
                             allow_networks=(ipaddress.ip_network("10.0.0.0/8"),))
    assert deliver_due(estate, other, now_utc() + backoff(1)).failed == 1
    assert receiver.received == []


def test_failures_back_off_then_go_dead(estate_with: Build, receiver: Receiver,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PP_TEST_HOOK_KEY", "k")
    receiver.status = 503
    estate = _queue(estate_with, f'  - type: webhook\n    with: {{url: "{receiver.url}", '
                                 f'secret_env: PP_TEST_HOOK_KEY}}\n')
    settings = DeliverySettings(SmtpSettings(), allow_networks=LOOPBACK)
    now = now_utc()
    assert deliver_due(estate, settings, now).failed == 1
    with estate.connect() as conn:
        due = conn.execute(select(outbox.c.next_attempt_at)).scalar_one()
    assert abs(due.timestamp() - (now + timedelta(minutes=1)).timestamp()) < 1
    # Not due again before its backoff.
    assert deliver_due(estate, settings, now + timedelta(seconds=30)).failed == 0
    for attempt in range(2, MAX_ATTEMPTS + 1):
        now += backoff(attempt - 1)
        done = deliver_due(estate, settings, now)
        assert (done.failed, done.dead) == ((1, 0) if attempt < MAX_ATTEMPTS else (0, 1))
    assert _state(estate) == ("dead", MAX_ATTEMPTS,
                              "webhook: 127.0.0.1 answered 503")
    assert len(receiver.received) == MAX_ATTEMPTS
    # Every retry is the same delivery (one id), its attempts counted.
    assert [(h["x-patchpilot-delivery"], h["x-patchpilot-attempt"])
            for h, _ in receiver.received] == [("1.0", str(n))
                                               for n in range(1, MAX_ATTEMPTS + 1)]
    assert deliver_due(estate, settings, now + timedelta(days=1)).dead == 0


def test_delivery_settings_come_from_the_settings() -> None:
    from patchpilot.config import load_settings

    s = DeliverySettings.from_settings(load_settings({
        "PATCHPILOT_HOME": "/srv/pp", "PATCHPILOT_SMTP_HOST": "mail.example",
        "PATCHPILOT_SMTP_FROM": "pp@plant.example",
        "PATCHPILOT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"}))
    assert (s.smtp.host, s.smtp.sender, s.allow_networks) == (
        "mail.example", "pp@plant.example", LOOPBACK)


def test_email_speaks_each_users_language(estate_with: Build, mailbox: Any) -> None:
    # The owner is a PatchPilot user reading English; the SOC address is no user: it
    # gets the playbook's Japanese.  One mail per language.
    estate = _queue(estate_with, '  - type: email\n    with: {to: ["{{ asset.owner }}", '
                                 '"soc@plant.example"], lang: ja}\n')
    with estate.begin() as conn:
        conn.execute(insert(users).values(name="Web-Owner@plant.example", role="viewer",
                                          language="en", created_at=now_utc(),
                                          disabled=False))
    assert deliver_due(estate, mailbox.settings()).sent == 1
    by_to = {str(m["To"]): str(m["Subject"]) for m in mailbox.messages}
    assert by_to == {
        "web-owner@plant.example": "PatchPilot: High CVE-2007-5424 on testphp (new)",
        "soc@plant.example": "PatchPilot: testphp で CVE-2007-5424（High）: new"}
