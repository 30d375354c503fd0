"""``rescan``: scan the event's asset again, the way a group's scan does.

``with`` (all optional): ``override`` (true: now, ignoring maintenance windows and
blackouts -- an emergency, so it needs a ``reason``, audited like ``scan-now
--override``), ``reason`` (a template).  The asset gets the job that fits how it is reached
-- a ``collect`` job for its agent or an ``ssh_scan`` job for its SSH target -- through
:func:`patchpilot.scans.scheduler.enqueue_asset_scan`: without ``override`` it waits for
the next window of the asset's groups, outside their blackouts, and counts against its
group's ``max_concurrent_scans``; a job of that kind already waiting is not doubled.

The job, the audit row and the outbox row's record of the job commit together, so a
delivery taken again after a worker died does not queue a second scan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchpilot.audit import audit
from patchpilot.automation.actions import Delivery, Outcome, Problem
from patchpilot.automation.actions._estate import (
    actor_of,
    compiles,
    record_started,
    render,
    started,
    subject_id,
    target_of,
    unknown_keys,
)
from patchpilot.scans.scheduler import enqueue_asset_scan

NAME = "rescan"


class RescanAction:
    """Queue a scan of the event's asset."""

    name = NAME

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """``override`` a boolean; with it, a ``reason``."""
        problem = unknown_keys(with_, ("override", "reason"))
        if problem:
            return problem
        if not isinstance(with_.get("override", False), bool):
            return "override", "must be true or false"
        if with_.get("override") and not with_.get("reason"):
            return "reason", "required with override: an emergency scan is audited with why"
        return compiles("reason", with_["reason"]) if "reason" in with_ else None

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """``patchpilot:rescan``."""
        return target_of(NAME)

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Queue the asset's scan job (once per outbox row)."""
        asset_id = subject_id(payload, "asset")
        if asset_id is None:
            return Outcome({"skipped": "the event names no asset"})
        override = bool(with_.get("override", False))
        reason = render(NAME, "reason", str(with_["reason"]), payload) \
            if "reason" in with_ else ""
        actor = actor_of(delivery)
        with delivery.engine.begin() as conn:
            earlier = started(conn, delivery)
            if earlier is not None:
                return Outcome(earlier)
            scan = enqueue_asset_scan(conn, asset_id, delivery.now,
                                      {"reason": "playbook", "playbook": delivery.playbook},
                                      override=override)
            detail = scan.as_dict()
            audit(conn, actor, "asset.scan_now.override" if override else "asset.scan_now",
                  f"asset:{asset_id}", {"override": override, "reason": reason,
                                        "event_id": delivery.event_id, **detail})
            record_started(conn, delivery, detail)
        return Outcome(detail)


ACTION = RescanAction()
