"""``set_priority``: raise the event's finding to a priority, and keep it raised.

``with``: ``priority`` (1-4 or ``"P1"``..``"P4"``), ``reason`` (a template: why, kept with
the override and shown with the priority).  The priority is stored as the finding's
override (``finding_overrides``) and the finding is re-prioritised at once, in one
transaction: its ``finding_priority`` row becomes the more urgent of the override and the
computed priority (with the SLA due date of that priority), and a ``priority_changed``
event by ``playbook:<name>`` is written when it moved.  Later re-prioritisations keep the
override the same way, so a feed update does not undo what an IDS alert raised.  An
override never lowers a priority: a finding the evidence makes P1 stays P1.

An event without a finding (``import_finished``, a hook that named no known host) has
nothing to raise: the delivery says so in its outcome instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from patchpilot.automation.actions import Delivery, Outcome, Problem
from patchpilot.automation.actions._estate import (
    actor_of,
    compiles,
    render,
    subject_id,
    target_of,
    unknown_keys,
)
from patchpilot.db.tables import finding_priority
from patchpilot.errors import InvalidInput, NotFound
from patchpilot.findings.overrides import parse_priority, set_priority
from patchpilot.scoring.apply import reprioritise

NAME = "set_priority"


class SetPriorityAction:
    """Store a priority override on the finding and re-prioritise it."""

    name = NAME

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """``priority`` 1-4 or P1-P4; ``reason`` a template, when given."""
        problem = unknown_keys(with_, ("priority", "reason"))
        if problem:
            return problem
        if "priority" not in with_:
            return "priority", "required: 1-4 or P1-P4"
        try:
            parse_priority(with_["priority"])
        except InvalidInput as exc:
            return "priority", str(exc).partition(": ")[2]
        return compiles("reason", with_["reason"]) if "reason" in with_ else None

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """``patchpilot:set_priority``."""
        return target_of(NAME)

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Override, re-prioritise, and say where the priority went."""
        finding_id = subject_id(payload, "finding")
        if finding_id is None:
            return Outcome({"skipped": "the event names no finding"})
        reason = render(NAME, "reason", str(with_["reason"]), payload) \
            if "reason" in with_ else None
        actor = actor_of(delivery)
        fp = finding_priority
        with delivery.engine.begin() as conn:
            before = conn.execute(select(fp.c.priority)
                                  .where(fp.c.finding_id == finding_id)).scalar()
            try:
                value = set_priority(conn, actor, finding_id, with_["priority"], reason or None,
                                     now=delivery.now)
            except NotFound:
                return Outcome({"skipped": f"finding {finding_id} no longer exists"})
            reprioritise(conn, finding_id=finding_id, actor=actor, now=delivery.now)
            after = conn.execute(select(fp.c.priority)
                                 .where(fp.c.finding_id == finding_id)).scalar()
        return Outcome({"finding_id": finding_id, "override": value, "from": before,
                        "to": after})


ACTION = SetPriorityAction()
