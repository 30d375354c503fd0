"""The digest: matched finding events are collected, not sent; the playbook's schedule sends
one mail of them (aiosmtpd on loopback), each collected event in exactly one digest; the
next run with nothing collected sends nothing (unless ``send_empty``); a recipient who is
a PatchPilot user with a language gets it in that language."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, insert, select

from patchpilot.automation.actions.digest import render
from patchpilot.automation.deliver import deliver_due
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.automation.playbook import PlaybookError
from patchpilot.automation.schedule import fire_due
from patchpilot.automation.store import save_playbook
from patchpilot.db.tables import outbox, playbooks, users

Build = Callable[..., Engine]
DIGEST = """\
name: morning-digest
trigger:
  events: [new]
  schedule: {cron: "0 8 * * *", timezone: Asia/Tokyo}
condition: finding.vuln_id in ["CVE-2007-5424", "CVE-2006-1015", "CVE-2007-0448"]
actions:
  - type: digest
    with: {to: [soc@plant.example]}
"""
THREE = [("CVE-2006-1015", 1), ("CVE-2007-0448", 10), ("CVE-2007-5424", 15)]


def _outbox(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [(r.event_id, r.subject, r.state, r.attempts,
                 orjson.loads(r.outcome) if r.outcome else None)
                for r in conn.execute(select(outbox).order_by(outbox.c.id))]


def _next_run(engine: Engine) -> datetime:
    with engine.connect() as conn:
        value = conn.execute(select(playbooks.c.next_run_at)).scalar_one()
    return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


def _round(engine: Engine, mailbox: Any, now: datetime) -> tuple[int, int, int]:
    fired = fire_due(engine, now)
    queued = evaluate_events(engine, now=now).queued
    return fired, queued, deliver_due(engine, mailbox.settings(), now).sent


def test_a_digest_collects_then_sends_once(estate_with: Build, mailbox: Any) -> None:
    estate = estate_with(DIGEST)
    done = evaluate_events(estate)
    assert (done.events, done.queued, done.collected) == (16, 3, 3)
    assert _outbox(estate) == [(event, f"finding:{event}", "collected", 0, None)
                               for _, event in THREE]
    # Collected rows are never delivered on their own.
    assert deliver_due(estate, mailbox.settings()).sent == 0
    assert mailbox.messages == []

    due = _next_run(estate)
    assert _round(estate, mailbox, due + timedelta(seconds=5)) == (1, 1, 1)
    [msg] = mailbox.messages
    assert (msg["To"], msg["From"]) == ("soc@plant.example", "patchpilot@plant.example")
    assert str(msg["Subject"]) == "PatchPilot digest (morning-digest): 3 finding events"
    body = msg.get_content()
    assert body.splitlines() == [
        "Playbook morning-digest: 3 finding events since the last digest (due "
        f"{due.isoformat()}).",
        "",
        "By severity:  High 3",
        "By priority:  P3 3",
        "",
        "Prio Asset                          Vulnerability        Severity  Event",
        "P3   testphp                        CVE-2006-1015        High      new",
        "P3   testphp                        CVE-2007-0448        High      new",
        "P3   testphp                        CVE-2007-5424        High      new",
    ]
    rows = _outbox(estate)
    digest_id = 4
    # Each collected event marked sent by this digest; the digest's own row says so.
    assert rows[:3] == [(event, f"finding:{event}", "sent", 0, {"digest": digest_id})
                        for _, event in THREE]
    assert rows[3] == (17, "event:17", "sent", 1,
                       {"findings": 3, "sent": True, "through": 3, "to": "soc@plant.example"})

    # The next run: nothing collected since, nothing sent.
    following = _next_run(estate)
    assert following == due + timedelta(days=1)
    assert _round(estate, mailbox, following) == (1, 1, 1)
    assert len(mailbox.messages) == 1
    assert _outbox(estate)[4] == (18, "event:18", "sent", 1,
                                  {"findings": 0, "sent": False, "through": 0})


def test_send_empty_and_languages_per_recipient(estate_with: Build, mailbox: Any) -> None:
    estate = estate_with(DIGEST.replace("[soc@plant.example]",
                                        "[soc@plant.example, sato@plant.example], "
                                        "send_empty: true"))
    with estate.begin() as conn:
        conn.execute(insert(users).values(name="sato@plant.example", role="analyst",
                                          language="ja", created_at=datetime.now(UTC),
                                          disabled=False))
    # Events 1-16 then the scheduled event 17: the digest gathers the three collected.
    assert _round(estate, mailbox, _next_run(estate)) == (1, 4, 1)
    by_to = {m["To"]: m for m in mailbox.messages}
    assert sorted(by_to) == ["sato@plant.example", "soc@plant.example"]
    assert str(by_to["soc@plant.example"]["Subject"]) == \
        "PatchPilot digest (morning-digest): 3 finding events"
    ja = by_to["sato@plant.example"]
    assert str(ja["Subject"]) == "PatchPilot ダイジェスト（morning-digest）: 3 件"
    assert ja.get_content().splitlines()[2:4] == ["深刻度別:  High 3", "優先度別:  P3 3"]
    # Nothing collected since: with send_empty, both are told so.
    mailbox.messages.clear()
    assert _round(estate, mailbox, _next_run(estate)) == (1, 1, 1)
    by_to = {m["To"]: m for m in mailbox.messages}
    assert sorted(by_to) == ["sato@plant.example", "soc@plant.example"]
    assert str(by_to["soc@plant.example"]["Subject"]) == \
        "PatchPilot digest (morning-digest): 0 finding events"
    assert by_to["soc@plant.example"].get_content().splitlines()[2] == "Nothing was collected."
    assert by_to["sato@plant.example"].get_content().splitlines()[2] == \
        "収集されたものはありません。"


def test_a_digest_needs_a_schedule(engine: Engine) -> None:
    no_schedule = DIGEST.replace('  schedule: {cron: "0 8 * * *", timezone: Asia/Tokyo}\n', "")
    with engine.begin() as conn, pytest.raises(PlaybookError) as caught:
        save_playbook(conn, "sato", no_schedule)
    assert str(caught.value) == ("actions[0]: a digest is sent on the playbook's schedule: "
                                 "give trigger.schedule")


def test_the_table_is_sorted_by_priority() -> None:
    def payload(asset: str, vuln: str, severity: str, priority: int | None) -> dict[str, Any]:
        return {"event": {"kind": "new"}, "asset": {"name": asset},
                "finding": {"vuln_id": vuln, "severity": severity, "priority": priority}}

    subject, body = render([payload("b", "CVE-1", "High", 2), payload("a", "CVE-2", "Low", None),
                            payload("c", "CVE-3", "Critical", 1),
                            payload("a", "CVE-4", "Critical", 2)],
                           playbook="p", due="2026-03-02T23:00:00+00:00", lang="en")
    assert subject == "PatchPilot digest (p): 4 finding events"
    lines = body.splitlines()
    assert lines[2:4] == ["By severity:  Critical 2, High 1, Low 1",
                          "By priority:  P1 1, P2 2, - 1"]
    assert [line.split()[:3] for line in lines[6:]] == [
        ["P1", "c", "CVE-3"], ["P2", "a", "CVE-4"], ["P2", "b", "CVE-1"], ["-", "a", "CVE-2"]]
