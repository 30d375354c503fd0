"""The escalation chain against a real SMTP server (aiosmtpd): a breached SLA mails the
owner at once, the lead after the delay and nobody before it; a triage, a new priority or
a later due date in between stops the chain without a mail."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from sqlalchemy import Engine, select, update

from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.deliver import deliver_due
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.automation.playbook import PlaybookError, parse_playbook
from patchpilot.clock import aware, iso, now_utc
from patchpilot.db.tables import finding_priority, outbox
from patchpilot.findings.events import (
    PRIORITY_CHANGED,
    event_row,
    record_sla_breaches,
    write_events,
)
from patchpilot.findings.triage import record_decision
from patchpilot.reports.mail import SmtpSettings

Build = Callable[..., Engine]
CHAIN = """\
name: escalate-breach
trigger: {events: [sla_breached]}
actions:
  - type: escalate
    with:
      lang: %s
      chain:
        - {after: "0", to: ["{{ asset.owner }}"]}
        - {after: 4h, to: [lead@plant.example]}
        - {after: 1d, to: [manager@plant.example, "{{ asset.owner }}"]}
"""
FINDING = 15  # CVE-2007-5424 on testphp


class Inbox:
    """A real SMTP server on loopback keeping what it received."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        outer = self

        class Keep(Message):  # type: ignore[misc]
            def handle_message(self, message: email.message.Message) -> None:
                outer.received.append(email.message_from_bytes(
                    message.as_bytes(), policy=email.policy.default))  # type: ignore[arg-type]

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        self.controller = Controller(Keep(), hostname="127.0.0.1", port=port)
        self.controller.start()
        self.settings = DeliverySettings(SmtpSettings(host="127.0.0.1", port=port,
                                                      sender="patchpilot@plant.example"))


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    yield box
    box.controller.stop()


def _breach(estate_with: Build, lang: str = "en") -> tuple[Engine, datetime]:
    """The estate with CVE-2007-5424's due date a day past and its breach recorded and
    queued at ``t``."""
    estate = estate_with(CHAIN % lang)
    t = now_utc()
    with estate.begin() as conn:
        conn.execute(update(finding_priority).where(finding_priority.c.finding_id == FINDING)
                     .values(due_date=t - timedelta(days=1)))
        assert record_sla_breaches(conn, t) == 1
    assert evaluate_events(estate, now=t).queued == 1
    return estate, t


def _row(estate: Engine) -> tuple[object, ...]:
    with estate.connect() as conn:
        r = conn.execute(select(outbox.c.state, outbox.c.step, outbox.c.attempts,
                                outbox.c.next_attempt_at, outbox.c.outcome,
                                outbox.c.target, outbox.c.done_at)).one()
    return (r.state, r.step, r.attempts, _utc(aware(r.next_attempt_at)),
            orjson.loads(r.outcome) if r.outcome else None, r.target, r.done_at is not None)


def _utc(moment: datetime | None) -> str:
    """A moment to the second in UTC (PostgreSQL answers in the session's zone)."""
    assert moment is not None
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def test_breach_escalates_owner_then_lead_until_a_triage(estate_with: Build,
                                                         inbox: Inbox) -> None:
    estate, t = _breach(estate_with)
    settings = inbox.settings
    due = t - timedelta(days=1)

    # Step 0 at once: the owner.
    assert deliver_due(estate, settings, t).sent == 1
    [owner] = inbox.received
    assert owner["To"] == "web-owner@plant.example"
    assert str(owner["Subject"]) == ("PatchPilot escalation 1/3: CVE-2007-5424 on testphp "
                                     "is past its SLA")
    body = owner.get_content()
    assert body.splitlines() == [
        f"The finding below is past its SLA due date and nothing has changed since {iso(t)} "
        "(event sla_breached, playbook escalate-breach).",
        "",
        "Asset:          testphp (owner web-owner@plant.example)",
        "Vulnerability:  CVE-2007-5424, High",
        "Package:        tcp/80 (network)",
        "Priority:       P3",
        f"Due:            {iso(due)}",
        f"Escalation:     step 1 of 3; the next at {iso(t + timedelta(hours=4))} unless it "
        "changes"]
    assert _row(estate) == ("queued", 1, 0, _utc(t + timedelta(hours=4)),
                            {"step": 0, "to": "web-owner@plant.example"},
                            "smtp:web-owner@plant.example", False)

    # Before the delay: nothing.
    assert deliver_due(estate, settings, t + timedelta(hours=3, minutes=59)).sent == 0
    assert len(inbox.received) == 1

    # After it, nothing changed: the lead.
    assert deliver_due(estate, settings, t + timedelta(hours=4)).sent == 1
    lead = inbox.received[1]
    assert lead["To"] == "lead@plant.example"
    assert str(lead["Subject"]).startswith("PatchPilot escalation 2/3: ")
    assert lead.get_content().splitlines()[-1] == (
        f"Escalation:     step 2 of 3; the next at {iso(t + timedelta(days=1))} unless it "
        "changes")
    assert _row(estate)[:5] == ("queued", 2, 0, _utc(t + timedelta(days=1)),
                                {"step": 1, "to": "lead@plant.example"})

    # Someone triages it: the manager is never mailed.
    with estate.begin() as conn:
        record_decision(conn, "sato", vuln_id="CVE-2007-5424", package=None, scope="asset",
                        decision="false_positive", reason="port 80 is not served",
                        asset_id=1)
    assert deliver_due(estate, settings, t + timedelta(days=1)).sent == 1
    assert len(inbox.received) == 2
    state, step, _, _, outcome, _, done = _row(estate)
    assert (state, step, outcome, done) == ("sent", 2, {"stopped": "triaged", "step": 2}, True)
    assert deliver_due(estate, settings, t + timedelta(days=30)).sent == 0


