"""Chat actions (slack, teams, mattermost): the exact JSON each service's incoming webhook
receives at a loopback server, the webhook URL read from a stored secret and never shown,
the services' error answers named, a URL in clear refused."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.actions import _chat as chat
from patchpilot.automation.actions.slack import FLAVOUR as SLACK
from patchpilot.automation.deliver import deliver_due
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.automation.playbook import PlaybookError, parse_playbook
from patchpilot.automation.secrets import set_secret
from patchpilot.db.tables import audit_log, outbox
from patchpilot.reports.mail import SmtpSettings
from tests.builders.http_receiver import Receiver

Build = Callable[..., Engine]
KEY = "test-secrets-key-0123456789"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
SETTINGS = DeliverySettings(SmtpSettings(), allow_networks=LOOPBACK)
# The path of a real Slack webhook URL is its credential.
TOKEN_PATH = "/services/T0001/B0002/s3cr3tT0k3nXyZ"
ONE = """\
name: one
trigger: {events: [new]}
condition: finding.vuln_id == "CVE-2007-5424"
actions:
  - type: %s
    with: %s
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def _queued(estate_with: Build, receiver: Receiver, action: str, settings: str,
            secret: str | None = None) -> Engine:
    """The estate with ``one`` queued for CVE-2007-5424 and the webhook URL stored as
    the secret ``chat-hook``."""
    estate = estate_with(ONE % (action, settings))
    with estate.begin() as conn:
        set_secret(conn, "sato", "chat-hook",
                   secret if secret is not None else receiver.base + TOKEN_PATH, KEY)
    assert evaluate_events(estate).queued == 1
    return estate


def _row(estate: Engine) -> tuple[Any, ...]:
    with estate.connect() as conn:
        return tuple(conn.execute(select(outbox.c.state, outbox.c.attempts,
                                         outbox.c.last_error, outbox.c.target,
                                         outbox.c.outcome)).one())


def test_slack_gets_text_and_a_mrkdwn_section(estate_with: Build, receiver: Receiver) -> None:
    estate = _queued(estate_with, receiver, "slack", "{url_secret: chat-hook}")
    done = deliver_due(estate, SETTINGS, secrets_key=KEY)
    assert (done.sent, done.failed) == (1, 0)
    assert _row(estate) == ("sent", 1, None, "slack:chat-hook", '{"status":200}')
    [request] = receiver.requests
    assert (request.method, request.path, request.headers["content-type"]) == (
        "POST", TOKEN_PATH, "application/json")
    text = ("*PatchPilot: High CVE-2007-5424 on testphp*\n"
            "Priority: P3 · Event: new · Playbook: one\n"
            "Package: tcp/80 (network)")
    assert request.json() == {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    # The URL (its path is the credential) is in no outbox row and no audit row.
    with estate.connect() as conn:
        stored = [*map(str, conn.execute(select(outbox)).one()),
                  *(str(d) for d, in conn.execute(select(audit_log.c.detail)))]
    assert not any("s3cr3t" in s for s in stored)
    assert deliver_due(estate, SETTINGS, secrets_key=KEY).sent == 0
    assert len(receiver.requests) == 1


def test_teams_gets_an_adaptive_card_in_japanese(estate_with: Build,
                                                 receiver: Receiver) -> None:
    receiver.status, receiver.body = 202, b""
    estate = _queued(estate_with, receiver, "teams", "{url_secret: chat-hook, lang: ja}")
    assert deliver_due(estate, SETTINGS, secrets_key=KEY).sent == 1
    assert _row(estate) == ("sent", 1, None, "teams:chat-hook", '{"status":202}')
    [request] = receiver.requests
    assert request.json() == {
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": None,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard", "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": "PatchPilot: testphp で CVE-2007-5424（High）",
                     "wrap": True, "weight": "Bolder", "size": "Medium"},
                    {"type": "TextBlock",
                     "text": "優先度: P3 · イベント: new · プレイブック: one", "wrap": True},
                    {"type": "TextBlock", "text": "パッケージ: tcp/80（network）",
                     "wrap": True}]}}]}


def test_mattermost_takes_a_template_channel_and_username(estate_with: Build,
                                                          receiver: Receiver) -> None:
    estate = _queued(estate_with, receiver, "mattermost", """
      url_secret: chat-hook
      channel: patch-ops
      username: PatchPilot
      text: "@here **{{ finding.vuln_id }}** on {{ asset.name }}, owner {{ asset.owner }}"
""")
    assert deliver_due(estate, SETTINGS, secrets_key=KEY).sent == 1
    assert _row(estate)[:4] == ("sent", 1, None, "mattermost:chat-hook")
    [request] = receiver.requests
    # The template's own @here stays a mention; the owner's address pages nobody.
    assert request.json() == {
        "text": "@here **CVE-2007-5424** on testphp, owner web-owner@\u200bplant.example",
        "channel": "patch-ops", "username": "PatchPilot"}


def test_mattermost_default_text_is_markdown(estate_with: Build, receiver: Receiver) -> None:
    estate = _queued(estate_with, receiver, "mattermost", "{url_secret: chat-hook}")
    assert deliver_due(estate, SETTINGS, secrets_key=KEY).sent == 1
    assert receiver.requests[0].json() == {
        "text": "**PatchPilot: High CVE-2007-5424 on testphp**\n"
                "Priority: P3 · Event: new · Playbook: one\n"
                "Package: tcp/80 (network)"}


