"""Ticket actions against loopback trackers that answer like Jira (REST v2 and v3), Redmine,
GitHub and GitLab (tests/automation/fake_trackers.py), on SQLite and PostgreSQL.

The estate is the imported Nessus report (finding 15: CVE-2007-5424, High, on ``testphp``);
events are written as the flow writes them (``findings.events.record_event``), evaluated,
and delivered through the outbox as a worker does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select, update

from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.actions.registry import action_named
from patchpilot.automation.deliver import backoff, deliver_due
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.automation.secrets import set_secret
from patchpilot.automation.ticket_sync import sync_tickets
from patchpilot.automation.tickets import PENDING_TIMEOUT, marker_of
from patchpilot.clock import now_utc
from patchpilot.db.tables import audit_log, findings, outbox, tickets
from patchpilot.findings.events import record_event
from patchpilot.reports.mail import SmtpSettings
from patchpilot.server.security import Role, create_api_token
from tests.automation.fake_trackers import (
    FakeGitHub,
    FakeGitLab,
    FakeJira,
    FakeRedmine,
    FakeTracker,
    Issue,
)
from tests.builders.sessions import role_client, sign_in

Build = Callable[..., Engine]
SETTINGS = DeliverySettings(SmtpSettings(), allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))
KEY = "test-secrets-key-0123456789"
TOKEN = "tok-3f9a-very-secret-7c21"
FINDING = 15  # CVE-2007-5424 on testphp
PLAYBOOK = """\
name: tickets
trigger: {events: [new, reopened, fixed, priority_changed]}
condition: finding.vuln_id == "CVE-2007-5424"
actions:
  - type: %s
    with: %s
"""
EN_TITLE = "CVE-2007-5424 on testphp: tcp/80 (High)"
JA_TITLE = "testphp の CVE-2007-5424: tcp/80（High）"
MARKER = "patchpilot-finding-15"


@dataclass
class Case:
    """One tracker: its fake, the action's settings, and what its new ticket holds."""

    id: str
    system: str
    make: Callable[[str], FakeTracker]
    with_: Callable[[FakeTracker], str]
    project: str
    created: Callable[[FakeTracker, Issue], None]
    unauthorised: str
    seed: Callable[[FakeTracker], Issue]


def _jira_v2(fake: FakeTracker, issue: Issue) -> None:
    assert issue.title == EN_TITLE
    assert isinstance(issue.body, str)
    assert "Vulnerability: CVE-2007-5424, High (CVSS 7.5)" in issue.body
    assert "Asset: testphp (tier 1, production)" in issue.body
    assert issue.labels == ["patchpilot", MARKER]
    assert issue.extra == {"issuetype": {"name": "Bug"}}
    [search] = [s for s in fake.requests("GET") if "search" in s.path]
    assert search.path == "/rest/api/2/search"
    assert search.query["jql"] == f'project = "PROJ" AND labels = "{MARKER}"'
    [create] = fake.requests("POST")
    assert create.path == "/rest/api/2/issue"
    assert create.headers["authorization"] == f"Bearer {TOKEN}"


def _jira_v3(fake: FakeTracker, issue: Issue) -> None:
    assert issue.title == JA_TITLE
    assert issue.body["type"] == "doc" and issue.body["version"] == 1
    texts = [p["content"][0]["text"] for p in issue.body["content"]]
    assert "脆弱性: CVE-2007-5424、High（CVSS 7.5）" in texts
    assert all(p["type"] == "paragraph" for p in issue.body["content"])
    assert issue.labels == ["patchpilot", MARKER, "security"]
    assert issue.extra == {"issuetype": {"name": "Task"}}
    [search] = [s for s in fake.requests("GET") if "search" in s.path]
    assert search.path == "/rest/api/3/search/jql"
    [create] = fake.requests("POST")
    assert create.path == "/rest/api/3/issue"
    assert create.headers["authorization"].startswith("Basic ")


