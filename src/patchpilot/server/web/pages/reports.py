"""The dashboard's reports page: pick a report, download it or build it in the background;
see what is mailed when.

Thin, as the other pages: the form's choices come from the database (asset groups,
business services), the download is ``server.downloads.report_or_job`` as the API's (so a
report from the page, the API and ``patchpilot report`` is the same file).  A report too
large to make while the browser waits -- or one the user sends to the background -- is a
report job (:mod:`patchpilot.reports.jobs`): its page shows the progress, polled with
hx.js, then the download link.  The scheduled reports are
:func:`patchpilot.reports.mail.list_schedules`, shown read-only (they are added with
``patchpilot report schedule add`` or ``POST /api/report-schedules``).  Viewers may do all
of it: a report shows what the pages already show.  A user limited to part of the estate
(issue 18) picks among the groups and services of that part, gets reports of it only,
and sees their own report jobs and the schedules within it (as the API's).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from patchpilot.errors import InvalidInput, NotFound
from patchpilot.reports.generate import FORMATS, KINDS
from patchpilot.reports.jobs import (
    JobViewer,
    recent_report_jobs,
    report_job,
    report_job_file,
    start_report_job,
)
from patchpilot.reports.mail import list_schedules
from patchpilot.server.deps import EngineDep, scope_aware
from patchpilot.server.downloads import job_file_response, report_or_job
from patchpilot.server.params import DbId, Search
from patchpilot.server.security import reach
from patchpilot.server.web import i18n
from patchpilot.server.web.pages.plan import filter_choices
from patchpilot.server.web.render import User, check_csrf, render
from patchpilot.server.web.session import WebUser

router = APIRouter(include_in_schema=False)

# The scope select's values: "" (the estate), "group:<name>" or "service:<name>" -- one
# list, so a group and a service can never be picked together.
GROUP, SERVICE = "group:", "service:"


def _page(request: Request, user: WebUser, engine: Engine, *, kind: str = "executive",
          fmt: str = "pdf", lang: str | None = None, scope: str = "",
          error: str | None = None, status_code: int = 200) -> HTMLResponse:
    with engine.connect() as conn:
        groups, services = filter_choices(conn, user.principal)
        schedules = list_schedules(conn, reach=reach(conn, user.principal))
        report_jobs = recent_report_jobs(conn, viewer=_viewer(user))
    return render(request, "reports.html", user.language, {
        "kinds": KINDS, "formats": FORMATS, "report_languages": i18n.NATIVE_NAMES,
        "groups": groups, "services": services, "schedules": schedules,
        "report_jobs": report_jobs,
        "chosen": {"kind": kind, "format": fmt, "lang": lang or user.language,
                   "scope": scope},
        "error": error}, user, status_code=status_code)


def _viewer(user: WebUser) -> JobViewer:
    """Whose report jobs the user sees: every job, or a scoped user's own."""
    return JobViewer(user.principal.name, user.principal.scopes)


@router.get("/reports")
@scope_aware
def reports_page(request: Request, user: User, engine: EngineDep) -> HTMLResponse:
    """The report form (kind, format, language, scope) and the scheduled reports."""
    return _page(request, user, engine)


def _scope(scope: str) -> tuple[str | None, str | None]:
    """The scope select's value as (group, service)."""
    group = scope.removeprefix(GROUP) if scope.startswith(GROUP) else None
    service = scope.removeprefix(SERVICE) if scope.startswith(SERVICE) else None
    if scope and group is None and service is None:
        raise InvalidInput(f"scope: {scope!r} is neither group:… nor service:…")
    return group, service


def _to_job(job_id: int) -> RedirectResponse:
    return RedirectResponse(f"/reports/jobs/{job_id}", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/reports/download")
@scope_aware
def download_report_page(request: Request, user: User, engine: EngineDep,
                         kind: Search = "executive", format: Search = "pdf",
                         lang: Search = "", scope: Search = "") -> Response:
    """The chosen report as a download (the session authorises it: a link cannot send a
    bearer header), or -- too large to make while the browser waits -- the page of the
    report job started for it.  A choice that cannot work shows the form again with the
    reason."""
    try:
        group, service = _scope(scope)
        answer = report_or_job(engine, user.principal.name, kind, format,
                               lang or user.language, group, service,
                               scopes=user.principal.scopes)
    except (NotFound, InvalidInput) as exc:
        # The stage's message names the parameter (English, as the API's and the CLI's).
        return _page(request, user, engine, kind=kind, fmt=format, lang=lang, scope=scope,
                     error=str(exc), status_code=404 if isinstance(exc, NotFound) else 422)
    return answer if isinstance(answer, Response) else _to_job(answer)


@router.post("/reports/jobs")
@scope_aware
def start_report_job_page(request: Request, user: User, engine: EngineDep,
                          kind: Annotated[str, Form()] = "executive",
                          format: Annotated[str, Form()] = "pdf",
                          lang: Annotated[str, Form()] = "",
                          scope: Annotated[str, Form()] = "",
                          csrf: Annotated[str, Form()] = "") -> Response:
    """Build the chosen report in the background: to its job's page.

    The form's button posts with hx.js (the form itself is a GET, whose URL must not carry
    the CSRF token), so the answer is an ``HX-Redirect``; a choice that cannot work
    goes to the download route with the same choice, which shows the form with the
    reason.  A plain form post gets a 303 (or the form with the reason)."""
    check_csrf(request, csrf)
    hx = request.headers.get("hx-request") == "true"
    try:
        group, service = _scope(scope)
        with engine.begin() as conn:
            job_id = start_report_job(conn, user.principal.name, kind, format,
                                      lang or user.language, group, service,
                                      scopes=user.principal.scopes)
    except (NotFound, InvalidInput) as exc:
        if hx:
            query = urlencode({"kind": kind, "format": format, "lang": lang, "scope": scope})
            return Response(headers={"HX-Redirect": f"/reports/download?{query}"})
        return _page(request, user, engine, kind=kind, fmt=format, lang=lang, scope=scope,
                     error=str(exc), status_code=404 if isinstance(exc, NotFound) else 422)
    if hx:
        return Response(headers={"HX-Redirect": f"/reports/jobs/{job_id}"})
    return _to_job(job_id)


def _job_context(engine: Engine, user: WebUser, job_id: int) -> dict[str, object]:
    with engine.connect() as conn:
        job = report_job(conn, job_id, viewer=_viewer(user))
    return {"job": job, "polling": job["state"] in ("queued", "running")}


@router.get("/reports/jobs/{job_id}")
@scope_aware
def report_job_page(request: Request, user: User, engine: EngineDep,
                    job_id: DbId) -> HTMLResponse:
    """A report job: what it builds, its progress (polled), then its download link."""
    return render(request, "report_job.html", user.language,
                  _job_context(engine, user, job_id), user)


@router.get("/reports/jobs/{job_id}/progress")
@scope_aware
def report_job_progress(request: Request, user: User, engine: EngineDep,
                        job_id: DbId) -> HTMLResponse:
    """The job's progress box alone (what the page's hx.js polling swaps in)."""
    return render(request, "report_job_progress.html", user.language,
                  _job_context(engine, user, job_id), user)


@router.get("/reports/jobs/{job_id}/file")
@scope_aware
def report_job_file_page(user: User, engine: EngineDep, job_id: DbId) -> Response:
    """The job's file (409 while it is not done, as the API's)."""
    with engine.connect() as conn:
        made = report_job_file(conn, job_id, viewer=_viewer(user))
    return job_file_response(made)
