"""The playbook document: refusals name their field (and line), a condition that does not
compile names its position, the shipped examples validate, every action is registered."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import patchpilot.automation.actions
from patchpilot.automation.actions.registry import ACTIONS, action_names
from patchpilot.automation.context import activation
from patchpilot.automation.playbook import (
    PlaybookError,
    Schedule,
    compile_condition,
    parse_playbook,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "playbooks"

GOOD = """\
name: p1
trigger: {events: [new]}
actions:
  - type: webhook
    with: {url: "https://soc.example.com/h", secret_env: SOC_HOOK_KEY}
"""


def refusal(text: str) -> PlaybookError:
    with pytest.raises(PlaybookError) as caught:
        parse_playbook(text, source="p.yaml")
    return caught.value


def test_a_good_document() -> None:
    p = parse_playbook(GOOD + "condition: finding.priority <= 2\n")
    assert (p.name, p.enabled, p.events, p.schedule, p.condition) == (
        "p1", True, ("new",), None, "finding.priority <= 2")
    assert [(a.type, a.with_) for a in p.actions] == [
        ("webhook", {"url": "https://soc.example.com/h", "secret_env": "SOC_HOOK_KEY"})]
    assert p.program is not None


def test_a_schedule_trigger() -> None:
    p = parse_playbook(GOOD.replace("{events: [new]}",
                                    '{schedule: {cron: "0 8 * * 1-5", timezone: Asia/Tokyo}}'))
    assert (p.events, p.schedule) == ((), Schedule("0 8 * * 1-5", "Asia/Tokyo"))


@pytest.mark.parametrize(("change", "message", "field"), [
    (("name: p1", "name: 'bad name'"),
     "name: required: letters, digits, '-', '_' or '.', at most 200", "name"),
    (("[new]", "[new, exploded]"), "trigger.events[1]: unknown event kind 'exploded' (one of "
     "new, reopened, fixed, triaged, priority_changed, known_exploited_added, "
     "installations_changed, sweep_finished, sla_breached, asset_stale, import_finished, "
     "sla_due_soon, epss_crossed, plan_verified, hook_received, jvn_alert)",
     "trigger.events[1]"),
    (("{events: [new]}", "{events: []}"), "trigger: give events, a schedule or both",
     "trigger"),
    (("{events: [new]}", '{schedule: {cron: "0 99 * * *"}}'),
     "trigger.schedule: ", "trigger.schedule"),
    (("type: webhook", "type: fax"),
     "actions[0].type: unknown action 'fax' (one of email, webhook, slack, teams, mattermost, "
     "awx, escalate, jira, redmine, github, gitlab, set_priority, assign, tag, rescan, sweep, "
     "report, digest)", "actions[0].type"),
    (("secret_env: SOC_HOOK_KEY", "secret_env: 'not a name'"),
     "actions[0].with.secret_env: required: the name of the environment variable that "
     "holds the HMAC-SHA256 key the receiver checks", "actions[0].with.secret_env"),
    (("secret_env: SOC_HOOK_KEY", "secret: s3"),
     "actions[0].with.secret: a secret is never stored in a playbook: put it in an "
     "environment variable of the workers and name it with secret_env",
     "actions[0].with.secret"),
    (('"https://soc.example.com/h"', "ftp://x"),
     "actions[0].with.url: 'ftp://x' is not an http(s) URL with a host",
     "actions[0].with.url"),
    (("name: p1", "name: p1\nowner: me"),
     "owner: unknown field (fields: actions, condition, description, enabled, name, "
     "trigger)", "owner"),
])
def test_refusals_name_the_field(change: tuple[str, str], message: str, field: str) -> None:
    error = refusal(GOOD.replace(*change))
    assert str(error).startswith(message)
    assert error.field == field


def test_email_settings_are_checked() -> None:
    text = GOOD.replace('type: webhook\n    with: {url: "https://soc.example.com/h", '
                        'secret_env: SOC_HOOK_KEY}',
                        'type: email\n    with: {to: ["{{ asset.owner "], lang: de}')
    error = refusal(text)
    assert str(error) == "actions[0].with.lang: must be one of en, ja"
    error = refusal(text.replace("lang: de", "lang: ja"))
    assert str(error).startswith("actions[0].with.to: template does not compile: ")


def test_yaml_syntax_error_names_the_line() -> None:
    error = refusal("name: p1\ntrigger: {events: [new]\nactions: []\n")
    assert str(error).startswith("p.yaml:3: not valid YAML: ")
    assert str(refusal("- a list\n")) == \
        "p.yaml: a playbook is a mapping (name, trigger, actions)"


def test_a_condition_that_does_not_compile_names_its_position() -> None:
    error = refusal(GOOD + "condition: |-\n  finding.severity == \"Critical\" &&\n"
                           "    asset.criticality <=\n")
    assert error.field == "condition"
    # (The block scalar keeps the second line's two extra spaces: column 21 is past "<=".)
    assert str(error) == ("condition: does not compile at line 2, column 21:\n"
                          "  asset.criticality <=\n                    ^")
    error = refusal(GOOD + "condition: 'finding.severity +* 1'\n")
    assert str(error).startswith("condition: does not compile at line 1, column 19:")


def test_the_shipped_examples_validate() -> None:
    found = {p.name: parse_playbook(p.read_text(encoding="utf-8"), source=p.name)
             for p in sorted(EXAMPLES.glob("*.yaml"))}
    assert {name: [a.type for a in p.actions] for name, p in found.items()} == {
        "critical-on-tier1-jira.yaml": ["jira"],
        "critical-on-tier1-mail-owner.yaml": ["email"],
        "ids-alert-raise.yaml": ["set_priority", "slack"],
        "kev-added-sweep.yaml": ["sweep"],
        "kev-added-webhook.yaml": ["webhook"],
        "morning-digest.yaml": ["digest"],
        "sla-breach-escalate.yaml": ["escalate"],
        "sweep-owner-tickets.yaml": ["jira"]}
    digest = found["morning-digest.yaml"]
    assert (digest.events, digest.schedule) == (
        ("new", "reopened"), Schedule("0 8 * * 1-5", "Asia/Tokyo"))
    mail = found["critical-on-tier1-mail-owner.yaml"]
    assert (mail.name, mail.events, [a.type for a in mail.actions]) == (
        "critical-on-tier1-mail-owner", ("new", "reopened"), ["email"])
    kev = found["kev-added-webhook.yaml"]
    assert (kev.name, kev.events, kev.condition, [a.type for a in kev.actions]) == (
        "kev-added-webhook", ("known_exploited_added",), 'finding.state == "open"',
        ["webhook"])
    owners = found["sweep-owner-tickets.yaml"]
    assert (owners.events, owners.actions[0].with_["per"]) == (("sweep_finished",), "owner")


def test_every_action_module_is_registered() -> None:
    modules = {m.name for m in pkgutil.iter_modules(patchpilot.automation.actions.__path__)}
    names = {m for m in modules if not m.startswith("_")} - {"registry"}
    # By each module's ACTION (the ticket trackers share one action class).
    registered = {n for n in names if any(
        a is importlib.import_module(f"patchpilot.automation.actions.{n}").ACTION
        for a in ACTIONS)}
    assert registered == names and len(ACTIONS) == len(names)
    assert action_names() == ["email", "webhook", "slack", "teams", "mattermost", "awx",
                              "escalate", "jira", "redmine", "github", "gitlab", "set_priority",
                              "assign", "tag", "rescan", "sweep", "report", "digest"]


def test_a_condition_naming_what_the_context_lacks_is_refused() -> None:
    error = refusal(GOOD + "condition: 'asset.criticality == 1 && findng.severity == \"High\"'\n")
    assert str(error) == ("condition: unknown name 'findng' at line 1, column 27 (the context "
                          "has event, finding, asset)")
    error = refusal(GOOD + "condition: 'finding.sevrity == \"High\"'\n")
    assert str(error) == (
        "condition: finding has no field 'sevrity' (line 1, column 9; its fields: id, "
        "vuln_id, severity, cvss_score, known_exploited, epss_score, state, package, "
        "ecosystem, priority)")
    # Macro variables, type names and the event's free-form detail are known.
    parse_playbook(GOOD + "condition: >-\n  asset.groups.exists(g, g == \"dmz\") && "
                          "event.detail.new > 1 && type(finding.priority) == int\n")


@pytest.mark.parametrize(("text", "message"), [
    ("1: a\nname: p\n", "1: unknown field"),
    ("name: p\ntrigger: {events: [new], 2: x}\nactions: [{type: email, with: {to: [a]}}]\n",
     "trigger.2: unknown field"),
    ("name: p\ntrigger: {events: [new]}\nactions: [{type: email, with: {to: [a], 3: b}}]\n",
     "actions[0].with: setting names are text, not 3"),
])
def test_keys_that_are_not_text_are_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        parse_playbook(text)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("condition", "expected"), [
    ("finding.priority != null && finding.priority <= 2", [True, False, False]),
    ("finding.priority == null", [False, False, True]),
    ("finding.id != null", [True, True, False]),
    ("asset.owner != null", [True, True, True]),
])
def test_null_compares_with_any_value_as_cel_says(condition: str, expected: list[bool]) -> None:
    program = compile_condition(condition)
    contexts = [{"finding": {"priority": 1, "id": 5}, "asset": {"owner": "o"}},
                {"finding": {"priority": 3, "id": 6}, "asset": {"owner": "o"}},
                {"finding": {"priority": None, "id": None}, "asset": {"owner": "o"}}]
    assert [bool(program.evaluate(activation(c))) for c in contexts] == expected