def _redmine(fake: FakeTracker, issue: Issue) -> None:
    assert issue.title == f"{EN_TITLE} [{MARKER}]"
    assert "Package: tcp/80 (network)" in issue.body
    assert issue.extra == {"project_id": "ops", "tracker_id": 1}
    [search] = fake.requests("GET")
    assert search.query == {"project_id": "ops", "subject": f"~[{MARKER}]",
                            "status_id": "*", "limit": "25"}
    [create] = fake.requests("POST")
    assert create.headers["x-redmine-api-key"] == TOKEN


def _github(fake: FakeTracker, issue: Issue) -> None:
    assert issue.title == EN_TITLE
    assert "Known exploited: no" in issue.body
    assert issue.labels == ["patchpilot", MARKER, "security"]
    [search] = fake.requests("GET")
    assert (search.path, search.query["labels"], search.query["state"]) == (
        "/repos/plant/web/issues", MARKER, "all")
    [create] = fake.requests("POST")
    assert create.headers["authorization"] == f"Bearer {TOKEN}"
    assert create.headers["x-github-api-version"] == "2022-11-28"


def _gitlab(fake: FakeTracker, issue: Issue) -> None:
    assert issue.title == EN_TITLE
    assert "Priority: P3" in issue.body
    assert issue.labels == ["patchpilot", MARKER]
    [search] = fake.requests("GET")
    assert search.path == "/api/v4/projects/infra%2Fweb/issues"
    assert (search.query["labels"], search.query["scope"]) == (MARKER, "all")
    [create] = fake.requests("POST")
    assert create.json["labels"] == f"patchpilot,{MARKER}"
    assert create.headers["private-token"] == TOKEN


CASES = [
    Case("jira-v2", "jira", lambda t: FakeJira(t),
         lambda f: f'{{url: "{f.url}", project: PROJ, token_secret: bot}}', "PROJ", _jira_v2,
         "jira: 127.0.0.1 answered 401: You are not authenticated. Authentication required "
         "to perform this operation.",
         lambda f: f.add("by a worker that died", "x", ["patchpilot", MARKER])),
    Case("jira-v3", "jira", lambda t: FakeJira(t, user="bot@plant.example"),
         lambda f: (f'{{url: "{f.url}/", project: PROJ, token_secret: bot, api: 3, '
                    f'user: bot@plant.example, issue_type: Task, labels: [security], '
                    f'lang: ja}}'), "PROJ", _jira_v3,
         "jira: 127.0.0.1 answered 401: You are not authenticated. Authentication required "
         "to perform this operation.",
         lambda f: f.add("by a worker that died", {"type": "doc", "version": 1, "content": []},
                         ["patchpilot", MARKER])),
    Case("redmine", "redmine", lambda t: FakeRedmine(t, "ops"),
         lambda f: f'{{url: "{f.url}", project: ops, token_secret: bot, tracker_id: 1}}',
         "ops", _redmine, "redmine: 127.0.0.1 answered 401: Unauthorized",
         lambda f: f.add(f"by a worker that died [{MARKER}]", "x", [])),
    Case("github", "github", lambda t: FakeGitHub(t, "plant/web"),
         lambda f: (f'{{url: "{f.url}", project: plant/web, token_secret: bot, '
                    f'labels: [security]}}'), "plant/web", _github,
         "github: 127.0.0.1 answered 401: Bad credentials",
         lambda f: f.add("by a worker that died", "x", ["patchpilot", MARKER])),
    Case("gitlab", "gitlab", lambda t: FakeGitLab(t, "infra/web"),
         lambda f: f'{{url: "{f.url}", project: infra/web, token_secret: bot}}',
         "infra/web", _gitlab, "gitlab: 127.0.0.1 answered 401: 401 Unauthorized",
         lambda f: f.add("by a worker that died", "x", ["patchpilot", MARKER])),
]


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def fake(case: Case) -> Iterator[FakeTracker]:
    tracker = case.make(TOKEN)
    yield tracker
    tracker.stop()


def _estate(estate_with: Build, case: Case, fake: FakeTracker, *,
            token: str = TOKEN, document: str | None = None) -> Engine:
    engine = estate_with(document or PLAYBOOK % (case.system, case.with_(fake)))
    with engine.begin() as conn:
        set_secret(conn, "test", "bot", token, KEY)
    assert evaluate_events(engine).queued == 1
    return engine


