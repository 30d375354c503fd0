"""``per: owner``: one ticket per CMDB owner of a settled emergency sweep's affected hosts,
against the loopback GitHub and Jira (tests/automation/fake_trackers.py), on SQLite and
PostgreSQL.

The estate is real: the Debian tracker's sope entry (CVE-2025-53603, fixed on Debian 12 in
5.8.0-1+deb12u1), five hosts' inventories matched as the worker does, and their owners
from the CMDB.  ``start_sweep`` answers from the stored inventories; no host has an agent
or an SSH target, so the sweep settles at once and writes its ``sweep_finished`` event.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, delete, select, update

from patchpilot.assets.cmdb import CmdbRecord
from patchpilot.assets.context import set_context
from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.actions.registry import action_named
from patchpilot.automation.deliver import deliver_due
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.automation.secrets import set_secret
from patchpilot.automation.store import save_playbook
from patchpilot.automation.tickets import owner_marker
from patchpilot.clock import now_utc
from patchpilot.db.tables import audit_log, outbox, tickets
from patchpilot.knowledge.update import update_from
from patchpilot.reports.mail import SmtpSettings
from patchpilot.scans.sweeps import SweepQuery, start_sweep
from tests.automation.fake_trackers import FakeGitHub, FakeJira, FakeTracker, Issue
from tests.builders.sweep_estate import (
    BASH,
    FEEDS,
    SOPE_BACKPORT,
    SOPE_OLD,
    inventory,
    match,
)

SETTINGS = DeliverySettings(SmtpSettings(), allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))
KEY = "test-secrets-key-0123456789"
TOKEN = "tok-3f9a-very-secret-7c21"
CVE = "CVE-2025-53603"
ALICE, BOB = "alice@plant1.example", "山田 太郎"
# host -> (packages, owner): two of Alice's hosts affected and one patched (the backport),
# one of Bob's, one nobody owns, and one host the CMDB does not know at all.
HOSTS: dict[str, tuple[tuple[Any, ...], str | None]] = {
    "plant1-web-01": ((*SOPE_OLD, BASH), ALICE),
    "plant1-web-02": ((*SOPE_OLD,), ALICE),
    "plant1-web-03": ((*SOPE_BACKPORT, BASH), ALICE),
    "plant2-db-01": ((*SOPE_OLD, BASH), BOB),
    "spare-01": ((*SOPE_OLD,), None),
}
PLAYBOOK = """\
name: owner-tickets
trigger: {events: [%s]}
condition: %s
actions:
  - type: %s
    with: %s
"""
ON_SWEEP = ("sweep_finished",
            "event.detail.counts.confirmed + event.detail.counts.affected > 0")

Build = Callable[..., tuple[Engine, int]]


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    tracker = FakeGitHub(TOKEN, "plant/web")
    yield tracker
    tracker.stop()


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    tracker = FakeJira(TOKEN, "OPS")
    yield tracker
    tracker.stop()


@pytest.fixture
def sweep_with(engine: Engine, feed_dir: Callable[..., Path]) -> Build:
    """``sweep_with(document)``: store the playbook (by ``sato``), load the knowledge base,
    match the hosts, give them their owners, sweep for CVE-2025-53603; (engine, sweep id)."""

    def build(document: str) -> tuple[Engine, int]:
        with engine.begin() as conn:
            save_playbook(conn, "sato", document)
            set_secret(conn, "test", "bot", TOKEN, KEY)
        assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
        for host, (packages, owner) in HOSTS.items():
            asset_id = match(engine, inventory(host, *packages))
            if host != "spare-01":
                set_context(engine, asset_id, CmdbRecord(
                    where="test", owner=owner, criticality=2,
                    present=frozenset({"owner", "criticality"})), actor="test")
        sweep = start_sweep(engine, SweepQuery(vuln=CVE), created_by="sato")
        assert (sweep.state, sweep.status["affected"], sweep.status["not_affected"]) == (
            "done", 4, 1)
        return engine, sweep.id

    return build


def _with(fake: FakeTracker, project: str, extra: str = "") -> str:
    return f'{{url: "{fake.url}", project: {project}, token_secret: bot, per: owner{extra}}}'


def _deliver(engine: Engine) -> tuple[int, int]:
    done = deliver_due(engine, SETTINGS, now_utc(), secrets_key=KEY)
    return done.sent, done.failed


def _outcome(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        raw = conn.execute(select(outbox.c.outcome).order_by(outbox.c.id.desc())
                           .limit(1)).scalar_one()
    return orjson.loads(raw)  # type: ignore[no-any-return]


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(tickets.c.subject, tickets.c.finding_id, tickets.c.key, tickets.c.state)
            .order_by(tickets.c.id))]


def _again(engine: Engine) -> None:
    """The delivered row taken again (its worker died before recording "sent")."""
    with engine.begin() as conn:
        conn.execute(update(outbox).values(state="failed", next_attempt_at=now_utc()))


def _by_owner(fake: FakeTracker, sweep_id: int) -> dict[str | None, Issue]:
    found = {}
    for owner in (ALICE, BOB, None):
        [issue] = [i for i in fake.issues if owner_marker(sweep_id, owner) in i.labels]
        found[owner] = issue
    return found


def test_one_github_issue_per_owner_listing_their_hosts(sweep_with: Build,
                                                        github: FakeGitHub) -> None:
    engine, sweep_id = sweep_with(PLAYBOOK % (*ON_SWEEP, "github", _with(github, "plant/web")))
    assert evaluate_events(engine).queued == 1
    assert _deliver(engine) == (1, 0)
    assert len(github.issues) == 3
    issues = _by_owner(github, sweep_id)
    alice, bob, nobody = issues[ALICE], issues[BOB], issues[None]
    assert alice.title == f"{CVE}: 2 affected hosts of {ALICE}"
    assert alice.body == f"""\
