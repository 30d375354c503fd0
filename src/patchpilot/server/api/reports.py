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
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from patchpilot.assets.groups import Scope, ScopeError, resolve_scope
from patchpilot.errors import PatchPilotError
from patchpilot.reports.data import ReportError
from patchpilot.reports.generate import FORMATS, KINDS, MIME, Report, generate
from patchpilot.reports.i18n import LANGUAGES
from patchpilot.reports.mail import add_schedule, delete_schedule, list_schedules
from patchpilot.server.deps import Admin, EngineDep, Viewer
from patchpilot.server.params import DbId, Name200, Search, Text

router = APIRouter(tags=["reports"])


class ReportRequestError(PatchPilotError):
    """A report request whose parameters cannot make a report (names the parameter)."""


def check_request(kind: str, fmt: str, lang: str, group: str | None,
                  service: str | None) -> Scope:
    """The scope of a report request, or :class:`ReportRequestError` naming what is wrong.

    ``generate`` checks the same things, but raises one error kind for all of them; the
    edges need to tell "you asked for something impossible" (422) from "no such group"
    (404), so the parameters are checked here first.  Empty ``group`` / ``service`` (a
    form's "whole estate" choice) mean none.
    """
    if kind not in KINDS:
        raise ReportRequestError(f"kind: {kind!r} must be one of {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise ReportRequestError(f"format: {fmt!r} must be one of {', '.join(FORMATS)}")
    if lang not in LANGUAGES:
        raise ReportRequestError(f"lang: {lang!r} must be one of {', '.join(LANGUAGES)}")
    if group and service:
        raise ReportRequestError("give a group or a service, not both")
    return Scope(group=group or None, service=service or None)


def build_report(engine: Engine, kind: str, fmt: str, lang: str, group: str | None,
                 service: str | None) -> Report:
    """Check the request and generate the report; HTTP errors by kind (422, 404)."""
    try:
        scope = check_request(kind, fmt, lang, group, service)
    except ReportRequestError as exc:
        raise HTTPException(422, str(exc)) from exc
    try:
        with engine.connect() as conn:
            return generate(conn, kind, fmt, lang, scope)
    except (ReportError, ScopeError) as exc:
        # What is left once the parameters are valid: an unknown group or service.
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


def content_disposition(filename: str) -> str:
    """``attachment`` with the file name, safe for any group or service name.

    A header is Latin-1; a Japanese group name is not.  RFC 6266 §4.3: send an ASCII
    ``filename`` for old clients and the exact name as RFC 8187 ``filename*``.
    """
    ascii_name = "".join(c if c.isascii() and c not in '"\\' else "_" for c in filename)
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


def report_response(report: Report) -> Response:
    """The report as a download."""
    return Response(report.content, media_type=report.mime,
                    headers={"Content-Disposition": content_disposition(report.filename)})


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
    return report_response(build_report(engine, kind, format, lang, group, service))


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


@router.get("/report-schedules")
def report_schedules_list(who: Viewer, engine: EngineDep) -> list[dict[str, Any]]:
    """Every report schedule with its recipients and next run."""
    with engine.connect() as conn:
        return list_schedules(conn)


@router.post("/report-schedules", status_code=201)
def report_schedule_add(body: ReportScheduleIn, who: Admin, engine: EngineDep
                        ) -> dict[str, Any]:
    """Mail a report on a schedule; the schedule with its first run (audited)."""
    try:
        scope = check_request(body.kind, body.format, body.lang, body.group, body.service)
        with engine.begin() as conn:
            if scope.label:
                # A schedule for a group nobody created would only ever fail at its run.
                resolve_scope(conn, scope)
            return add_schedule(conn, who.name, kind=body.kind, fmt=body.format,
                                lang=body.lang, cron=body.cron, timezone=body.timezone,
                                recipients=body.recipients, group=scope.group,
                                service=scope.service)
    except PatchPilotError as exc:
        # Every error here is in the body: a bad option, cron, time zone, address or scope.
        raise HTTPException(422, str(exc)) from exc


@router.delete("/report-schedules/{schedule_id}", status_code=204)
def report_schedule_remove(schedule_id: DbId, who: Admin, engine: EngineDep) -> None:
    """Stop mailing a report (audited)."""
    try:
        with engine.begin() as conn:
            delete_schedule(conn, who.name, schedule_id)
    except ReportError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