def _event(engine: Engine, kind: str, finding_id: int = FINDING, **detail: Any) -> None:
    with engine.begin() as conn:
        record_event(conn, kind, finding_id=finding_id, asset_id=1, detail=detail or None)
    assert evaluate_events(engine).queued == 1


def _deliver(engine: Engine, when: timedelta = timedelta(0)) -> tuple[int, int]:
    done = deliver_due(engine, SETTINGS, now_utc() + when, secrets_key=KEY)
    return done.sent, done.failed


def _last(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as conn:
        r = conn.execute(select(outbox.c.state, outbox.c.attempts, outbox.c.last_error,
                                outbox.c.outcome).order_by(outbox.c.id.desc()).limit(1)).one()
    return r.state, r.attempts, r.last_error, orjson.loads(r.outcome) if r.outcome else None


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(tickets.c.system, tickets.c.target, tickets.c.subject, tickets.c.finding_id,
                   tickets.c.key, tickets.c.url, tickets.c.state,
                   tickets.c.closed_at.is_not(None)).order_by(tickets.c.id))]


def _audits(engine: Engine, prefix: str) -> list[tuple[str, str, dict[str, Any]]]:
    with engine.connect() as conn:
        return [(r.action, r.target, orjson.loads(r.detail)) for r in conn.execute(
            select(audit_log).where(audit_log.c.action.like(prefix + "%"))
            .order_by(audit_log.c.id))]


def _url(fake: FakeTracker, issue: Issue) -> str:
    if isinstance(fake, FakeJira):
        return f"{fake.url}/browse/{issue.key}"
    if isinstance(fake, FakeRedmine):
        return f"{fake.url}/issues/{issue.number}"
    if isinstance(fake, FakeGitHub):
        return f"https://github.example/plant/web/issues/{issue.number}"
    return f"https://gitlab.example/infra/web/-/issues/{issue.number}"


# --- per tracker -----------------------------------------------------------------------------

def test_a_new_finding_opens_one_ticket(estate_with: Build, case: Case,
                                        fake: FakeTracker) -> None:
    engine = _estate(estate_with, case, fake)
    assert _deliver(engine) == (1, 0)
    [issue] = fake.issues
    case.created(fake, issue)
    target = f"{case.system}:{fake.url}/{case.project}"
    assert _rows(engine) == [(case.system, target, "finding:15", FINDING, issue.key,
                              _url(fake, issue), "open", False)]
    assert _last(engine) == ("sent", 1, None, {"system": case.system, "key": issue.key,
                                                "url": _url(fake, issue),
                                                "action": "created"})
    assert _audits(engine, "ticket.") == [("ticket.create", "ticket:1", {
        "system": case.system, "key": issue.key, "url": _url(fake, issue),
        "subject": "finding:15", "found": False})]
    with engine.connect() as conn:
        assert conn.execute(select(outbox.c.target)).scalar_one() == target

    # The same events evaluated again queue nothing; the same row delivered again (a
    # worker that died before recording "sent") comments on the one ticket.
    assert evaluate_events(engine).queued == 0
    with engine.begin() as conn:
        conn.execute(update(outbox).values(state="failed", next_attempt_at=now_utc()))
    assert _deliver(engine) == (1, 0)
    assert len(fake.issues) == 1
    assert len(issue.comments) == 1
    assert _last(engine)[3]["action"] == "commented"
    assert len(_rows(engine)) == 1


def test_fixed_closes_and_reopened_reopens(estate_with: Build, case: Case,
                                           fake: FakeTracker) -> None:
    engine = _estate(estate_with, case, fake)
    assert _deliver(engine) == (1, 0)
    [issue] = fake.issues
    _event(engine, "priority_changed", **{"from": 3, "to": 2})
    assert _deliver(engine) == (1, 0)
    assert (_last(engine)[3]["action"], issue.closed, len(issue.comments)) == (
        "commented", False, 1)

    _event(engine, "fixed")
    assert _deliver(engine) == (1, 0)
    assert _last(engine)[3] == {"system": case.system, "key": issue.key,
                                "url": _url(fake, issue), "action": "closed"}
    assert issue.closed and len(issue.comments) == 2
    fixed_comment = issue.comments[-1]
    text = (" ".join(p["content"][0]["text"] for p in fixed_comment["content"])
            if isinstance(fixed_comment, dict) else fixed_comment)
    assert ("修正済み" if case.id == "jira-v3" else "fixed -- no scanner reports "
            "CVE-2007-5424 on testphp any more") in text
    assert _rows(engine)[0][6:] == ("closed", True)

    _event(engine, "reopened")
    assert _deliver(engine) == (1, 0)
    assert _last(engine)[3]["action"] == "reopened"
    assert not issue.closed and len(issue.comments) == 3
    assert _rows(engine)[0][6:] == ("open", False)
    assert len(fake.issues) == 1
    assert [a for a, _, _ in _audits(engine, "ticket.")] == [
        "ticket.create", "ticket.close", "ticket.reopen"]


