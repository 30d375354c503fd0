"""The one table of playbook actions: a new action is one module and one row here (a test
checks that every module of this folder is in it)."""

from __future__ import annotations

from patchpilot.automation.actions import (
    Action,
    assign,
    awx,
    digest,
    email,
    escalate,
    github,
    gitlab,
    jira,
    mattermost,
    redmine,
    report,
    rescan,
    set_priority,
    slack,
    sweep,
    tag,
    teams,
    webhook,
)

ACTIONS: tuple[Action, ...] = (
    email.ACTION,
    webhook.ACTION,
    slack.ACTION,
    teams.ACTION,
    mattermost.ACTION,
    awx.ACTION,
    escalate.ACTION,
    jira.ACTION,
    redmine.ACTION,
    github.ACTION,
    gitlab.ACTION,
    set_priority.ACTION,
    assign.ACTION,
    tag.ACTION,
    rescan.ACTION,
    sweep.ACTION,
    report.ACTION,
    digest.ACTION,
)
_BY_NAME = {a.name: a for a in ACTIONS}


def action_named(name: str) -> Action | None:
    """The action registered as ``name``, or None."""
    return _BY_NAME.get(name)


def action_names() -> list[str]:
    """Every registered action's name, in table order."""
    return [a.name for a in ACTIONS]
