"""Reports over HTTP: download one now, and the schedules that mail them.

``GET /api/reports/{kind}`` answers with the file itself (``Content-Disposition:
attachment``), built by :func:`patchpilot.reports.generate.generate` -- the function the
CLI's ``patchpilot report`` and the mail job call, so the three never disagree.  Report
schedules go through :mod:`patchpilot.reports.mail` (``add_schedule``, ``list_schedules``,
``delete_schedule``), which audit as they do for ``patchpilot report schedule``.

Errors by kind: a kind, format, language or scope the request cannot have is 422 naming
the parameter; a group or service the database does not know is 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from patchpilot.assets.groups import resolve_scope
from patchpilot.errors import InvalidInput, NotFound
from patchpilot.reports.generate import MIME, check_request, request_report
from patchpilot.reports.mail import add_schedule, delete_schedule, list_schedules
from patchpilot.server.deps import Admin, EngineDep, Viewer
from patchpilot.server.downloads import report_response
from patchpilot.server.params import DbId, Name200, Search, Text

router = APIRouter(tags=["reports"])


@router.get("/reports/{kind}", response_class=Response,
            responses={200: {"description": "the report file",
                             "content": {m.split(";")[0]: {} for m in MIME.values()}},
                       404: {"description": "no such group or service"},
                       422: {"description": "a kind, format, language or scope it cannot "
                                            "have"}})
def download_report(kind: Search, who: Viewer, engine: EngineDep, format: Search = "pdf",
                    lang: Search = "en", group: Name200 | None = None,
                    service: Name200 | None = None) -> Response:
    """A report now: ``executive`` (one page for management) or ``technical`` (every open
    finding), as pdf, html, csv or xlsx, in en or ja, of the estate, a group or a
    service."""
    with engine.connect() as conn:
        return report_response(request_report(conn, kind, format, lang, group, service))


class ReportScheduleIn(BaseModel):
    """A report mailed on a schedule (the options of ``patchpilot report schedule add``)."""

    kind: Search = Field("executive", examples=["executive", "technical"])
    format: Search = Field("pdf", examples=["pdf", "xlsx"])
    lang: Search = Field("en", examples=["en", "ja"])
    cron: Text = Field(min_length=1, max_length=200, examples=["0 8 1 * *"])
    timezone: Text = Field("UTC", max_length=64, examples=["Asia/Tokyo"])
    recipients: list[Name200] = Field(min_length=1, max_length=100,
                                      examples=[["manager@plant.example"]])
    group: Name200 | None = None
    service: Name200 | None = None


class ReportScheduleOut(BaseModel):
    """A stored report schedule with its next and last run."""

    id: int
    kind: str
    format: str
    lang: str
    group: str | None
    service: str | None
    cron: str
    timezone: str
    recipients: list[str]
    enabled: bool
    next_run_at: str | None
    last_run_at: str | None


@router.get("/report-schedules", response_model=list[ReportScheduleOut])
def report_schedules_list(who: Viewer, engine: EngineDep) -> list[dict[str, Any]]:
    """Every report schedule with its recipients and next run."""
    with engine.connect() as conn:
        return list_schedules(conn)


@router.post("/report-schedules", status_code=201, response_model=ReportScheduleOut)
def report_schedule_add(body: ReportScheduleIn, who: Admin, engine: EngineDep
                        ) -> dict[str, Any]:
    """Mail a report on a schedule; the schedule with its first run (audited)."""
    scope = check_request(body.kind, body.format, body.lang, body.group, body.service)
    with engine.begin() as conn:
        if scope.label:
            # A schedule for a group nobody created would only ever fail at its run.  The
            # group is a field of the body, so it is a 422 here (a bad field), not a 404.
            try:
                resolve_scope(conn, scope)
            except NotFound as exc:
                raise InvalidInput(str(exc), field="group" if scope.group else "service"
                                   ) from exc
        return add_schedule(conn, who.name, kind=body.kind, fmt=body.format,
                            lang=body.lang, cron=body.cron, timezone=body.timezone,
                            recipients=body.recipients, group=scope.group,
                            service=scope.service)


@router.delete("/report-schedules/{schedule_id}", status_code=204)
def report_schedule_remove(schedule_id: DbId, who: Admin, engine: EngineDep) -> None:
    """Stop mailing a report (audited)."""
    with engine.begin() as conn:
        delete_schedule(conn, who.name, schedule_id)