def test_rate_limited_then_delivered(estate_with: Build, case: Case,
                                     fake: FakeTracker) -> None:
    engine = _estate(estate_with, case, fake)
    fake.fail_next(429, {"message": "API rate limit exceeded"}, {"Retry-After": "30"})
    assert _deliver(engine) == (0, 1)
    assert _last(engine)[:3] == (
        "failed", 1, f"{case.system}: 127.0.0.1 is limiting requests (429, retry after 30)")
    assert fake.issues == [] and _rows(engine) == []  # the claim was let go
    assert _deliver(engine, backoff(1) + timedelta(seconds=1)) == (1, 0)
    assert _last(engine)[0] == "sent" and _last(engine)[3]["action"] == "created"
    assert len(fake.issues) == 1
    assert [r[6] for r in _rows(engine)] == ["open"]


def test_a_refused_token_fails_with_the_trackers_message(estate_with: Build, case: Case,
                                                         fake: FakeTracker) -> None:
    engine = _estate(estate_with, case, fake, token="tok-wrong-0000-1111")
    assert _deliver(engine) == (0, 1)
    state, attempts, error, _ = _last(engine)
    assert (state, attempts, error) == ("failed", 1, case.unauthorised)
    with engine.connect() as conn:
        logged = str(conn.execute(select(audit_log.c.detail)).all())
    assert "tok-wrong" not in logged and "tok-wrong" not in error
    assert fake.issues == [] and _rows(engine) == []


def test_the_marker_finds_a_ticket_a_dead_worker_created(estate_with: Build, case: Case,
                                                         fake: FakeTracker) -> None:
    # The tracker created the ticket, then the worker died before writing the row.
    seeded = case.seed(fake)
    engine = _estate(estate_with, case, fake)
    assert _deliver(engine) == (1, 0)
    assert fake.issues == [seeded]
    assert fake.requests("POST") == []
    assert _rows(engine)[0][4:7] == (seeded.key, _url(fake, seeded), "open")
    assert _last(engine)[3]["action"] == "created"
    assert _audits(engine, "ticket.")[0][2]["found"] is True


def test_sync_records_a_ticket_closed_in_the_tracker(estate_with: Build, case: Case,
                                                      fake: FakeTracker) -> None:
    engine = _estate(estate_with, case, fake)
    assert _deliver(engine) == (1, 0)
    [issue] = fake.issues
    issue.closed = True  # a person closed it in the tracker
    now = now_utc()
    early = sync_tickets(engine, SETTINGS, KEY, now + timedelta(minutes=1))
    assert (early.checked, early.closed, early.failed) == (0, 0, 0)  # polled at most every 15 min
    done = sync_tickets(engine, SETTINGS, KEY, now + timedelta(minutes=16))
    assert (done.checked, done.closed, done.failed) == (1, 1, 0)
    assert _rows(engine)[0][6:] == ("closed", True)
    [(action, target, detail)] = _audits(engine, "ticket.closed")
    assert (action, target, detail["key"], detail["finding_id"]) == (
        "ticket.closed_remotely", "ticket:1", issue.key, FINDING)
    again = sync_tickets(engine, SETTINGS, KEY, now + timedelta(hours=2))
    assert again.checked == 0  # closed tickets are not polled
    # Reported again: the closed ticket is reopened.
    _event(engine, "reopened")
    assert _deliver(engine) == (1, 0)
    assert _last(engine)[3]["action"] == "reopened" and not issue.closed


