"""The shipped example playbooks, end to end, as the issue's "done when" puts it: a new
Critical finding on a tier-1 server mails its owner and opens one Jira ticket; fixing it
closes the ticket; a KEV addition starts a sweep; the morning digest arrives once; a
breached SLA escalates from the owner to the team lead.

Everything is real but the remote Jira (a loopback server answering like its REST API):
the Nessus report and generic-CSV assessments imported through the importers, CISA's KEV
catalogue loaded as ``patchpilot db update --from`` does, the idle worker's round
(``run_automation``), mail at aiosmtpd, the secret store.  Time moves by passing ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from sqlalchemy import Engine, select

from patchpilot.automation.run import run_automation
from patchpilot.automation.secrets import set_secret
from patchpilot.clock import aware
from patchpilot.config import Settings, load_settings
from patchpilot.db.tables import finding_priority, findings, outbox, playbooks, sweeps, tickets
from patchpilot.findings.events import record_sla_breaches
from patchpilot.importers.apply import import_file
from patchpilot.knowledge.update import update_from
from patchpilot.pipeline import after_feed_update
from tests.automation.fake_trackers import FakeJira

Build = Callable[..., Engine]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "playbooks"
KEY = "an end-to-end secrets key, long enough"
OWNER = "web-owner@plant.example"
HEAD = ("asset,vulnerability_id,title,description,package,installed_version,fixed_version,"
        "ecosystem,port,protocol,severity,cvss_vector,exploit_available,solution,workaround,"
        "references,cwe\n")
LOG4SHELL = ("testphp.vulnweb.com,CVE-2021-44228,Log4Shell in log4j-core,A JNDI lookup in a "
             "logged message runs code.,org.apache.logging.log4j:log4j-core,2.14.1,2.17.1,"
             "Maven,,,Critical,CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H,true,"
             "Upgrade log4j-core to 2.17.1.,,,CWE-502\n")
TERRAPIN = ("testphp.vulnweb.com,CVE-2023-48795,SSH Terrapin prefix truncation,A man in the "
            "middle drops messages.,openssh-server,1:8.9p1-3ubuntu0.4,1:8.9p1-3ubuntu0.5,"
            "Ubuntu:22.04,22,tcp,,CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:N,false,"
            "Update openssh-server.,,,CWE-354\n")


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    server = FakeJira(token="jira-pat", project="OPS")
    yield server
    server.stop()


def _examples(jira_url: str) -> list[str]:
    names = ("critical-on-tier1-mail-owner", "critical-on-tier1-jira", "kev-added-sweep",
             "sla-breach-escalate", "morning-digest")
    documents = [(EXAMPLES / f"{n}.yaml").read_text(encoding="utf-8") for n in names]
    return [d.replace("https://jira.example.com", jira_url) for d in documents]


def _import(engine: Engine, tmp_path: Path, name: str, *rows: str) -> None:
    path = tmp_path / name
    path.write_text(HEAD + "".join(rows), encoding="utf-8")
    import_file(engine, path)


def _to(messages: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [m for m in messages if address in str(m["To"])]


def _finding(engine: Engine, vuln: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(findings.c.id, findings.c.state, findings.c.known_exploited)
                            .where(findings.c.vuln_id == vuln)).one()


def test_the_shipped_examples_end_to_end(estate_with: Build, mailbox: Any, jira: FakeJira,
                                         database_url: str, tmp_path: Path,
                                         shared_data: Path) -> None:
    engine = estate_with(*_examples(jira.url))  # testphp: tier 1, owned by web-owner
    settings: Settings = load_settings({
        "PATCHPILOT_HOME": str(tmp_path / "home"), "PATCHPILOT_DATABASE_URL": database_url,
        "PATCHPILOT_SECRETS_KEY": KEY, "PATCHPILOT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        **mailbox.env})
    with engine.begin() as conn:
        set_secret(conn, "admin", "jira-bot", "jira-pat", KEY)
    first = run_automation(engine, settings)
    assert first.errors == [] and first.invalid == {}
    # The Nessus report's 15 High findings (P3 before the CMDB context was known): no
    # mail, no ticket, nothing for the digest of P1/P2.
    assert (mailbox.messages, jira.issues, first.events, first.collected) == ([], [], 16, 0)

    # 1. A specialist's assessment reports Log4Shell (Critical) on the tier-1 server.
    _import(engine, tmp_path, "assessment-1.csv", LOG4SHELL, TERRAPIN)
    log4shell = _finding(engine, "CVE-2021-44228")
    run_automation(engine, settings)
    [mail] = mailbox.messages
    assert str(mail["To"]) == OWNER
    assert str(mail["Subject"]) == ("PatchPilot: testphp で CVE-2021-44228"
                                    "（Critical）: new")
    [issue] = jira.issues
    assert (issue.key, issue.closed) == ("OPS-1", False)
    assert f"patchpilot-finding-{log4shell.id}" in issue.labels
    assert "CVE-2021-44228" in issue.title
    run_automation(engine, settings)  # nothing new: still one mail, one ticket
    assert (len(mailbox.messages), len(jira.issues)) == (1, 1)

    # 2. Overnight CISA's catalogue (the real one) lists Log4Shell: the feed update
    #    marks the open imported finding known-exploited, and one sweep starts for it.
    results = update_from(engine, [shared_data / "kev"])
    assert [(r.source, r.status) for r in results] == [("kev:kev", "loaded")]
    after_feed_update(engine, results)
    assert _finding(engine, "CVE-2021-44228").known_exploited is True
    run_automation(engine, settings)
    with engine.connect() as conn:
        started = conn.execute(select(sweeps.c.id, sweeps.c.query)).all()
        outcome = conn.execute(select(outbox.c.outcome).where(
            outbox.c.action_type == "sweep")).scalar_one()
    assert [orjson.loads(q) for _, q in started] == [{"vuln": "CVE-2021-44228"}]
    assert orjson.loads(outcome)["sweep_id"] == started[0].id

    # 3. The next assessment no longer reports it: fixed, and the ticket is closed.
    _import(engine, tmp_path, "assessment-2.csv", TERRAPIN)
    assert _finding(engine, "CVE-2021-44228").state == "fixed"
    run_automation(engine, settings)
    assert (len(jira.issues), issue.closed) == (1, True)
    with engine.connect() as conn:
        assert conn.execute(select(tickets.c.key, tickets.c.state, tickets.c.finding_id)
                            ).all() == [("OPS-1", "closed", log4shell.id)]
    assert len(mailbox.messages) == 1  # "fixed" is not one of the owner mail's events

    # 4. The morning digest at the next working-day 08:00 in Tokyo: once.
    with engine.connect() as conn:
        due = aware(conn.execute(select(playbooks.c.next_run_at).where(
            playbooks.c.name == "morning-digest")).scalar_one())
    tokyo = due.astimezone(ZoneInfo("Asia/Tokyo"))
    assert (tokyo.hour, tokyo.minute) == (8, 0) and tokyo.weekday() < 5
    before = len(mailbox.messages)
    run_automation(engine, settings, due + timedelta(seconds=1))
    [digest] = _to(mailbox.messages[before:], "patch-team@example.com")
    body = digest.get_content()
    assert "CVE-2021-44228" in body and "CVE-2023-48795" in body
    assert "CVE-2007-5424" not in body  # a High of the Nessus report: P3 when it was new
    run_automation(engine, settings, due + timedelta(minutes=5))
    assert len(_to(mailbox.messages, "patch-team@example.com")) == 1

    # 5. The SLA of the open P1/P2 findings passes: the owner hears at once, the team
    #    lead two days later while nothing changed; the manager not yet.
    with engine.connect() as conn:
        overdue = conn.execute(select(finding_priority.c.finding_id, finding_priority.c.due_date)
                               .join(findings, findings.c.id == finding_priority.c.finding_id)
                               .where(findings.c.state == "open",
                                      finding_priority.c.priority <= 2)).all()
    late = max(aware(d) for _, d in overdue) + timedelta(hours=1)
    with engine.begin() as conn:
        assert record_sla_breaches(conn, late) == len(overdue)
    before = len(_to(mailbox.messages, OWNER))
    run_automation(engine, settings, late)
    assert len(_to(mailbox.messages, OWNER)) - before == len(overdue)
    run_automation(engine, settings, late + timedelta(days=1))
    assert _to(mailbox.messages, "team-lead@example.com") == []
    run_automation(engine, settings, late + timedelta(days=2, minutes=1))
    assert len(_to(mailbox.messages, "team-lead@example.com")) == len(overdue)
    assert _to(mailbox.messages, "it-manager@example.com") == []
