"""The ``awx`` action against a loopback server answering like AWX's API: the job template
launched with the plan item's pending hosts as the limit and its commands and CVEs as
variables; a template that would drop the limit refused before launching; AWX's errors
named; a finding no fix item holds launches nothing."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select

from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.deliver import deliver_due
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.automation.playbook import PlaybookError, parse_playbook
from patchpilot.automation.secrets import set_secret
from patchpilot.automation.store import save_playbook
from patchpilot.db.tables import outbox
from patchpilot.knowledge.update import update_from
from patchpilot.reports.mail import SmtpSettings
from patchpilot.scans.plan_store import FIX, item_key
from tests.builders.http_receiver import Receiver
from tests.builders.plan_estate import (
    AJENTI,
    FEEDS,
    NEW_FIREFOX,
    OLD_FIREFOX,
    OLD_KERNEL,
    OLD_PYGMENTS,
    scan,
)

KEY = "test-secrets-key-0123456789"
TOKEN = "awx-oauth2-tok3n-9f3a"
SETTINGS = DeliverySettings(SmtpSettings(), allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))
LAUNCH = "/api/v2/job_templates/7/launch/"
PLAYBOOK = """\
name: patch-firefox
trigger: {events: [new]}
condition: finding.vuln_id == "%s" && asset.name == "%s"
actions:
  - type: awx
    with:
      url: %s
      job_template: 7
      token_secret: awx-token
      extra_vars: {change_ticket: CHG-1042}
