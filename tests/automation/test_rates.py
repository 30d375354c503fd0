"""Rate limits per action target: past ``PATCHPILOT_ACTION_RATE_LIMIT`` sends a minute to one
target, a row waits for the end of the target's window without an attempt counted; other
targets are not held back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.deliver import RATE_WINDOW, deliver_due
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.clock import now_utc
from patchpilot.config import ConfigError, load_settings
from patchpilot.db.tables import action_rates, outbox

Build = Callable[..., Engine]
# Every new finding (15) mails the SOC three times and the owner once: 45 sends to one
# target, 15 to another.
BUSY = """\
name: busy
trigger: {events: [new]}
actions:
  - type: email
    with: {to: [soc@plant.example]}
  - type: email
    with: {to: [soc@plant.example], lang: ja}
  - type: email
    with: {to: [soc@plant.example], subject: "again {{ finding.vuln_id }}"}
  - type: email
    with: {to: ["{{ asset.owner }}"]}
"""
SOC = "smtp:soc@plant.example"


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(outbox.c.id, outbox.c.target, outbox.c.state, outbox.c.attempts,
                   outbox.c.next_attempt_at).order_by(outbox.c.id))]


def test_the_31st_send_to_a_target_waits_without_an_attempt(estate_with: Build,
                                                             mailbox: Any) -> None:
    estate = estate_with(BUSY)
    assert evaluate_events(estate).queued == 60
    settings = mailbox.settings()
    assert settings.rate_limit == 30
    now = now_utc()
    done = deliver_due(estate, settings, now)
    assert (done.sent, done.postponed, done.failed) == (45, 15, 0)
    rows = _rows(estate)
    soc = [r for r in rows if r[2] == "sent" and r[1] == SOC]
    owner = [r for r in rows if r[1] == "smtp:web-owner@plant.example"]
    waiting = [r for r in rows if r[2] == "queued"]
    assert (len(soc), len(owner), len(waiting)) == (30, 15, 15)
    assert all(r[2] == "sent" and r[3] == 1 for r in owner)
    # The SOC's first 30 rows (by id) went; the 31st on wait, untried, till the window ends.
    soc_ids = [r[0] for r in rows if r[0] not in {w[0] for w in owner}]
    assert [r[0] for r in soc] == soc_ids[:30]
    assert [r[0] for r in waiting] == soc_ids[30:]
    window_end = now + RATE_WINDOW
    assert {(r[1], r[3], r[4].replace(tzinfo=UTC)) for r in waiting} == {(None, 0, window_end)}
    assert len(mailbox.messages) == 45
    with estate.connect() as conn:
        rates = {r.target: (r.window_start.replace(tzinfo=UTC), r.sent)
                 for r in conn.execute(select(action_rates))}
    assert rates == {SOC: (now, 45), "smtp:web-owner@plant.example": (now, 15)}

    # Not due before the window ends; then the rest go, in a fresh window.
    assert deliver_due(estate, settings, now + timedelta(seconds=30)).sent == 0
    later = deliver_due(estate, settings, window_end)
    assert (later.sent, later.postponed) == (15, 0)
    assert {(r[2], r[3]) for r in _rows(estate)} == {("sent", 1)}
    with estate.connect() as conn:
        assert conn.execute(select(action_rates.c.window_start, action_rates.c.sent)
                            .where(action_rates.c.target == SOC)).one()[1] == 15


def test_a_lower_limit_from_the_settings(estate_with: Build, mailbox: Any) -> None:
    estate = estate_with(BUSY)
    evaluate_events(estate)
    settings = DeliverySettings(mailbox.settings().smtp, rate_limit=2)
    done = deliver_due(estate, settings, now_utc())
    assert (done.sent, done.postponed) == (4, 56)


def test_the_setting() -> None:
    base = {"PATCHPILOT_HOME": "/srv/pp"}
    assert load_settings(base).action_rate_limit == 30
    assert load_settings({**base, "PATCHPILOT_ACTION_RATE_LIMIT": "5"}).action_rate_limit == 5
    assert DeliverySettings.from_settings(
        load_settings({**base, "PATCHPILOT_ACTION_RATE_LIMIT": "7"})).rate_limit == 7
    with pytest.raises(ConfigError) as caught:
        load_settings({**base, "PATCHPILOT_ACTION_RATE_LIMIT": "0"})
    assert str(caught.value) == ("PATCHPILOT_ACTION_RATE_LIMIT: '0' is not a whole number of "
                                 "sends a minute (1 or more)")
