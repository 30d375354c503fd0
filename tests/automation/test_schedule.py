"""Schedule triggers: the next run is set when a playbook is stored or enabled, a due run
fires exactly once however many ticks race for it, a missed run (server down) fires once,
and only the playbook a scheduled event names acts on it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, select

from patchpilot.automation.evaluate import evaluate_events
from patchpilot.automation.schedule import fire_due
from patchpilot.automation.store import save_playbook, set_enabled
from patchpilot.db.tables import finding_events, outbox, playbooks

# 08:00 on Tokyo's wall clock, Monday to Friday: 23:00 UTC the day before.
MORNING = """\
name: morning
trigger:
  schedule: {cron: "0 8 * * 1-5", timezone: Asia/Tokyo}
condition: finding.severity == "Critical"
actions:
  - type: webhook
    with: {url: "https://soc.example.com/morning", secret_env: SOC_HOOK_KEY}
"""
EVENING = MORNING.replace("name: morning", "name: evening").replace('"0 8', '"0 9')
# Stored on Monday 2 March 2026, 09:30 in Tokyo.
STORED = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
FIRST = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)  # Tuesday 08:00 in Tokyo


def _next_runs(engine: Engine) -> dict[str, datetime | None]:
    with engine.connect() as conn:
        return {r.name: (r.next_run_at.replace(tzinfo=UTC) if r.next_run_at else None)
                for r in conn.execute(select(playbooks.c.name, playbooks.c.next_run_at))}


def _scheduled(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [(r.kind, r.finding_id, r.asset_id, orjson.loads(r.detail))
                for r in conn.execute(select(finding_events).order_by(finding_events.c.id))]


def _store(engine: Engine, *documents: str) -> None:
    with engine.begin() as conn:
        for document in documents:
            save_playbook(conn, "sato", document, now=STORED)


def test_the_next_run_is_set_when_stored_and_enabled(engine: Engine) -> None:
    _store(engine, MORNING)
    assert _next_runs(engine) == {"morning": FIRST}
    with engine.begin() as conn:
        set_enabled(conn, "sato", "morning", False)
    assert _next_runs(engine) == {"morning": None}
    # Nothing fires while disabled.
    assert fire_due(engine, FIRST + timedelta(days=30)) == 0
    with engine.begin() as conn:
        set_enabled(conn, "sato", "morning", True)
    [(name, again)] = _next_runs(engine).items()
    assert name == "morning" and again is not None and again > datetime.now(UTC)
    # A playbook without a schedule has no next run.
    with engine.begin() as conn:
        save_playbook(conn, "sato", "name: plain\ntrigger: {events: [new]}\nactions:\n"
                      "  - type: email\n    with: {to: [a@plant.example]}\n")
    assert _next_runs(engine)["plain"] is None


def test_two_concurrent_ticks_fire_a_run_once(engine: Engine) -> None:
    _store(engine, MORNING)
    start = threading.Barrier(2)
    fired: list[int | BaseException] = []

    def tick() -> None:
        start.wait()
        try:
            fired.append(fire_due(engine, FIRST + timedelta(minutes=1)))
        except BaseException as exc:  # noqa: BLE001 - shown by the assertion below
            fired.append(exc)

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(fired) == [0, 1]  # type: ignore[type-var]
    assert _scheduled(engine) == [
        ("scheduled", None, None, {"playbook": "morning", "due": "2026-03-02T23:00:00+00:00"})]
    # Wednesday 08:00 in Tokyo next.
    assert _next_runs(engine) == {"morning": datetime(2026, 3, 3, 23, 0, tzinfo=UTC)}
    assert fire_due(engine, FIRST + timedelta(minutes=2)) == 0


def test_a_missed_run_fires_once(engine: Engine) -> None:
    _store(engine, MORNING)
    # The server was down from Monday night to Friday noon (Tokyo): four runs missed.
    back = datetime(2026, 3, 6, 3, 0, tzinfo=UTC)
    assert fire_due(engine, back) == 1
    assert fire_due(engine, back + timedelta(seconds=1)) == 0
    assert _scheduled(engine) == [
        ("scheduled", None, None, {"playbook": "morning", "due": "2026-03-02T23:00:00+00:00"})]
    # The next run from now on: Monday 9 March, 08:00 in Tokyo (the weekend skipped).
    assert _next_runs(engine) == {"morning": datetime(2026, 3, 8, 23, 0, tzinfo=UTC)}


def test_only_the_named_playbook_acts_on_its_scheduled_event(engine: Engine) -> None:
    _store(engine, MORNING, EVENING)
    assert fire_due(engine, FIRST) == 1  # the morning run; the evening one is later
    done = evaluate_events(engine, now=FIRST)
    assert (done.events, done.queued, done.condition_errors) == (1, 1, {})
    with engine.connect() as conn:
        rows = conn.execute(select(playbooks.c.name, outbox.c.event_id, outbox.c.subject,
                                   outbox.c.action_type, outbox.c.state)
                            .join(playbooks, playbooks.c.id == outbox.c.playbook_id)).all()
    # The condition (about findings) is not applied to the playbook's own schedule.
    assert [tuple(r) for r in rows] == [("morning", 1, "event:1", "webhook", "queued")]