PatchPilot opened this ticket (playbook owner-tickets, sweep {sweep_id}: {CVE}).

Owner: {ALICE}
Vulnerabilities: {CVE}
Affected hosts (2):
- plant1-web-01: sope 5.8.0-1
- plant1-web-02: sope 5.8.0-1
Remedy:
- sope (Debian:12): update to 5.8.0-1+deb12u1 on 2 hosts
"""
    assert alice.labels == ["patchpilot", owner_marker(sweep_id, ALICE)]
    assert bob.title == f"{CVE}: 1 affected host of {BOB}"
    assert "Affected hosts (1):\n- plant2-db-01: sope 5.8.0-1\n" in bob.body
    assert "on 1 host\n" in bob.body
    assert nobody.title == f"{CVE}: 1 affected host of no owner"
    assert "Owner: none in the CMDB\n" in nobody.body
    assert "- spare-01: sope 5.8.0-1\n" in nobody.body
    assert nobody.labels[1] == f"patchpilot-sweep-{sweep_id}-no-owner"
    # The issues' markers were searched for first, one each.
    assert sorted(s.query["labels"] for s in github.requests("GET")) == sorted(
        owner_marker(sweep_id, o) for o in (ALICE, BOB, None))

    url = "https://github.example/plant/web/issues/"
    expected = [{"owner": ALICE, "key": alice.key, "url": url + str(alice.number),
                 "action": "created"},
                {"owner": BOB, "key": bob.key, "url": url + str(bob.number),
                 "action": "created"},
                {"owner": None, "key": nobody.key, "url": url + str(nobody.number),
                 "action": "created"}]
    assert _outcome(engine) == {"system": "github", "sweep_id": sweep_id,
                                "tickets": expected}
    assert _rows(engine) == [
        (f"sweep:{sweep_id}:owner:{ALICE}", None, alice.key, "open"),
        (f"sweep:{sweep_id}:owner:{BOB}", None, bob.key, "open"),
        (f"sweep:{sweep_id}:owner:", None, nobody.key, "open")]
    with engine.connect() as conn:
        audited = [orjson.loads(d) for d in conn.execute(
            select(audit_log.c.detail).where(audit_log.c.action == "ticket.create")
            .order_by(audit_log.c.id)).scalars()]
    assert [(a["subject"], a["found"]) for a in audited] == [
        (r[0], False) for r in _rows(engine)]

    # Delivered again: nothing is created twice, nothing commented.
    posts = len(github.requests("POST"))
    _again(engine)
    assert _deliver(engine) == (1, 0)
    assert len(github.issues) == 3 and len(github.requests("POST")) == posts
    assert all(i.comments == [] for i in github.issues)
    assert _outcome(engine)["tickets"] == [{**t, "action": "exists"} for t in expected]
    assert len(_rows(engine)) == 3


def test_a_ticket_created_before_a_crash_is_found_by_its_marker(sweep_with: Build,
                                                                github: FakeGitHub) -> None:
    engine, sweep_id = sweep_with(PLAYBOOK % (*ON_SWEEP, "github", _with(github, "plant/web")))
    assert evaluate_events(engine).queued == 1
    assert _deliver(engine) == (1, 0)
    # Bob's issue exists in GitHub, but its worker died before its row was written.
    with engine.begin() as conn:
        conn.execute(delete(tickets).where(tickets.c.subject.like("%" + BOB)))
    _again(engine)
    assert _deliver(engine) == (1, 0)
    assert len(github.issues) == 3
    assert [t["action"] for t in _outcome(engine)["tickets"]] == [
        "exists", "created", "exists"]
    assert sorted(r[0] for r in _rows(engine)) == sorted(
        f"sweep:{sweep_id}:owner:{o}" for o in (ALICE, BOB, ""))


def test_a_failure_part_way_creates_only_the_missing_tickets_on_retry(
        sweep_with: Build, github: FakeGitHub) -> None:
    engine, _ = sweep_with(PLAYBOOK % (*ON_SWEEP, "github", _with(github, "plant/web")))
    assert evaluate_events(engine).queued == 1
    # Alice's search and creation go through; Bob's creation (the fourth call) fails.
    original = github.route
    calls = {"n": 0}

    def flaky(seen: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:
            return 502, {}, {"message": "Server Error"}
        return original(seen)

    github.route = flaky  # type: ignore[method-assign]
    assert _deliver(engine) == (0, 1)
    assert len(github.issues) == 1 and len(_rows(engine)) == 1  # Bob's claim let go
    _again(engine)
    assert _deliver(engine) == (1, 0)
    assert len(github.issues) == 3
    assert [t["action"] for t in _outcome(engine)["tickets"]] == [
        "exists", "created", "created"]


def test_one_jira_issue_per_owner_in_japanese(sweep_with: Build, jira: FakeJira) -> None:
    engine, sweep_id = sweep_with(PLAYBOOK % (*ON_SWEEP, "jira",
                                              _with(jira, "OPS", ", lang: ja")))
    assert evaluate_events(engine).queued == 1
    assert _deliver(engine) == (1, 0)
    issues = _by_owner(jira, sweep_id)
    assert [i.key for i in jira.issues] == ["OPS-1", "OPS-2", "OPS-3"]
    bob = issues[BOB]
    assert bob.title == f"{CVE}: {BOB} の影響ホスト 1 台"
    assert bob.body == f"""\
