"""``report``: build a report as a job, as ``POST /api/reports/jobs`` does.

``with``: ``kind`` (``technical`` or ``executive``, default technical), ``format`` (pdf,
html, csv, xlsx; default pdf), ``lang`` (en, ja; default en), and at most one of ``group``
and ``service`` (templates: ``"{{ asset.groups[0] }}"``) -- the options the report
schedules take.  The job is queued by :func:`patchpilot.reports.jobs.start_report_job`
(audited as ``report.job.start`` by ``playbook:<name>``); a worker builds it and it is
downloaded from ``/api/reports/jobs/{id}/file`` until it expires.  The job and the outbox
row's record of it commit together: a delivery taken again does not queue a second one.

Outcome: ``{"job_id", "kind", "format", "lang", "group", "service"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
from patchpilot.errors import PatchPilotError
from patchpilot.reports.generate import check_request
from patchpilot.reports.jobs import start_report_job

NAME = "report"
DEFAULTS = {"kind": "technical", "format": "pdf", "lang": "en"}


class ReportAction:
    """Queue a report job."""

    name = NAME

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """``kind``, ``format`` and ``lang`` ones a report can have; ``group`` or
        ``service`` (not both) templates."""
        problem = unknown_keys(with_, ("kind", "format", "lang", "group", "service"))
        if problem:
            return problem
        for key in ("kind", "format", "lang"):
            if not isinstance(with_.get(key, DEFAULTS[key]), str):
                return key, "must be text"
        if "group" in with_ and "service" in with_:
            return "service", "give a group or a service, not both"
        for key in ("group", "service"):
            if key in with_:
                problem = compiles(key, with_[key])
                if problem:
                    return problem
        try:
            kind, fmt, lang = (str(with_.get(k, DEFAULTS[k])) for k in DEFAULTS)
            check_request(kind, fmt, lang, None, None)
        except PatchPilotError as exc:  # "kind: 'x' must be one of …"
            key, _, message = str(exc).partition(": ")
            return key, message
        return None

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """``patchpilot:report``."""
        return target_of(NAME)

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Queue the job (once per outbox row)."""
        kind, fmt, lang = (str(with_.get(k, DEFAULTS[k])) for k in DEFAULTS)
        scope = {k: render(NAME, k, str(with_[k]), payload) or None if k in with_ else None
                 for k in ("group", "service")}
        with delivery.engine.begin() as conn:
            earlier = started(conn, delivery)
            if earlier is not None:
                return Outcome(earlier)
            try:
                job_id = start_report_job(conn, actor_of(delivery), kind, fmt, lang,
                                          scope["group"], scope["service"])
            except PatchPilotError as exc:  # a group or service nobody knows
                raise DeliveryError(f"{NAME}: {exc}") from exc
            detail = {"job_id": job_id, "kind": kind, "format": fmt, "lang": lang, **scope}
            record_started(conn, delivery, detail)
        return Outcome(detail)


ACTION = ReportAction()