def test_the_last_step_ends_the_chain_in_japanese(estate_with: Build, inbox: Inbox) -> None:
    estate, t = _breach(estate_with, "ja")
    for moment in (t, t + timedelta(hours=4), t + timedelta(days=1)):
        assert deliver_due(estate, inbox.settings, moment).sent == 1
    assert [m["To"] for m in inbox.received] == [
        "web-owner@plant.example", "lead@plant.example",
        "manager@plant.example, web-owner@plant.example"]
    last = inbox.received[2]
    assert str(last["Subject"]) == ("PatchPilot エスカレーション 3/3: testphp の CVE-2007-5424 が"
                                    "対応期限を過ぎています")
    assert last.get_content().splitlines()[-1] == "エスカレーション: 3 段階中 3 段階目"
    state, step, _, _, outcome, _, done = _row(estate)
    assert (state, step, outcome, done) == (
        "sent", 2, {"step": 2, "to": "manager@plant.example, web-owner@plant.example"}, True)


def test_a_new_priority_stops_the_chain(estate_with: Build, inbox: Inbox) -> None:
    estate, t = _breach(estate_with)
    assert deliver_due(estate, inbox.settings, t).sent == 1
    with estate.begin() as conn:  # what a re-prioritisation writes
        conn.execute(update(finding_priority).where(finding_priority.c.finding_id == FINDING)
                     .values(priority=2, due_date=t + timedelta(days=7)))
        write_events(conn, [event_row(PRIORITY_CHANGED, t + timedelta(hours=1),
                                      finding_id=FINDING, asset_id=1,
                                      detail={"from": 3, "to": 2})])
    assert deliver_due(estate, inbox.settings, t + timedelta(hours=4)).sent == 1
    assert len(inbox.received) == 1
    assert _row(estate)[4] == {"stopped": "changed", "step": 1}


def test_a_later_due_date_stops_the_chain(estate_with: Build, inbox: Inbox) -> None:
    estate, t = _breach(estate_with)
    assert deliver_due(estate, inbox.settings, t).sent == 1
    with estate.begin() as conn:
        conn.execute(update(finding_priority).where(finding_priority.c.finding_id == FINDING)
                     .values(due_date=t + timedelta(days=7)))
    assert deliver_due(estate, inbox.settings, t + timedelta(hours=4)).sent == 1
    assert len(inbox.received) == 1
    assert _row(estate)[4] == {"stopped": "not breached", "step": 1}


def test_a_first_step_with_a_delay_waits(estate_with: Build, inbox: Inbox) -> None:
    estate = estate_with((CHAIN % "en").replace('after: "0"', "after: 30m"))
    t = now_utc()
    with estate.begin() as conn:
        conn.execute(update(finding_priority).where(finding_priority.c.finding_id == FINDING)
                     .values(due_date=t - timedelta(days=1)))
        record_sla_breaches(conn, t)
    evaluate_events(estate, now=t)
    assert deliver_due(estate, inbox.settings, t).sent == 1
    assert inbox.received == []
    assert _row(estate)[:5] == ("queued", 0, 0, _utc(t + timedelta(minutes=30)),
                                {"waiting": iso(t + timedelta(minutes=30)), "step": 0})
    assert deliver_due(estate, inbox.settings, t + timedelta(minutes=30)).sent == 1
    assert [m["To"] for m in inbox.received] == ["web-owner@plant.example"]


def _refusal(chain: str) -> str:
    with pytest.raises(PlaybookError) as caught:
        parse_playbook("name: e\ntrigger: {events: [sla_breached]}\nactions:\n"
                       f"  - type: escalate\n    with: {chain}\n")
    return str(caught.value)


def test_the_chain_is_checked() -> None:
    assert _refusal("{}") == ('actions[0].with.chain: required: a list of steps {after: "0" '
                              '| "4h" | "2d", to: [addresses]}')
    assert _refusal("{chain: [{to: [a@b.example]}]}") == (
        'actions[0].with.chain[0].after: required: "0" or a delay such as 4h or 2d')
    assert _refusal("{chain: [{after: 4x, to: [a@b.example]}]}") == (
        "actions[0].with.chain[0].after: duration: '4x' is not like 4h, 90m, 1h30m or 2d")
    assert _refusal('{chain: [{after: 1d, to: [a@b.example]}, {after: 4h, to: '
                    '[c@b.example]}]}') == (
        "actions[0].with.chain[1].after: must not be shorter than the step before's "
        "(delays count from the event)")
    assert _refusal("{chain: [{after: 0, to: []}]}") == (
        "actions[0].with.chain[0].to: required: a list of addresses (or templates such as "
        "'{{ asset.owner }}')")
    assert _refusal("{chain: [{after: 0, to: [a@b.example], cc: [x@b.example]}]}") == (
        "actions[0].with.chain[0].cc: unknown field (fields: after, to)")
    assert _refusal("{chain: [{after: 0, to: [a@b.example]}], lang: de}") == (
        "actions[0].with.lang: must be one of en, ja")
    assert _refusal("{chain: [{after: 0, to: [a@b.example]}], to: [a@b.example]}") == (
        "actions[0].with.to: unknown setting (settings: chain, lang, subject, body)")
    assert _refusal('{chain: [{after: 0, to: ["{{ asset.owner"]}]}').startswith(
        "actions[0].with.chain[0].to: template does not compile:")
    parse_playbook(CHAIN % "ja")
