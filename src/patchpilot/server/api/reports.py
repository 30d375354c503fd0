"""Reports over HTTP: download one now, build a large one as a job, and the schedules that
mail them.

``GET /api/reports/{kind}`` answers with the file itself (``Content-Disposition:
attachment``), built by :mod:`patchpilot.reports.generate` -- what the CLI's ``patchpilot
report`` and the jobs call, so they never disagree: a CSV streams row by row, and a
technical PDF, HTML or XLSX larger than ``PATCHPILOT_REPORT_SYNC_FINDINGS`` open findings
answers 202 with a report job instead (``server.downloads.report_or_job``).  Report jobs
(``POST /api/reports/jobs``, ``GET /api/reports/jobs/{id}``, ``…/file``) are
:mod:`patchpilot.reports.jobs`: built by a worker under the memory ceiling, kept for
download ``PATCHPILOT_REPORT_KEEP_HOURS``.  Report
schedules go through :mod:`patchpilot.reports.mail` (``add_schedule``, ``list_schedules``,
``delete_schedule``), which audit as they do for ``patchpilot report schedule``.

A user limited to part of the estate (issue 18) gets reports of that part only -- made now
or by a job, which keeps their scopes -- sees their own report jobs only, and the report
schedules of groups and services within their part.

Errors by kind: a kind, format, language or scope the request cannot have is 422 naming
the parameter; a group or service the database does not know, or a report job id that
names none, is 404; a job's file asked for before it is done, or after it failed or
expired, is 409 saying which.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from patchpilot.assets.groups import resolve_scope
from patchpilot.errors import InvalidInput, NotFound
from patchpilot.reports.generate import MIME, check_request
from patchpilot.reports.jobs import (
    JobViewer,
    report_job,
    report_job_file,
    start_report_job,
)
from patchpilot.reports.mail import add_schedule, delete_schedule, list_schedules
from patchpilot.server.deps import Admin, EngineDep, Viewer, scope_aware
from patchpilot.server.downloads import job_file_response, report_or_job
from patchpilot.server.params import DbId, Name200, Search, Text
from patchpilot.server.security import Principal, reach

router = APIRouter(tags=["reports"])


class ReportJobIn(BaseModel):
    """A report to build as a job (the options of ``GET /api/reports/{kind}``)."""

    kind: Search = Field("technical", examples=["technical", "executive"])
    format: Search = Field("xlsx", examples=["xlsx", "pdf", "csv"])
    lang: Search = Field("en", examples=["en", "ja"])
    group: Name200 | None = None
    service: Name200 | None = None


class ReportJobOut(BaseModel):
    """A report job: what it builds, its state (queued, running, done, failed, expired),
    its progress (``rows`` written of ``total``, ``percent``; exports only) and, once done,
    its file (downloaded from ``download`` until ``expires_at``)."""

    id: int
    state: str
    kind: str
    format: str
    lang: str
    group: str | None
    service: str | None
    requested_by: str | None
    created_at: str | None
    finished_at: str | None
    rows: int | None
    total: int | None
    percent: int | None
    file: str | None
    bytes: int | None
    expires_at: str | None
    error: str | None
    peak_mb: int | None  # the building process's largest resident memory, MiB
    seconds: float | None  # how long it took to build
    status: str
    download: str | None


def _job_out(job: dict[str, Any]) -> dict[str, Any]:
    base = f"/api/reports/jobs/{job['id']}"
    return {**job, "status": base,
            "download": f"{base}/file" if job["state"] == "done" else None}


def job_viewer(who: Principal) -> JobViewer:
    """Whose report jobs ``who`` sees: every job, or a scoped user's own."""
    return JobViewer(who.name, who.scopes)


def _accepted(engine: Engine, job_id: int, response: Response) -> dict[str, Any]:
    with engine.connect() as conn:
        job = _job_out(report_job(conn, job_id))
    response.status_code = 202
    response.headers["Location"] = job["status"]
    return job


@router.get("/reports/{kind}", response_class=Response,
            responses={200: {"description": "the report file",
                             "content": {m.split(";")[0]: {} for m in MIME.values()}},
                       202: {"model": ReportJobOut,
                             "description": "too large to make now: the report job started "
                                            "for it (Location: its status)"},
                       404: {"description": "no such group or service"},
                       422: {"description": "a kind, format, language or scope it cannot "
                                            "have"}})
@scope_aware
def download_report(kind: Search, who: Viewer, engine: EngineDep, format: Search = "pdf",
                    lang: Search = "en", group: Name200 | None = None,
                    service: Name200 | None = None) -> Response:
    """A report now: ``executive`` (one page for management) or ``technical`` (every open
    finding), as pdf, html, csv or xlsx, in en or ja, of the estate, a group or a
    service.  CSV streams at any size; a technical PDF, HTML or XLSX of more than
    ``PATCHPILOT_REPORT_SYNC_FINDINGS`` open findings answers 202 with the report job
    started for it (follow ``status``, then ``download``)."""
    answer = report_or_job(engine, who.name, kind, format, lang, group, service,
                           scopes=who.scopes)
    if isinstance(answer, Response):
        return answer
    with engine.connect() as conn:
        job = _job_out(report_job(conn, answer))
    return JSONResponse(ReportJobOut(**job).model_dump(), status_code=202,
                        headers={"Location": job["status"]})


@router.post("/reports/jobs", status_code=202, response_model=ReportJobOut)
@scope_aware
def report_job_start(body: ReportJobIn, who: Viewer, engine: EngineDep,
                     response: Response) -> dict[str, Any]:
    """Build a report as a job (any kind and format, any size); 202 with the job, whose
    ``status`` shows its progress (audited)."""
    with engine.begin() as conn:
        job_id = start_report_job(conn, who.name, body.kind, body.format, body.lang,
                                  body.group, body.service, scopes=who.scopes)
    return _accepted(engine, job_id, response)


@router.get("/reports/jobs/{job_id}", response_model=ReportJobOut)
@scope_aware
def report_job_status(job_id: DbId, who: Viewer, engine: EngineDep) -> dict[str, Any]:
    """A report job's state and progress; once done, where to download its file."""
    with engine.connect() as conn:
        return _job_out(report_job(conn, job_id, viewer=job_viewer(who)))


@router.get("/reports/jobs/{job_id}/file", response_class=Response,
            responses={200: {"description": "the report file",
                             "content": {m.split(";")[0]: {} for m in MIME.values()}},
                       404: {"description": "no such report job"},
                       409: {"description": "not done: queued, running, failed or expired"}})
@scope_aware
def report_job_download(job_id: DbId, who: Viewer, engine: EngineDep) -> Response:
    """The file of a done report job (kept ``PATCHPILOT_REPORT_KEEP_HOURS``)."""
    with engine.connect() as conn:
        made = report_job_file(conn, job_id, viewer=job_viewer(who))
    return job_file_response(made)


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
@scope_aware
def report_schedules_list(who: Viewer, engine: EngineDep) -> list[dict[str, Any]]:
    """Every report schedule with its recipients and next run (for a user limited to part
    of the estate, those of groups and services within it)."""
    with engine.connect() as conn:
        return list_schedules(conn, reach=reach(conn, who))


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
