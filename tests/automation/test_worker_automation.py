"""Playbooks in the product: an idle worker's round evaluates new events and delivers (mail
at aiosmtpd), a ``patchpilot worker`` loop does it on its own, a round with nothing to do
writes nothing, a failing part is reported and the rest still runs, a stored playbook
that no longer validates is set aside, ``patchpilot playbook run`` prints the round."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from patchpilot import pipeline, worker
from patchpilot.automation import run as automation_run
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.automation.run import run_automation
from patchpilot.cli import app
from patchpilot.clock import now_utc
from patchpilot.config import load_settings
from patchpilot.db.tables import outbox, playbook_cursor, playbook_versions, playbooks

Build = Callable[..., Engine]
ONE = """\
name: one
trigger: {events: [new]}
condition: finding.vuln_id == "CVE-2007-5424"
actions:
  - type: email
    with: {to: ["{{ asset.owner }}"]}
"""
BROKEN = ONE.replace("name: one", "name: broken").replace("CVE-2007-5424", "CVE-2006-1015")


def _states(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(outbox.c.event_id, outbox.c.state, outbox.c.attempts).order_by(outbox.c.id))]


def _cursor(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(playbook_cursor.c.event_id)).scalar_one())


def test_an_idle_round_evaluates_and_delivers(estate_with: Build, mailbox: Any,
                                              database_url: str, tmp_path: Path) -> None:
    estate = estate_with(ONE)
    settings = load_settings({"PATCHPILOT_HOME": str(tmp_path / "home"),
                              "PATCHPILOT_DATABASE_URL": database_url, **mailbox.env})
    pipeline.when_idle(estate, settings)
    assert _states(estate) == [(15, "sent", 1)]
    [msg] = mailbox.messages
    assert msg["To"] == "web-owner@plant.example"
    assert str(msg["Subject"]) == "PatchPilot: High CVE-2007-5424 on testphp (new)"
    assert _cursor(estate) == 16
    # Nothing to do: nothing written, nothing sent.
    again = run_automation(estate, settings)
    assert again.to_dict() == {"fired": 0, "events": 0, "queued": 0, "collected": 0,
                               "sent": 0, "failed": 0, "dead": 0, "postponed": 0,
                               "tickets_closed": 0, "invalid": {}, "errors": []}
    assert len(mailbox.messages) == 1


def test_a_worker_loop_runs_the_playbooks(estate_with: Build, mailbox: Any, database_url: str,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    estate = estate_with(ONE)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    for name, value in mailbox.env.items():
        monkeypatch.setenv(name, value)
    stop = threading.Event()
    loop = threading.Thread(target=worker.run_forever, args=(estate, stop),
                            kwargs={"idle_seconds": 0.05, "tick_seconds": None})
    loop.start()
    try:
        deadline = time.monotonic() + 30
        while not mailbox.messages and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(30)
    assert [m["To"] for m in mailbox.messages] == ["web-owner@plant.example"]
    assert _states(estate) == [(15, "sent", 1)]


def test_a_failing_part_is_reported_and_the_rest_runs(estate_with: Build, mailbox: Any,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    estate = estate_with(ONE)
    evaluate_events(estate)
    with estate.begin() as conn:  # one more event to evaluate
        conn.execute(update(playbook_cursor).values(event_id=15))

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the evaluator broke")

    monkeypatch.setattr(automation_run, "evaluate_events", boom)
    settings = load_settings({"PATCHPILOT_HOME": str(tmp_path / "home"), **mailbox.env})
    done = run_automation(estate, settings)
    assert done.errors == ["evaluation: RuntimeError: the evaluator broke"]
    assert (done.events, done.sent) == (0, 1)
    assert len(mailbox.messages) == 1
    # A mail server that is down: a failed delivery, counted, not raised.
    monkeypatch.undo()
    with estate.begin() as conn:
        conn.execute(update(outbox).values(state="queued"))
    down = load_settings({"PATCHPILOT_HOME": str(tmp_path / "home"),
                          "PATCHPILOT_SMTP_HOST": "127.0.0.1", "PATCHPILOT_SMTP_PORT": "9"})
    done = run_automation(estate, down, now_utc() + timedelta(minutes=10))  # past the claim
    assert (done.failed, done.sent, done.errors) == (1, 0, [])
    assert _states(estate) == [(15, "failed", 2)]


def test_a_stored_playbook_that_no_longer_validates_is_set_aside(estate_with: Build) -> None:
    estate = estate_with(ONE, BROKEN)
    # As if stored by a release whose context had a field this one lacks.
    with estate.begin() as conn:
        broken_id = conn.execute(select(playbooks.c.id)
                                 .where(playbooks.c.name == "broken")).scalar_one()
        conn.execute(update(playbook_versions).where(
            playbook_versions.c.playbook_id == broken_id).values(
            document=BROKEN.replace("finding.vuln_id ==", "finding.colour ==")))
    done = evaluate_events(estate)
    assert (done.events, done.queued) == (16, 1)
    assert list(done.invalid) == ["broken"]
    assert done.invalid["broken"].startswith(
        "condition: finding has no field 'colour' (line 1, column 9;")
    assert _states(estate) == [(15, "queued", 0)]


def test_playbook_run_prints_the_round(estate_with: Build, mailbox: Any, database_url: str,
                                       tmp_path: Path) -> None:
    estate_with(ONE)
    runner = CliRunner()
    env = {"PATCHPILOT_DATABASE_URL": database_url,
           "PATCHPILOT_HOME": str(tmp_path / "home"), "COLUMNS": "250", **mailbox.env}
    result = runner.invoke(app, ["playbook", "run", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert '"events": 16' in result.output and '"sent": 1' in result.output
    result = runner.invoke(app, ["playbook", "run"], env=env, terminal_width=250)
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.replace("│", " ").replace("┃", " ").split())
             for line in result.output.splitlines()]
    assert ("schedules fired events evaluated queued collected sent failed dead postponed "
            "tickets closed") in lines
    assert "0 0 0 0 0 0 0 0 0" in lines
