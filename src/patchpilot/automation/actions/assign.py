"""``assign``: give the event's finding an assignee.

``with``: ``to`` (a template: ``"{{ asset.owner }}"`` assigns the finding to its server's
owner).  Stored as ``finding_overrides.assignee`` (audited as ``playbook:<name>``) and
shown with the finding in the API.  A ``to`` that renders empty (an asset without an
owner) clears nobody's work: the finding is left as it was and the outcome says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchpilot.automation.actions import Delivery, DeliveryError, Outcome, Problem
from patchpilot.automation.actions._estate import (
    actor_of,
    compiles,
    render,
    subject_id,
    target_of,
    unknown_keys,
)
from patchpilot.errors import InvalidInput, NotFound
from patchpilot.findings.overrides import set_assignee

NAME = "assign"


class AssignAction:
    """Set the finding's assignee."""

    name = NAME

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """``to`` a template."""
        problem = unknown_keys(with_, ("to",))
        if problem:
            return problem
        if "to" not in with_:
            return "to", "required: who (a template such as '{{ asset.owner }}')"
        return compiles("to", with_["to"])

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """``patchpilot:assign``."""
        return target_of(NAME)

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Render ``to`` and store it."""
        finding_id = subject_id(payload, "finding")
        if finding_id is None:
            return Outcome({"skipped": "the event names no finding"})
        assignee = render(NAME, "to", str(with_["to"]), payload)
        if not assignee:
            return Outcome({"finding_id": finding_id,
                            "skipped": "'to' rendered empty: nobody to assign"})
        with delivery.engine.begin() as conn:
            try:
                set_assignee(conn, actor_of(delivery), finding_id, assignee, now=delivery.now)
            except NotFound:
                return Outcome({"skipped": f"finding {finding_id} no longer exists"})
            except InvalidInput as exc:  # what the template gave (too long)
                raise DeliveryError(f"{NAME}: {exc}") from exc
        return Outcome({"finding_id": finding_id, "assignee": assignee})


ACTION = AssignAction()
