"""The dashboard's reports page: pick a report, download it; see what is mailed when.

Thin, as the other pages: the form's choices come from the database (asset groups,
business services), the download calls the stage's :func:`request_report` as the API does
(so a report from the page, the API and ``patchpilot report`` is the same file), and the
scheduled reports are :func:`patchpilot.reports.mail.list_schedules`, shown read-only (they are
added with ``patchpilot report schedule add`` or ``POST /api/report-schedules``).
Viewers may do all of it: a report shows what the pages already show.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from patchpilot.assets.queries import group_names, service_names
from patchpilot.errors import InvalidInput, NotFound
from patchpilot.reports.generate import FORMATS, KINDS, request_report
from patchpilot.reports.mail import list_schedules
from patchpilot.server.deps import EngineDep
from patchpilot.server.downloads import report_response
from patchpilot.server.params import Search
from patchpilot.server.web import i18n
from patchpilot.server.web.render import User, render
from patchpilot.server.web.session import WebUser

router = APIRouter(include_in_schema=False)

# The scope select's values: "" (the estate), "group:<name>" or "service:<name>" -- one
# list, so a group and a service can never be picked together.
GROUP, SERVICE = "group:", "service:"


def _page(request: Request, user: WebUser, engine: Engine, *, kind: str = "executive",
          fmt: str = "pdf", lang: str | None = None, scope: str = "",
          error: str | None = None, status_code: int = 200) -> HTMLResponse:
    with engine.connect() as conn:
        groups, services = group_names(conn), service_names(conn)
        schedules = list_schedules(conn)
    return render(request, "reports.html", user.language, {
        "kinds": KINDS, "formats": FORMATS, "report_languages": i18n.NATIVE_NAMES,
        "groups": groups, "services": services, "schedules": schedules,
        "chosen": {"kind": kind, "format": fmt, "lang": lang or user.language,
                   "scope": scope},
        "error": error}, user, status_code=status_code)


@router.get("/reports")
def reports_page(request: Request, user: User, engine: EngineDep) -> HTMLResponse:
    """The report form (kind, format, language, scope) and the scheduled reports."""
    return _page(request, user, engine)


@router.get("/reports/download")
def download_report_page(request: Request, user: User, engine: EngineDep,
                         kind: Search = "executive", format: Search = "pdf",
                         lang: Search = "", scope: Search = "") -> Response:
    """The chosen report as a download (the session authorises it: a link cannot send a
    bearer header).  A choice that cannot work shows the form again with the reason."""
    group = scope.removeprefix(GROUP) if scope.startswith(GROUP) else None
    service = scope.removeprefix(SERVICE) if scope.startswith(SERVICE) else None
    try:
        if scope and group is None and service is None:
            raise InvalidInput(f"scope: {scope!r} is neither group:… nor service:…")
        with engine.connect() as conn:
            report = request_report(conn, kind, format, lang or user.language, group, service)
    except (NotFound, InvalidInput) as exc:
        # The stage's message names the parameter (English, as the API's and the CLI's).
        return _page(request, user, engine, kind=kind, fmt=format, lang=lang, scope=scope,
                     error=str(exc), status_code=404 if isinstance(exc, NotFound) else 422)
    return report_response(report)