def test_slack_error_names_host_status_and_reason(estate_with: Build,
                                                  receiver: Receiver) -> None:
    receiver.status, receiver.body = 403, b"invalid_token"
    estate = _queued(estate_with, receiver, "slack", "{url_secret: chat-hook}")
    done = deliver_due(estate, SETTINGS, secrets_key=KEY)
    assert (done.sent, done.failed) == (0, 1)
    assert _row(estate)[:4] == ("failed", 1, "slack: 127.0.0.1 answered 403: invalid_token",
                                "slack:chat-hook")


def test_teams_json_error_and_rate_limit(estate_with: Build, receiver: Receiver) -> None:
    receiver.status = 400
    receiver.body = {"error": {"code": "InvalidRequestContent",
                               "message": "The input body for trigger 'manual' of type "
                                          "'Request' did not match its schema definition."}}
    estate = _queued(estate_with, receiver, "teams", "{url_secret: chat-hook}")
    assert deliver_due(estate, SETTINGS, secrets_key=KEY).failed == 1
    assert _row(estate)[2] == ("teams: 127.0.0.1 answered 400: The input body for trigger "
                               "'manual' of type 'Request' did not match its schema "
                               "definition.")


def test_slack_rate_limit_is_retried(estate_with: Build, receiver: Receiver) -> None:
    receiver.status, receiver.body, receiver.headers = 429, b"rate_limited", {
        "Retry-After": "30"}
    estate = _queued(estate_with, receiver, "slack", "{url_secret: chat-hook}")
    assert deliver_due(estate, SETTINGS, secrets_key=KEY).failed == 1
    assert _row(estate)[:3] == ("failed", 1,
                                "slack: 127.0.0.1 is limiting requests (429, retry after 30)")


def test_missing_or_bad_secret_fails_without_showing_it(estate_with: Build,
                                                        receiver: Receiver) -> None:
    estate = _queued(estate_with, receiver, "slack", "{url_secret: other-hook}")
    assert deliver_due(estate, SETTINGS, secrets_key=KEY).failed == 1
    assert _row(estate)[2] == ("no secret named 'other-hook' (store it with `patchpilot "
                               "secret set other-hook`)")
    with estate.begin() as conn:
        set_secret(conn, "sato", "other-hook", "hooks.slack.com/services/T/B/s3cr3t", KEY)
        conn.execute(outbox.update().values(next_attempt_at=outbox.c.created_at))
    assert deliver_due(estate, SETTINGS, secrets_key=KEY).failed == 1
    assert _row(estate)[2] == "slack: secret 'other-hook' does not hold an http(s) webhook URL"
    assert receiver.requests == []


def test_internal_webhook_is_refused_unless_allowed(estate_with: Build,
                                                    receiver: Receiver) -> None:
    estate = _queued(estate_with, receiver, "slack", "{url_secret: chat-hook}")
    assert deliver_due(estate, DeliverySettings(SmtpSettings()), secrets_key=KEY).failed == 1
    assert _row(estate)[2] == ("slack: 127.0.0.1 resolves to 127.0.0.1, an internal address; "
                               "refused (allow its range with "
                               "PATCHPILOT_WEBHOOK_ALLOW_NETWORKS)")
    assert receiver.requests == []


def _refusal(action: str, settings: str) -> str:
    with pytest.raises(PlaybookError) as caught:
        parse_playbook(ONE % (action, settings))
    return str(caught.value)


@pytest.mark.parametrize("action", ["slack", "teams", "mattermost"])
def test_settings_are_checked(action: str) -> None:
    assert _refusal(action, '{url: "https://hooks.slack.com/services/T/B/x"}') == (
        f"actions[0].with.url: a {action} webhook URL is a credential and is never stored "
        "in a playbook: store it with `patchpilot secret set NAME` and give url_secret: "
        "NAME")
    assert _refusal(action, "{}") == (
        "actions[0].with.url_secret: required: the name of the stored secret that holds "
        "the incoming-webhook URL (`patchpilot secret set NAME`)")
    assert _refusal(action, "{url_secret: hook, lang: fr}") == (
        "actions[0].with.lang: must be one of en, ja")
    assert _refusal(action, '{url_secret: hook, text: "{{ finding.id "}') == (
        "actions[0].with.text: template does not compile: unexpected end of template, "
        "expected 'end of print statement'.")
    keys = "url_secret, lang, text" + (", channel, username" if action == "mattermost"
                                       else "")
    assert _refusal(action, "{url_secret: hook, colour: red}") == (
        f"actions[0].with.colour: unknown setting (settings: {keys})")
    parse_playbook(ONE % (action, "{url_secret: hook, lang: ja}"))


def test_slack_escapes_printed_values_only() -> None:
    payload = {"playbook": "p", "event": {"kind": "new"},
               "finding": {"id": 1, "vuln_id": "CVE-1"},
               "asset": {"name": "<!channel> & <https://evil.example|click>"}}
    assert chat.render(SLACK, {"text": "<!here> {{ asset.name }}"}, payload) == (
        "<!here> &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;")


def test_an_event_without_a_finding_reads_its_kind() -> None:
    payload = {"playbook": "imports", "event": {"kind": "import_finished"},
               "finding": dict.fromkeys(("id", "vuln_id", "severity", "priority")),
               "asset": {"name": None}}
    assert chat.render(SLACK, {"lang": "ja"}, payload) == (
        "**PatchPilot: イベント import_finished**\nプレイブック: imports")
    assert chat.render(SLACK, {}, payload) == (
        "**PatchPilot: import_finished**\nPlaybook: imports")