"""
FIREFOX_CVES = ["CVE-2022-25235", "CVE-2022-25236", "CVE-2022-25315", "CVE-2022-26381",
                "CVE-2022-26383", "CVE-2022-26384", "CVE-2022-26386", "CVE-2022-26387",
                "CVE-2022-26485", "CVE-2022-26486"]
PROMPTS = {"ask_limit_on_launch": True, "ask_variables_on_launch": True,
           "can_start_without_user_input": True, "survey_enabled": False}
LAUNCHED = {"job": 42, "ignored_fields": {}, "id": 42, "type": "job",
            "url": "/api/v2/jobs/42/", "status": "pending"}

Build = Callable[[str, str], Engine]


@pytest.fixture
def awx() -> Iterator[Receiver]:
    """A controller: template 7 prompts for limit and variables, a launch gives job 42."""
    r = Receiver()
    r.routes = {("GET", LAUNCH): (200, PROMPTS), ("POST", LAUNCH): (201, LAUNCHED)}
    yield r
    r.stop()


@pytest.fixture
def estate(engine: Engine, feed_dir: Any, awx: Receiver) -> Build:
    """``estate(cve, host)``: the AlmaLinux/PyPI estate of the plan tests scanned after a
    playbook that launches template 7 for ``cve`` on ``host`` was stored; the token kept."""

    def build(cve: str, host: str) -> Engine:
        assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
        with engine.begin() as conn:
            save_playbook(conn, "sato", PLAYBOOK % (cve, host, awx.base))
            set_secret(conn, "sato", "awx-token", TOKEN, KEY)
        for name, packages in {"plant1-web-01": (OLD_FIREFOX, OLD_KERNEL, OLD_PYGMENTS),
                               "plant1-web-02": (OLD_FIREFOX,),
                               "plant2-dev-07": (OLD_FIREFOX, AJENTI),
                               "plant2-ws-11": (NEW_FIREFOX,)}.items():
            scan(engine, name, *packages)
        assert evaluate_events(engine).queued == 1
        return engine

    return build


def _row(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as conn:
        r = conn.execute(select(outbox.c.state, outbox.c.last_error, outbox.c.target,
                                outbox.c.outcome)).one()
    return r.state, r.last_error, r.target, orjson.loads(r.outcome) if r.outcome else None


def test_launches_the_plan_items_hosts(estate: Build, awx: Receiver) -> None:
    engine = estate("CVE-2022-26485", "plant1-web-01")
    assert deliver_due(engine, SETTINGS, secrets_key=KEY).sent == 1
    key = item_key(FIX, "AlmaLinux:8", "firefox", "91.7.0-3.el8_5.alma")
    assert _row(engine) == ("sent", None, f"awx:{awx.base}/job_templates/7",
                            {"job": 42, "url": f"{awx.base}/api/v2/jobs/42/", "item": key,
                             "hosts": 3})
    asked, launch = awx.requests
    assert (asked.method, asked.path, launch.method, launch.path) == (
        "GET", LAUNCH, "POST", LAUNCH)
    for request in (asked, launch):
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert launch.headers["content-type"] == "application/json"
    assert launch.json() == {
        "limit": "plant1-web-01,plant1-web-02,plant2-dev-07",
        "extra_vars": {
            "patchpilot_item": key,
            "patchpilot_title": "firefox → 91.7.0-3.el8_5.alma fixes 10 CVEs on 3 hosts",
            "patchpilot_commands": ["dnf upgrade firefox"],
            "patchpilot_vulns": FIREFOX_CVES,
            "change_ticket": "CHG-1042"}}
    # The token is nowhere in the outbox.
    with engine.connect() as conn:
        assert TOKEN not in str(conn.execute(select(outbox)).one())


def test_a_python_package_gets_its_pip_command(estate: Build, awx: Receiver) -> None:
    engine = estate("CVE-2022-40896", "plant1-web-01")
    assert deliver_due(engine, SETTINGS, secrets_key=KEY).sent == 1
    extra = awx.requests[1].json()["extra_vars"]
    assert (awx.requests[1].json()["limit"], extra["patchpilot_commands"],
            extra["patchpilot_vulns"]) == (
        "plant1-web-01", ["pip install --upgrade 'Pygments>=2.15.1'"], ["CVE-2022-40896"])


def test_a_template_that_would_drop_the_limit_is_refused(estate: Build,
                                                         awx: Receiver) -> None:
    awx.routes[("GET", LAUNCH)] = (200, {**PROMPTS, "ask_limit_on_launch": False})
    engine = estate("CVE-2022-26485", "plant1-web-01")
    assert deliver_due(engine, SETTINGS, secrets_key=KEY).failed == 1
    assert _row(engine)[:2] == (
        "failed", "awx: job template 7 does not prompt on launch for Limit; refused (the job "
                  "would run on the template's whole inventory or without PatchPilot's "
                  "variables): tick 'Prompt on launch' for them")
    assert [r.method for r in awx.requests] == ["GET"]


def test_awx_field_errors_are_named(estate: Build, awx: Receiver) -> None:
    awx.routes[("POST", LAUNCH)] = (400, {
        "variables_needed_to_start": ["'release' value missing"],
        "limit": ["Field is not allowed on launch."]})
    engine = estate("CVE-2022-26485", "plant1-web-01")
    assert deliver_due(engine, SETTINGS, secrets_key=KEY).failed == 1
    assert _row(engine)[1] == ("awx: 127.0.0.1 answered 400 for job template 7: "
                               "variables_needed_to_start: 'release' value missing; "
                               "limit: Field is not allowed on launch.")


def test_awx_detail_errors_are_named(estate: Build, awx: Receiver) -> None:
    awx.routes[("GET", LAUNCH)] = (403, {
        "detail": "You do not have permission to perform this action."})
    engine = estate("CVE-2022-26485", "plant1-web-01")
    assert deliver_due(engine, SETTINGS, secrets_key=KEY).failed == 1
    assert _row(engine)[1] == ("awx: 127.0.0.1 answered 403 for job template 7: You do not "
                               "have permission to perform this action.")


def test_an_answer_that_is_not_awx_is_named(estate: Build, awx: Receiver) -> None:
    awx.routes[("GET", LAUNCH)] = (200, b"<html>Sign in</html>")
    engine = estate("CVE-2022-26485", "plant1-web-01")
    assert deliver_due(engine, SETTINGS, secrets_key=KEY).failed == 1
    assert _row(engine)[1] == ("awx: 127.0.0.1 answered 200 without JSON: is the url the "
                               "controller's?")


def test_a_finding_without_a_fix_launches_nothing(estate: Build, awx: Receiver) -> None:
    engine = estate("CVE-2018-1000080", "plant2-dev-07")
    assert deliver_due(engine, SETTINGS, secrets_key=KEY).sent == 1
    state, error, _, outcome = _row(engine)
    assert (state, error) == ("sent", None)
    assert outcome["skipped"].startswith("no plan item upgrades finding ")
    assert outcome["skipped"].endswith(" (no fixed version published)")
    assert awx.requests == []


def _refusal(settings: str) -> str:
    with pytest.raises(PlaybookError) as caught:
        parse_playbook("name: a\ntrigger: {events: [new]}\nactions:\n  - type: awx\n"
                       f"    with: {settings}\n")
    return str(caught.value)


def test_settings_are_checked() -> None:
    good = "url: https://awx.example.com, job_template: 7, token_secret: awx-token"
    parse_playbook("name: a\ntrigger: {events: [new]}\nactions:\n  - type: awx\n"
                   f"    with: {{{good}, extra_vars: {{a: 1}}}}\n")
    assert _refusal(f"{{{good}, token: abc}}") == (
        "actions[0].with.token: a token is never stored in a playbook: store it with "
        "`patchpilot secret set NAME` and give token_secret: NAME")
    assert _refusal("{job_template: 7, token_secret: t}") == (
        "actions[0].with.url: required: the controller's http(s) URL "
        "(https://awx.example.com)")
    assert _refusal("{url: 'ftp://awx', job_template: 7, token_secret: t}") == (
        "actions[0].with.url: 'ftp://awx' is not an http(s) URL with a host")
    for bad in ("0", "'7'", "true"):
        assert _refusal(f"{{url: 'https://a.example', job_template: {bad}, "
                        "token_secret: t}") == (
            "actions[0].with.job_template: required: the job template's id (a positive "
            "number)")
    assert _refusal("{url: 'https://a.example', job_template: 7}") == (
        "actions[0].with.token_secret: required: the name of the stored secret that holds "
        "the controller's OAuth2 token")
    assert _refusal(f"{{{good}, extra_vars: [a]}}") == (
        "actions[0].with.extra_vars: must be a mapping of variable names to values")
    assert _refusal(f"{{{good}, inventory: 3}}") == (
        "actions[0].with.inventory: unknown setting (settings: url, job_template, "
        "token_secret, extra_vars)")
