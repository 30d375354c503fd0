"""Evaluation over real stored events: exact outbox rows, exactly once, a dry run that
writes nothing, the store's versions and audit rows."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import Engine, func, select

from patchpilot.automation.evaluate import evaluate_events, simulate
from patchpilot.automation.store import (
    UnknownPlaybook,
    get_playbook,
    list_playbooks,
    save_playbook,
    set_enabled,
)
from patchpilot.clock import now_utc
from patchpilot.db.tables import audit_log, outbox, playbook_cursor, playbook_versions

TIER1 = """\
name: high-on-tier1
trigger: {events: [new, reopened]}
condition: >-
  finding.severity == "High" && asset.criticality == 1 && "dmz" in asset.groups
  && "web" in asset.tags && finding.vuln_id.startsWith("CVE-2007-")
actions:
  - type: email
    with: {to: ["{{ asset.owner }}"], lang: ja}
  - type: webhook
    with: {url: "https://soc.example.com/h", secret_env: SOC_HOOK_KEY}
"""
IMPORTS = """\
name: imports
trigger: {events: [import_finished]}
condition: event.detail.new > 10
actions:
  - type: webhook
    with: {url: "https://soc.example.com/imports", secret_env: SOC_HOOK_KEY}
"""
# 2007 CVEs of the report, in event order (findings 10-15, events 10-15).
CVE_2007 = ["CVE-2007-0448", "CVE-2007-1381", "CVE-2007-1584", "CVE-2007-1888",
            "CVE-2007-2844", "CVE-2007-5424"]


def _outbox(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(outbox.c.playbook_id, outbox.c.playbook_version, outbox.c.event_id,
                   outbox.c.action_index, outbox.c.action_type, outbox.c.subject,
                   outbox.c.state, outbox.c.attempts).order_by(outbox.c.id))]


def test_evaluation_queues_each_action_once(estate_with: Callable[..., Engine]) -> None:
    estate = estate_with(TIER1, IMPORTS)
    done = evaluate_events(estate)
    assert (done.events, done.matches, done.queued, done.cursor,
            done.condition_errors) == (16, 13, 13, 16, {})
    # high-on-tier1 is playbook 1: two actions for each 2007 finding; imports (2) once.
    assert _outbox(estate) == [
        *[(1, 1, event, index, kind, f"finding:{event}", "queued", 0)
          for event in range(10, 16)
          for index, kind in ((0, "email"), (1, "webhook"))],
        (2, 1, 16, 0, "webhook", "event:16", "queued", 0)]
    with estate.connect() as conn:
        payload = orjson.loads(conn.execute(select(outbox.c.payload)
                                            .where(outbox.c.event_id == 10)).first()[0])
        cursor = conn.execute(select(playbook_cursor.c.event_id)).scalar_one()
    assert cursor == 16
    assert payload == {
        "playbook": "high-on-tier1",
        "event": {"id": 10, "kind": "new", "at": payload["event"]["at"],
                  "producer": "importer:tenable", "detail": None},
        "finding": {"id": 10, "vuln_id": CVE_2007[0], "severity": "High", "cvss_score": 7.5,
                    "known_exploited": False, "epss_score": None, "state": "open",
                    "package": "tcp/80", "ecosystem": "network", "priority": 3},
        "asset": {"id": 1, "name": "testphp", "criticality": 1, "exposure": "internet-facing",
                  "environment": "production", "owner": "web-owner@plant.example",
                  "groups": ["dmz"], "tags": ["php", "web"]}}
    # The same events again (the cursor put back): nothing more is queued.
    with estate.begin() as conn:
        conn.execute(playbook_cursor.update().values(event_id=0))
    again = evaluate_events(estate)
    assert (again.events, again.matches, again.queued) == (16, 13, 0)
    assert len(_outbox(estate)) == 13
    # And with the cursor where it is, nothing is read at all.
    assert evaluate_events(estate).events == 0


def test_a_disabled_playbook_queues_nothing_and_a_failing_condition_is_counted(
        estate_with: Callable[..., Engine]) -> None:
    # asset.criticality is null on an import_finished event: <= fails, not matches.
    estate = estate_with(TIER1, IMPORTS.replace("event.detail.new > 10",
                                                "asset.criticality <= 2"))
    with estate.begin() as conn:
        set_enabled(conn, "sato", "high-on-tier1", False)
    done = evaluate_events(estate)
    assert (done.events, done.queued, done.condition_errors) == (16, 0, {"imports": 1})


def test_a_playbook_acts_from_its_storing_on(estate: Engine) -> None:
    # Stored after the import: the 16 events are history (the dry run shows them).
    with estate.begin() as conn:
        save_playbook(conn, "sato", TIER1)
        assert conn.execute(select(playbook_cursor.c.event_id)).scalar_one() == 16
    done = evaluate_events(estate)
    assert (done.events, done.queued, done.cursor) == (0, 0, 16)
    assert _outbox(estate) == []


def test_dry_run_writes_nothing(estate: Engine) -> None:
    with estate.connect() as conn:
        before = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
        found = simulate(conn, TIER1, now_utc() - timedelta(days=30))
        later = simulate(conn, TIER1, now_utc() + timedelta(minutes=1))
        after = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    assert [(m.event.id, m.payload["finding"]["vuln_id"], m.action_index, m.action_type)
            for m in found] == [(event, CVE_2007[event - 10], index, kind)
                                for event in range(10, 16)
                                for index, kind in ((0, "email"), (1, "webhook"))]
    assert later == []
    assert before == after
    assert _outbox(estate) == []
    with estate.connect() as conn:
        assert conn.execute(select(func.count()).select_from(playbook_cursor)).scalar() == 0


def test_store_versions_and_audit(engine: Engine) -> None:
    with engine.begin() as conn:
        first, created = save_playbook(conn, "sato", TIER1)
        same, created_again = save_playbook(conn, "sato", TIER1)
        second, _ = save_playbook(conn, "suzuki", TIER1.replace("lang: ja", "lang: en"))
        off = set_enabled(conn, "suzuki", "high-on-tier1", False)
        listed = [p.to_dict() for p in list_playbooks(conn)]
        versions = conn.execute(select(playbook_versions.c.version,
                                       playbook_versions.c.created_by)
                                .order_by(playbook_versions.c.version)).all()
        audited = conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.target)
                               .order_by(audit_log.c.id)).all()
        with pytest.raises(UnknownPlaybook) as caught:
            get_playbook(conn, "nope")
    assert (created, created_again) == (True, False)
    assert (first.version, same.version, second.version, off.version) == (1, 1, 2, 2)
    assert (first.enabled, off.enabled) == (True, False)
    assert "lang: en" in off.document
    assert [tuple(v) for v in versions] == [(1, "sato"), (2, "suzuki")]
    assert [tuple(a) for a in audited] == [
        ("sato", "playbook.add", "playbook:high-on-tier1"),
        ("suzuki", "playbook.update", "playbook:high-on-tier1"),
        ("suzuki", "playbook.disable", "playbook:high-on-tier1")]
    assert [(p["name"], p["enabled"], p["version"], p["events"], p["actions"])
            for p in listed] == [("high-on-tier1", False, 2, ["new", "reopened"],
                                  ["email", "webhook"])]
    assert str(caught.value) == "name: no playbook named 'nope'"


def test_two_evaluators_at_once_queue_each_action_once(
        estate_with: Callable[..., Engine]) -> None:
    estate = estate_with(TIER1, IMPORTS)
    results: list[object] = []

    def run() -> None:
        try:
            results.append(evaluate_events(estate, limit=4))
        except Exception as exc:  # noqa: BLE001 - shown by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(not isinstance(r, Exception) for r in results), results
    # Every event read once between them, every action queued once.
    assert len(results) == 2
    assert sum(r.events for r in results) == 16  # type: ignore[attr-defined]
    assert sum(r.queued for r in results) == 13  # type: ignore[attr-defined]
    assert len(_outbox(estate)) == 13
