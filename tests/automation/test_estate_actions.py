"""The actions that change the estate or start work: set_priority, assign, tag, rescan,
sweep, report -- each through the evaluator and the outbox to its rows, on both
databases, with the exact state they leave."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, func, select, update

from patchpilot.assets.cmdb import CmdbRecord
from patchpilot.assets.context import set_context
from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.actions.registry import action_named
from patchpilot.automation.deliver import deliver_due
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.automation.playbook import PlaybookError, parse_playbook
from patchpilot.clock import aware
from patchpilot.db.tables import (
    audit_log,
    finding_events,
    finding_overrides,
    finding_priority,
    findings,
    jobs,
    outbox,
    sweep_results,
    sweeps,
)
from patchpilot.findings.overrides import set_priority
from patchpilot.reports.mail import SmtpSettings
from patchpilot.scans.groups import add_window, set_ssh_target
from patchpilot.scoring import reasons
from patchpilot.scoring.apply import reprioritise
from patchpilot.scoring.priority import default_config

Build = Callable[..., Engine]
SETTINGS = DeliverySettings(SmtpSettings(host="127.0.0.1", port=1, sender="pp@example.org"))
# Finding 15 of the estate (conftest): CVE-2007-5424, High, on asset 1 (testphp).
ONE = """\
name: {name}
trigger: {{events: [new]}}
condition: finding.vuln_id == "CVE-2007-5424"
actions:
"""
TIER4_REASON = ('{"code":"matrix","priority":4,"severity":"High","tier":4,"asset_known":true,'
                '"tier_known":true,"adjustments":[{"code":"development"}]}')


def _retier(estate: Engine) -> None:
    """Make asset 1 a tier-4 development box and re-prioritise: every finding P4."""
    set_context(estate, 1, CmdbRecord(
        where="test", criticality=4, environment="development", exposure="internal",
        owner="web-owner@plant.example",
        present=frozenset({"criticality", "environment", "exposure", "owner"})),
        actor="test")
    with estate.begin() as conn:
        reprioritise(conn)


def _run(estate_with: Build, name: str, action: str, *, retier: bool = False,
         actions: int = 1) -> Engine:
    estate = estate_with(ONE.format(name=name) + action)
    if retier:
        _retier(estate)
    assert evaluate_events(estate).queued == actions
    done = deliver_due(estate, SETTINGS)
    with estate.connect() as conn:
        rows = conn.execute(select(outbox.c.state, outbox.c.last_error)).all()
    assert (done.sent, [tuple(r) for r in rows]) == (actions, [("sent", None)] * actions)
    return estate


def _outcome(estate: Engine) -> dict[str, Any]:
    with estate.connect() as conn:
        return dict(orjson.loads(conn.execute(select(outbox.c.outcome)).scalar_one()))


def _priority(estate: Engine, finding_id: int) -> tuple[Any, ...]:
    with estate.connect() as conn:
        row = conn.execute(select(finding_priority.c.priority, finding_priority.c.reason,
                                  finding_priority.c.due_date, findings.c.priority_rank,
                                  findings.c.first_seen)
                           .join(findings, findings.c.id == finding_priority.c.finding_id)
                           .where(finding_priority.c.finding_id == finding_id)).one()
    return (row.priority, row.reason, aware(row.due_date) - aware(row.first_seen),
            row.priority_rank)


def _redeliver(estate: Engine) -> None:
    """As if the worker died after the action but before the outbox row was closed."""
    with estate.begin() as conn:
        conn.execute(update(outbox).values(state="queued", next_attempt_at=datetime(
            2000, 1, 1, tzinfo=UTC)))
    assert deliver_due(estate, SETTINGS).sent == 1


# --- set_priority ---------------------------------------------------------------------------

def test_set_priority_raises_the_finding_and_reprioritisation_keeps_it(
        estate_with: Build) -> None:
    estate = _run(estate_with, "raise", '  - type: set_priority\n    with: {priority: P1, '
                  'reason: "IDS alert on {{ asset.name }}"}\n', retier=True)
    with estate.connect() as conn:
        override = conn.execute(select(finding_overrides)).one()
        event = conn.execute(select(finding_events).order_by(finding_events.c.id.desc())
                             .limit(1)).one()
        others = set(conn.execute(select(finding_priority.c.priority)
                                  .where(finding_priority.c.finding_id != 15)).scalars())
    assert (override.finding_id, override.priority, override.assignee, override.tags,
            override.reason, override.set_by) == (
        15, 1, None, None, "IDS alert on testphp", "playbook:raise")
    raised = TIER4_REASON[:-1] + ',"override":1}'
    # P1 with P1's SLA (7 days), the computed reason kept with the override noted.
    assert _priority(estate, 15) == (1, raised, timedelta(days=7), 1)
    assert reasons.reason_text(raised) == (
        "P4: High × tier 4; development; raised to P1 by override")
    assert others == {4}
    assert (event.kind, event.finding_id, event.asset_id, event.actor,
            orjson.loads(event.detail)) == ("priority_changed", 15, 1, "playbook:raise",
                                            {"from": 4, "to": 1})
    assert _outcome(estate) == {"finding_id": 15, "override": 1, "from": 4, "to": 1}
    # Re-prioritising the estate keeps it, and moves nothing (no event).
    with estate.begin() as conn:
        events = conn.execute(select(func.count()).select_from(finding_events)).scalar_one()
        assert reprioritise(conn) == 0
        assert conn.execute(select(func.count()).select_from(finding_events)
                            ).scalar_one() == events
    assert _priority(estate, 15) == (1, raised, timedelta(days=7), 1)
    # An override less urgent than the computed priority loses to it.
    with estate.begin() as conn:
        set_priority(conn, "test", 15, "P4")
        reprioritise(conn)
        event = conn.execute(select(finding_events).order_by(finding_events.c.id.desc())
                             .limit(1)).one()
    assert _priority(estate, 15) == (4, TIER4_REASON, timedelta(days=180), 4)
    assert (event.kind, event.actor, orjson.loads(event.detail)) == (
        "priority_changed", None, {"from": 1, "to": 4})


def test_set_priority_below_the_computed_one_changes_nothing(estate_with: Build) -> None:
    # Tier 1 and internet-facing: computed P1 already, so P3 keeps P1 and moves nothing.
    estate = estate_with(ONE.format(name="lower") + "  - type: set_priority\n"
                         "    with: {priority: 3}\n")
    with estate.begin() as conn:
        reprioritise(conn)
    before = _priority(estate, 15)
    assert before[0] == 1
    assert evaluate_events(estate).queued == 1
    assert deliver_due(estate, SETTINGS).sent == 1
    assert _priority(estate, 15) == before
    assert _outcome(estate) == {"finding_id": 15, "override": 3, "from": 1, "to": 1}
    with estate.connect() as conn:
        assert conn.execute(select(func.count()).select_from(finding_events).where(
            finding_events.c.kind == "priority_changed")).scalar_one() == 15  # the retier


def test_reprioritise_keeps_overrides_for_one_asset_and_on_ssvc(estate: Engine) -> None:
    _retier(estate)
    with estate.begin() as conn:
        set_priority(conn, "test", 3, 2, "by hand")
        set_priority(conn, "test", 4, "p1")
        reprioritise(conn, asset_id=1)
    assert [_priority(estate, i)[0] for i in (2, 3, 4, 5)] == [4, 2, 1, 4]
    assert _priority(estate, 3)[2] == timedelta(days=30)
    ssvc = dataclasses.replace(default_config(), method="ssvc")
    with estate.begin() as conn:
        reprioritise(conn, ssvc)
    computed = _priority(estate, 2)
    raised = _priority(estate, 4)
    assert computed[0] > 1
    assert raised[0] == 1
    assert raised[1] == computed[1][:-1] + ',"override":1}'
    assert reasons.reason_text(raised[1]).endswith("; raised to P1 by override")


# --- assign and tag -------------------------------------------------------------------------

def test_assign_renders_the_owner(estate_with: Build) -> None:
    estate = _run(estate_with, "owner", "  - type: assign\n    with: {to: '{{ asset.owner }}'}\n")
    with estate.connect() as conn:
        row = conn.execute(select(finding_overrides)).one()
        logged = conn.execute(select(audit_log.c.actor, audit_log.c.detail).where(
            audit_log.c.action == "finding.override.assign")).one()
    assert (row.finding_id, row.priority, row.assignee, row.tags, row.set_by) == (
        15, None, "web-owner@plant.example", None, "playbook:owner")
    assert (logged.actor, orjson.loads(logged.detail)) == (
        "playbook:owner", {"assignee": "web-owner@plant.example"})
    assert _outcome(estate) == {"finding_id": 15, "assignee": "web-owner@plant.example"}


def test_tag_adds_sorted_unique_tags_and_keeps_the_rest(estate_with: Build) -> None:
    estate = estate_with(ONE.format(name="tagger")
                         + "  - type: tag\n    with: {tags: [ids, '{{ asset.environment }}', "
                           "ids]}\n")
    with estate.begin() as conn:
        set_priority(conn, "test", 15, "P2", "earlier")
    assert evaluate_events(estate).queued == 1
    assert deliver_due(estate, SETTINGS).sent == 1
    with estate.connect() as conn:
        row = conn.execute(select(finding_overrides)).one()
    assert (row.priority, row.reason, row.tags, row.set_by) == (
        2, "earlier", '["ids","production"]', "playbook:tagger")
    assert _outcome(estate) == {"finding_id": 15, "tags": ["ids", "production"]}


def test_the_finding_api_shows_assignee_tags_and_override(estate_with: Build,
                                                          tmp_path: Any,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from fastapi.testclient import TestClient

    from patchpilot.server.app import create_app
    from patchpilot.server.security import Role, create_api_token

    estate = _run(estate_with, "both", "  - type: assign\n    with: {to: soc}\n"
                  "  - type: tag\n    with: {tags: [b, a]}\n", actions=2)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path))
    token = create_api_token(estate, user="v", role=Role.VIEWER)[0]
    with TestClient(create_app(estate)) as client:
        body = client.get("/api/findings/15", headers={"Authorization": f"Bearer {token}"}
                          ).json()
        plain = client.get("/api/findings/14", headers={"Authorization": f"Bearer {token}"}
                           ).json()
    assert (body["assignee"], body["tags"]) == ("soc", ["a", "b"])
    assert {k: v for k, v in body["override"].items() if k != "set_at"} == {
        "priority": None, "assignee": "soc", "tags": ["a", "b"], "reason": None,
        "set_by": "playbook:both"}
    assert (plain["assignee"], plain["tags"], plain["override"]) == (None, [], None)


# --- rescan ---------------------------------------------------------------------------------

def test_rescan_queues_the_assets_ssh_scan_in_its_window_once(estate_with: Build) -> None:
    estate = estate_with(ONE.format(name="again") + "  - type: rescan\n")
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    with estate.begin() as conn:
        set_ssh_target(conn, "test", 1, "scan@192.0.2.10")
        add_window(conn, "test", 1, starts_at=start, ends_at=start + timedelta(hours=2))
    assert evaluate_events(estate).queued == 1
    assert deliver_due(estate, SETTINGS).sent == 1
    _redeliver(estate)  # the record on the outbox row: no second job
    with estate.connect() as conn:
        job = conn.execute(select(jobs).where(jobs.c.kind == "ssh_scan")).one()
        logged = conn.execute(select(audit_log.c.actor, audit_log.c.target).where(
            audit_log.c.action == "asset.scan_now")).all()
    assert (job.asset_id, job.group_id, job.state, aware(job.run_after), job.priority,
            orjson.loads(job.payload)) == (
        1, 1, "queued", start, 0, {"reason": "playbook", "playbook": "again", "asset_id": 1,
                                   "target": "scan@192.0.2.10"})
    assert logged == [("playbook:again", "asset:1")]
    assert _outcome(estate) == {"asset_id": 1, "outcome": "ssh_scan",
                                "run_after": start.isoformat(), "group_id": 1,
                                "job_id": job.id}


def test_rescan_of_an_unreachable_asset_says_so(estate_with: Build) -> None:
    estate = _run(estate_with, "none", "  - type: rescan\n    with: {override: true, "
                  "reason: IDS alert}\n")
    outcome = _outcome(estate)
    assert (outcome["outcome"], outcome["job_id"], outcome["group_id"]) == (
        "unreachable", None, 1)
    with estate.connect() as conn:
        assert conn.execute(select(func.count()).select_from(jobs)).scalar_one() == 0
        detail = conn.execute(select(audit_log.c.detail).where(
            audit_log.c.action == "asset.scan_now.override")).scalar_one()
    assert orjson.loads(detail)["reason"] == "IDS alert"


# --- sweep ----------------------------------------------------------------------------------

def test_sweep_starts_one_sweep_for_the_finding_and_joins_it_after(estate_with: Build
                                                                    ) -> None:
    estate = _run(estate_with, "kev", "  - type: sweep\n")
    with estate.connect() as conn:
        sweep = conn.execute(select(sweeps)).one()
        results = conn.execute(select(sweep_results.c.asset_id, sweep_results.c.initial,
                                      sweep_results.c.status)).all()
        logged = conn.execute(select(audit_log.c.actor, audit_log.c.target).where(
            audit_log.c.action == "sweep.start")).all()
    assert (orjson.loads(sweep.query), sweep.created_by, sweep.state) == (
        {"vuln": "CVE-2007-5424"}, "playbook:kev", "done")
    assert results == [(1, "affected", "affected")]
    assert logged == [("playbook:kev", str(sweep.id))]
    assert _outcome(estate) == {"sweep_id": sweep.id, "sweeps": {"CVE-2007-5424": sweep.id},
                                "joined": []}
    _redeliver(estate)
    with estate.connect() as conn:
        assert conn.execute(select(func.count()).select_from(sweeps)).scalar_one() == 1


def test_sweep_joins_a_running_sweep_and_fails_on_an_unknown_id(estate_with: Build) -> None:
    estate = estate_with(ONE.format(name="many") + "  - type: sweep\n    with: {vulns: "
                         "['{{ finding.vuln_id }}', CVE-1999-0001], deadline_minutes: 5}\n")
    with estate.begin() as conn:
        conn.execute(sweeps.insert().values(
            query='{"vuln":"CVE-2007-5424"}', created_by="sato", created_at=datetime.now(UTC),
            deadline=datetime.now(UTC) + timedelta(hours=1), state="running", summary="{}"))
    assert evaluate_events(estate).queued == 1
    done = deliver_due(estate, SETTINGS)
    with estate.connect() as conn:
        row = conn.execute(select(outbox.c.state, outbox.c.last_error, outbox.c.outcome)).one()
        count = conn.execute(select(func.count()).select_from(sweeps)).scalar_one()
    assert (done.failed, row.state, count) == (1, "failed", 1)
    assert row.last_error.startswith("sweep: CVE-1999-0001: CVE-1999-0001: unknown to the "
                                     "knowledge base")
    # The joined one is recorded: a retry goes on with the rest only.
    assert orjson.loads(row.outcome) == {"sweeps": {"CVE-2007-5424": 1},
                                         "joined": ["CVE-2007-5424"]}


# --- report ---------------------------------------------------------------------------------

def test_report_queues_a_report_job_once(estate_with: Build) -> None:
    estate = _run(estate_with, "weekly", "  - type: report\n    with: {kind: technical, "
                  "format: xlsx, lang: ja, group: '{{ asset.groups[0] }}'}\n")
    _redeliver(estate)
    with estate.connect() as conn:
        job = conn.execute(select(jobs)).one()
        logged = conn.execute(select(audit_log.c.actor, audit_log.c.target).where(
            audit_log.c.action == "report.job.start")).all()
    payload = orjson.loads(job.payload)
    assert (job.kind, job.state, payload["kind"], payload["format"], payload["lang"],
            payload["group"], payload["by"], payload["total"]) == (
        "report_file", "queued", "technical", "xlsx", "ja", "dmz", "playbook:weekly", 15)
    assert logged == [("playbook:weekly", f"job:{job.id}")]
    assert _outcome(estate) == {"job_id": job.id, "kind": "technical", "format": "xlsx",
                                "lang": "ja", "group": "dmz", "service": None}


# --- validation -----------------------------------------------------------------------------

@pytest.mark.parametrize(("action", "problem"), [
    ("set_priority", "priority"), ("set_priority\n    with: {priority: P5}", "priority"),
    ("set_priority\n    with: {priority: 1, why: x}", "why"),
    ("assign", "to"), ("assign\n    with: {to: '{{ asset.owner '}", "to"),
    ("tag\n    with: {tags: []}", "tags"),
    ("rescan\n    with: {override: true}", "reason"),
    ("sweep\n    with: {deadline_minutes: 0}", "deadline_minutes"),
    ("report\n    with: {format: docx}", "format"),
    ("report\n    with: {group: a, service: b}", "service"),
])
def test_bad_settings_are_refused_naming_the_key(action: str, problem: str) -> None:
    with pytest.raises(PlaybookError) as refused:
        parse_playbook(ONE.format(name="bad") + f"  - type: {action}\n")
    assert f"with.{problem}" in str(refused.value) or f"{problem}:" in str(refused.value), \
        str(refused.value)


def test_every_estate_action_is_registered() -> None:
    for name in ("set_priority", "assign", "tag", "rescan", "sweep", "report"):
        action = action_named(name)
        assert action is not None
        assert action.target({}, {}) == f"patchpilot:{name}"