PatchPilot がこのチケットを作成しました（プレイブック owner-tickets、スイープ {sweep_id}: {CVE}）。

担当者: {BOB}
脆弱性: {CVE}
影響ホスト（1 台）:
- plant2-db-01: sope 5.8.0-1
対処:
- sope（Debian:12）: 5.8.0-1+deb12u1 へ更新（1 台）
"""
    assert issues[ALICE].title == f"{CVE}: {ALICE} の影響ホスト 2 台"
    assert issues[None].title == f"{CVE}: 担当者なし の影響ホスト 1 台"
    assert bob.labels == ["patchpilot", owner_marker(sweep_id, BOB)]
    assert _outcome(engine)["tickets"] == [
        {"owner": o, "key": k, "url": f"{jira.url}/browse/{k}", "action": "created"}
        for o, k in ((ALICE, issues[ALICE].key), (BOB, bob.key), (None, issues[None].key))]
    _again(engine)
    assert _deliver(engine) == (1, 0)
    assert len(jira.issues) == 3 and len(jira.requests("POST")) == 3


def test_per_owner_on_another_event_is_skipped(sweep_with: Build, github: FakeGitHub) -> None:
    engine, _ = sweep_with(PLAYBOOK % (
        "new", f'finding.vuln_id == "{CVE}" && asset.name == "plant2-db-01"', "github",
        _with(github, "plant/web")))
    assert evaluate_events(engine).queued == 1
    assert _deliver(engine) == (1, 0)
    assert _outcome(engine) == {"skipped": "per: owner opens tickets for a settled sweep; "
                                           "the event is new, not sweep_finished"}
    assert github.seen == [] and _rows(engine) == []


def test_a_sweep_with_nothing_affected_opens_nothing(engine: Engine, feed_dir: Any,
                                                     github: FakeGitHub) -> None:
    with engine.begin() as conn:
        save_playbook(conn, "sato", PLAYBOOK % (
            "sweep_finished", "event.detail.counts.not_affected > 0", "github",
            _with(github, "plant/web")))
        set_secret(conn, "test", "bot", TOKEN, KEY)
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    match(engine, inventory("plant1-web-03", *SOPE_BACKPORT))
    sweep = start_sweep(engine, SweepQuery(vuln=CVE), created_by="sato")
    assert evaluate_events(engine).queued == 1
    assert _deliver(engine) == (1, 0)
    assert _outcome(engine) == {"system": "github", "sweep_id": sweep.id, "tickets": []}
    assert github.seen == []


def test_per_owner_is_a_valid_setting_of_every_tracker() -> None:
    for system, project in (("jira", "OPS"), ("github", "a/b"), ("gitlab", "a/b"),
                            ("redmine", "ops")):
        action = action_named(system)
        assert action is not None
        assert action.validate({"url": "https://t.example", "project": project,
                                "token_secret": "t", "per": "owner"}) is None
    assert owner_marker(7, None) == "patchpilot-sweep-7-no-owner"
    assert owner_marker(7, BOB) == (
        "patchpilot-sweep-7-" + hashlib.sha256(BOB.encode()).hexdigest()[:12])


def test_the_shipped_example_opens_the_owner_tickets(sweep_with: Build, jira: FakeJira) -> None:
    example = Path(__file__).parents[2] / "examples/playbooks/sweep-owner-tickets.yaml"
    document = example.read_text(encoding="utf-8").replace(
        "https://jira.example.com", jira.url).replace("jira-bot", "bot")
    engine, sweep_id = sweep_with(document)
    assert evaluate_events(engine).queued == 1
    assert _deliver(engine) == (1, 0)
    assert sorted(i.title for i in jira.issues) == [
        f"{CVE}: 1 affected host of no owner", f"{CVE}: 1 affected host of {BOB}",
        f"{CVE}: 2 affected hosts of {ALICE}"]
    assert [t["owner"] for t in _outcome(engine)["tickets"]] == [ALICE, BOB, None]
    assert isinstance(_by_owner(jira, sweep_id)[ALICE].body, str)  # REST v2: plain text
