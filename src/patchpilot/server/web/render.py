"""What every page of the dashboard shares: the template environment and its filters,
the page's user, and the error page.

:func:`render` renders a template in the user's language with the context every template
reads (the translation function, the languages, the user, the current path);
:data:`User` is the logged-in user a page route takes (:class:`LoginRequired` otherwise:
``web.mount`` answers it with a redirect to ``/login``); :func:`need` and
:func:`check_csrf` the role and CSRF checks of a form; :func:`error_page` an HTTP error as
a page in the user's language.  No page's own logic is here: that is ``pages/<page>.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from patchpilot.clock import aware, now_utc
from patchpilot.findings.phrases import localise
from patchpilot.findings.queries import installations
from patchpilot.scans.schedules import ScheduleError, zone
from patchpilot.scoring.reasons import reason_text
from patchpilot.server.deps import EngineDep, check_scope
from patchpilot.server.security import Role
from patchpilot.server.web import i18n, session
from patchpilot.server.web.session import WebUser

HERE = Path(__file__).parent
PAGE_SIZE = 50  # rows per page of the findings and assets lists

templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(["html"]), trim_blocks=True,
                        lstrip_blocks=True)


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def session_user(request: Request, engine: Engine) -> WebUser | None:
    """The user of the request's open session (None without one: see ``session``)."""
    current = session.active(request, engine)
    if current is None:
        return None
    return WebUser(current.principal,
                   i18n.choose(current.language, request.headers.get("accept-language")),
                   current.csrf)


def web_user(request: Request, engine: EngineDep) -> WebUser:
    """The logged-in user, or LoginRequired."""
    user = session_user(request, engine)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    check_scope(request, user.principal)
    return user


User = Annotated[WebUser, Depends(web_user)]


def need(user: WebUser, role: Role) -> None:
    """403 unless the user holds ``role``."""
    if not user.principal.may(role):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"requires the {role.value} role")


def check_csrf(request: Request, sent: str | None) -> None:
    """403 unless the form carried the session's CSRF token."""
    if not session.csrf_ok(session.read(request), sent):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or wrong")


def render(request: Request, name: str, lang: str, context: dict[str, Any],
           user: WebUser | None = None, status_code: int = 200) -> HTMLResponse:
    """Render template ``name`` in ``lang``."""
    tr = i18n.translations(lang)
    html = templates.get_template(name).render(
        _=tr.gettext, reason=partial(reason_text, gettext=tr.gettext),
        phrase=partial(localise, gettext=tr.gettext), lang=lang,
        languages=i18n.NATIVE_NAMES, user=user, request=request,
        path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        analyst=bool(user and user.principal.may(Role.ANALYST)), **context)
    return HTMLResponse(html, status_code=status_code)


def error_page(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
    """An HTTP error of a page (403, 404, …) as a page in the user's language, with the
    way back to the overview; installed for every path but ``/api`` (web.mount)."""
    user = session_user(request, request.app.state.engine)
    lang = user.language if user else i18n.negotiate(request.headers.get("accept-language"))
    detail = str(exc.detail or "")
    try:
        standard = HTTPStatus(exc.status_code).phrase
    except ValueError:
        standard = ""
    response = render(request, "error.html", lang,
                      {"status": exc.status_code, "csrf": detail.startswith("CSRF"),
                       "detail": "" if detail == standard else detail}, user,
                      status_code=exc.status_code)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value  # such as a 405's Allow
    return response


# --- the templates' filters ------------------------------------------------------------

def fmt_date(value: Any) -> str:
    """A date or datetime as YYYY-MM-DD (empty for None)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:10]
    return value.strftime("%Y-%m-%d")


def fmt_datetime(value: Any) -> str:
    """A datetime as YYYY-MM-DD HH:MM UTC (empty for None)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:16].replace("T", " ")
    return aware(value).strftime("%Y-%m-%d %H:%M")  # type: ignore[union-attr]


def default_expiry() -> str:
    """The expiry the triage form suggests: 90 days, a quarter's review cycle."""
    return (now_utc() + timedelta(days=90)).strftime("%Y-%m-%d")


def fmt_in_zone(value: datetime | None, timezone: str) -> str:
    """A UTC datetime on the wall clock of ``timezone``: YYYY-MM-DD HH:MM (empty for None)."""
    moment = aware(value)
    if moment is None:
        return ""
    try:
        return moment.astimezone(zone(timezone)).strftime("%Y-%m-%d %H:%M")
    except ScheduleError:
        return ""


# The scanners' names as people write them, by producer (``Format.producer``); a producer
# not listed shows as it is.  tests/server/web/test_imports.py checks every registry
# producer is here.
SCANNERS = {
    "tenable": "Tenable", "openvas": "Greenbone/OpenVAS", "qualys": "Qualys",
    "rapid7": "Rapid7", "trivy": "Trivy", "grype": "Grype", "anchore": "Anchore",
    "aqua": "Aqua", "clair": "Clair", "harbor": "Harbor", "jfrog-xray": "JFrog Xray",
    "twistlock": "Prisma Cloud", "wazuh": "Wazuh", "osv-scanner": "OSV-Scanner",
    "snyk": "Snyk", "gitlab": "GitLab", "dependency-check": "Dependency-Check",
    "dependency-track": "Dependency-Track", "cyclonedx": "CycloneDX", "spdx": "SPDX",
    "sarif": "SARIF", "npm-audit": "npm audit", "yarn-audit": "yarn audit",
    "pip-audit": "pip-audit", "govulncheck": "govulncheck", "cargo-audit": "cargo audit",
    "bundler-audit": "bundler-audit", "composer-audit": "composer audit",
    "generic": "generic format",
}


def scanner_name(producer: str) -> str:
    """``importer:tenable:weekly`` -> ``Tenable · weekly``: the scanner's name and the
    import's scope, for a finding's sources and the imports history."""
    _, _, rest = producer.partition("importer:")
    scanner, _, scope = (rest or producer).partition(":")
    name = SCANNERS.get(scanner, scanner)
    return f"{name} · {scope}" if scope else name


templates.filters["date"] = fmt_date
templates.filters["datetime"] = fmt_datetime
templates.filters["in_zone"] = fmt_in_zone
# A list row's ``findings.installations`` column as dicts (its one copy for older rows).
templates.filters["installations"] = installations
templates.filters["scanner_name"] = scanner_name
templates.globals["default_expiry"] = default_expiry