# --- one tracker suffices --------------------------------------------------------------------

@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    tracker = FakeGitHub(TOKEN, "plant/web")
    yield tracker
    tracker.stop()


GITHUB = CASES[3]


def test_a_fresh_claim_waits_and_a_stale_one_is_taken_over(estate_with: Build,
                                                           github: FakeGitHub) -> None:
    engine = _estate(estate_with, GITHUB, github)
    target = f"github:{github.url}/plant/web"
    now = now_utc()
    with engine.begin() as conn:
        conn.execute(tickets.insert().values(
            system="github", target=target, subject="finding:15", finding_id=FINDING,
            key="", state="pending", created_at=now, updated_at=now))
    assert _deliver(engine) == (0, 1)
    assert _last(engine)[2] == ("github: the ticket of finding:15 is being created by "
                                "another delivery; retried")
    assert github.seen == []
    # Its worker died after the tracker created the ticket: taken over, found, recorded.
    seeded = GITHUB.seed(github)
    assert _deliver(engine, PENDING_TIMEOUT + timedelta(minutes=1)) == (1, 0)
    assert github.issues == [seeded]
    assert _rows(engine)[0][4:7] == ("#1", "https://github.example/plant/web/issues/1", "open")


def test_fixed_without_a_ticket_does_nothing(estate_with: Build, github: FakeGitHub) -> None:
    engine = estate_with(PLAYBOOK.replace("new, ", "") % ("github", GITHUB.with_(github)))
    with engine.begin() as conn:
        set_secret(conn, "test", "bot", TOKEN, KEY)
    _event(engine, "fixed")
    assert _deliver(engine) == (1, 0)
    assert _last(engine)[3] == {"system": "github", "key": None, "url": None,
                                "action": "none"}
    assert github.seen == [] and _rows(engine) == []


def test_one_ticket_per_plan_item(estate_with: Build, github: FakeGitHub) -> None:
    document = (PLAYBOOK % ("github", GITHUB.with_(github)[:-1] + ", per: plan_item}")).replace(
        'finding.vuln_id == "CVE-2007-5424"',
        'finding.vuln_id in ["CVE-2007-5424", "CVE-2007-2844"]')
    engine = estate_with(document)
    with engine.begin() as conn:
        set_secret(conn, "test", "bot", TOKEN, KEY)
    assert evaluate_events(engine).queued == 2
    assert _deliver(engine) == (2, 0)
    [issue] = github.issues
    assert issue.title == "Update tcp/80 (network)"
    assert "Vulnerabilities: CVE-2006-1015, " in issue.body
    assert "Hosts to patch: 1" in issue.body
    [row] = _rows(engine)
    assert row[2].startswith("plan:") and row[3] == 14  # the first finding's
    assert issue.labels[1] == marker_of(row[2])
    assert len(issue.comments) == 1  # the second finding of the item
    # One finding fixed while others of the item are open: a comment, still open.
    with engine.begin() as conn:
        conn.execute(update(findings).where(findings.c.id == FINDING)
                     .values(state="fixed", fixed_at=now_utc()))
    _event(engine, "fixed")
    assert _deliver(engine) == (1, 0)
    assert (_last(engine)[3]["action"], issue.closed) == ("commented", False)
    # Every finding of the item fixed: the item is gone and its ticket closed.
    with engine.begin() as conn:
        conn.execute(update(findings).values(state="fixed", fixed_at=now_utc()))
    _event(engine, "fixed", finding_id=14)
    assert _deliver(engine) == (1, 0)
    assert (_last(engine)[3]["action"], issue.closed) == ("closed", True)
    assert len(github.issues) == 1


