"""``sweep``: start an emergency sweep for the event's vulnerability (or others).

``with`` (all optional): ``vulns`` (a list of templates, default
``["{{ finding.vuln_id }}"]``: a CVE or an advisory id each), ``deadline_minutes`` (how
long agents and SSH targets have to confirm, default 60).  Each vulnerability gets
:func:`patchpilot.scans.sweeps.start_sweep` -- what ``patchpilot sweep`` and ``POST
/api/sweeps`` call -- created by ``playbook:<name>`` and audited as ``sweep.start``.

A sweep already running for the same vulnerability is joined, not doubled: KEV listing a
vulnerability open on fifty hosts gives fifty ``known_exploited_added`` events and one
sweep.  Each sweep started is recorded on the outbox row as soon as it exists, so a
delivery taken again goes on with the vulnerabilities not yet swept.  (``start_sweep``
commits its own transaction: a worker that dies between it and that record would start
the sweep again -- a window of one statement.)

Outcome: ``{"sweep_id": <the first>, "sweeps": {vuln: id}, "joined": [vulns]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import select

from patchpilot.audit import audit
from patchpilot.automation.actions import Delivery, DeliveryError, Outcome, Problem
from patchpilot.automation.actions._estate import (
    actor_of,
    compiles,
    record_started,
    render,
    started,
    target_of,
    unknown_keys,
)
from patchpilot.db.tables import sweeps
from patchpilot.errors import PatchPilotError
from patchpilot.scans.sweeps import RUNNING, SweepQuery, start_sweep

NAME = "sweep"
DEFAULT_VULNS = ("{{ finding.vuln_id }}",)
MAX_DEADLINE = 7 * 24 * 60


class SweepAction:
    """Start (or join) a sweep per vulnerability."""

    name = NAME

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """``vulns`` a non-empty list of templates; ``deadline_minutes`` 1 to a week."""
        problem = unknown_keys(with_, ("vulns", "deadline_minutes"))
        if problem:
            return problem
        vulns = with_.get("vulns", list(DEFAULT_VULNS))
        if isinstance(vulns, str):
            vulns = [vulns]
        if not isinstance(vulns, list) or not vulns:
            return "vulns", "must be a list of vulnerability ids (each may be a template)"
        for vuln in vulns:
            problem = compiles("vulns", vuln)
            if problem:
                return problem
        deadline = with_.get("deadline_minutes", 60)
        if isinstance(deadline, bool) or not isinstance(deadline, int) \
                or not 1 <= deadline <= MAX_DEADLINE:
            return "deadline_minutes", f"must be a whole number of minutes, 1-{MAX_DEADLINE}"
        return None

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """``patchpilot:sweep``."""
        return target_of(NAME)

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Render the ids; join a running sweep of each, or start one."""
        given = with_.get("vulns", list(DEFAULT_VULNS))
        given = given if isinstance(given, list) else [given]
        vulns = list(dict.fromkeys(
            v for v in (render(NAME, "vulns", str(g), payload) for g in given)
            if v and v != "None"))
        if not vulns:
            return Outcome({"skipped": "no vulnerability id after rendering 'vulns'"})
        actor = actor_of(delivery)
        with delivery.engine.connect() as conn:
            done = started(conn, delivery) or {}
        swept: dict[str, int] = dict(done.get("sweeps") or {})
        joined: list[str] = list(done.get("joined") or [])
        for vuln in vulns:
            if vuln in swept:
                continue  # an earlier delivery of this row started it
            query = SweepQuery(vuln)
            with delivery.engine.connect() as conn:
                running = conn.execute(select(sweeps.c.id).where(
                    sweeps.c.state == RUNNING,
                    sweeps.c.query == orjson.dumps(query.to_dict()).decode())
                    .order_by(sweeps.c.id.desc()).limit(1)).scalar()
            if running is not None:
                swept[vuln] = int(running)
                joined.append(vuln)
            else:
                try:
                    sweep = start_sweep(delivery.engine, query, created_by=actor,
                                        deadline_minutes=int(with_.get("deadline_minutes",
                                                                       60)))
                except PatchPilotError as exc:  # an id the knowledge base does not know
                    raise DeliveryError(f"{NAME}: {vuln}: {exc}") from exc
                swept[vuln] = sweep.id
            with delivery.engine.begin() as conn:
                if vuln not in joined:
                    audit(conn, actor, "sweep.start", str(swept[vuln]),
                          {"query": query.to_dict(), "event_id": delivery.event_id})
                record_started(conn, delivery, {"sweeps": swept, "joined": joined})
        return Outcome({"sweep_id": swept[vulns[0]], "sweeps": swept, "joined": joined})


ACTION = SweepAction()