def test_the_finding_shows_its_tickets(estate_with: Build, github: FakeGitHub,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _estate(estate_with, GITHUB, github)
    assert _deliver(engine) == (1, 0)
    token = create_api_token(engine, user="v", role=Role.VIEWER)[0]
    with role_client(engine, monkeypatch) as client:
        detail = client.get(f"/api/findings/{FINDING}",
                            headers={"Authorization": f"Bearer {token}"}).json()
        [ticket] = detail["tickets"]
        assert {k: ticket[k] for k in ("system", "key", "url", "state", "closed_at")} == {
            "system": "github", "key": "#1", "closed_at": None, "state": "open",
            "url": "https://github.example/plant/web/issues/1"}
        assert client.get("/api/findings/1", headers={
            "Authorization": f"Bearer {token}"}).json()["tickets"] == []
        sign_in(client, "viewer-user", "viewer-password")
        page = client.get(f"/findings/{FINDING}").text
        assert ('<tr class="ticket ticket-open"><td>GitHub</td><td><a href="https://'
                'github.example/plant/web/issues/1" rel="noreferrer noopener">#1</a></td>'
                '<td>ticket open</td><td>–</td></tr>') in page
        assert 'id="tickets"' not in client.get("/findings/1").text


# --- settings ------------------------------------------------------------------------------

@pytest.mark.parametrize(("system", "with_", "problem"), [
    ("jira", {"url": "https://j.example", "project": "P", "token": "abc"},
     ("token", "a token is never stored in a playbook: store it with `patchpilot secret "
               "set NAME` and name it with token_secret")),
    ("gitlab", {"url": "https://g.example", "project": 4, "private_token": "x",
                "token_secret": "t"}, ("private_token", "a token is never stored in a "
                                       "playbook: store it with `patchpilot secret set "
                                       "NAME` and name it with token_secret")),
    ("jira", {"project": "P", "token_secret": "t"},
     ("url", "required: the http(s) base URL of the jira server")),
    ("redmine", {"url": "ftp://r.example", "project": "p", "token_secret": "t"},
     ("url", "required: the http(s) base URL of the redmine server")),
    ("github", {"url": "https://api.github.com", "token_secret": "t"},
     ("project", "required: the project the tickets go to")),
    ("github", {"url": "https://api.github.com", "project": "plant", "token_secret": "t"},
     ("project", "must be the repository as owner/repo")),
    ("gitlab", {"url": "https://g.example", "project": "a/b"},
     ("token_secret", "required: the name of the stored secret holding the API token "
                      "(`patchpilot secret set NAME`)")),
    ("jira", {"url": "https://j.example", "project": "P", "token_secret": "t", "api": 4},
     ("api", "must be 2 or 3 (the REST API version)")),
    ("jira", {"url": "https://j.example", "project": "P", "token_secret": "t",
              "labels": ["two words"]}, ("labels", "must be a list of labels without spaces")),
    ("redmine", {"url": "https://r.example", "project": "p", "token_secret": "t",
                 "closed_status_id": "closed"},
     ("closed_status_id", "must be a Redmine id (a whole number above 0)")),
    ("gitlab", {"url": "https://g.example", "project": "a/b", "token_secret": "t",
                "per": "asset"}, ("per", "must be one of finding, plan_item, owner")),
    ("github", {"url": "https://api.github.com", "project": "a/b", "token_secret": "t",
                "summary": "{{ finding.vuln_id "},
     ("summary", "template does not compile: unexpected end of template, expected "
                 "'end of print statement'.")),
    ("redmine", {"url": "https://r.example", "project": "p", "token_secret": "t",
                 "labels": ["x"]},
     ("labels", "unknown setting (settings: url, project, token_secret, per, lang, "
                "summary, description, comment, closed_status_id, open_status_id, "
                "tracker_id)")),
])
def test_bad_settings_are_refused_naming_the_key(system: str, with_: dict[str, Any],
                                                 problem: tuple[str, str]) -> None:
    action = action_named(system)
    assert action is not None
    assert action.validate(with_) == problem


def test_good_settings_and_targets() -> None:
    jira = action_named("jira")
    assert jira is not None
    with_ = {"url": "https://jira.example.com/", "project": "PROJ", "token_secret": "jira-bot",
             "api": 3, "user": "bot@plant.example", "per": "plan_item", "lang": "ja"}
    assert jira.validate(with_) is None
    assert jira.target(with_, {}) == "jira:https://jira.example.com/PROJ"
    gitlab = action_named("gitlab")
    assert gitlab is not None
    assert gitlab.target({"url": "https://gl.example", "project": 42,
                          "token_secret": "t"}, {}) == "gitlab:https://gl.example/42"
