"""The dashboard's pages: login, overview, findings, a finding with triage, assets, the
patch plan, schedules and maintenance windows, sweeps.

Thin routes: each reads the request, calls one function of a stage (``reports.overview``,
``findings.search``, ``findings.triage.record_decision``, ``scans.plan``,
``scans.groups``, ``scans.sweeps``) and renders a template.  Every page needs a session
(``/login`` otherwise); roles as in the API: viewers read, analysts triage and start
sweeps, admins change schedules and windows.  None is in the OpenAPI schema: the API is
``/api``, these are pages.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
import plotly
from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection
from starlette.exceptions import HTTPException as StarletteHTTPException

from patchpilot.assets.groups import (
    group_asset_ids,
    group_id_named,
    group_members,
    list_groups,
)
from patchpilot.assets.queries import (
    DEFAULT_SCAN_DAYS,
    SCAN_FILTERS,
    AssetFilter,
    asset_context_row,
    asset_row,
    filter_assets,
    group_names,
    inventory_history,
    known_tags,
    latest_inventory_warnings,
    match_pending,
    owned_packages,
)
from patchpilot.audit import audit
from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import (
    maintenance_windows,
    users,
)
from patchpilot.errors import PatchPilotError
from patchpilot.findings import phrases
from patchpilot.findings.agents import list_agents
from patchpilot.findings.coverage import asset_coverage
from patchpilot.findings.model import STATES
from patchpilot.findings.phrases import localise
from patchpilot.findings.queries import finding_detail, installations
from patchpilot.findings.search import SORTS, FindingFilter, search_findings
from patchpilot.findings.triage import TriageError, check_decision, record_decision
from patchpilot.reports.overview import SEVERITIES, overview
from patchpilot.scans.groups import (
    add_schedule,
    add_window,
    delete_schedule,
    delete_window,
    list_schedules,
    window_of,
)
from patchpilot.scans.plan import build_plan
from patchpilot.scans.schedules import (
    BLACKOUT,
    KINDS,
    WINDOW,
    MaintenanceWindow,
    ScheduleError,
    next_allowed,
    next_run,
    parse_duration,
    zone,
)
from patchpilot.scans.sweeps import SweepError, SweepQuery, close_sweeps, get_sweep, list_sweeps
from patchpilot.scans.sweeps import start_sweep as start_sweep_stage
from patchpilot.scoring import reasons
from patchpilot.scoring.reasons import reason_text
from patchpilot.server import throttle
from patchpilot.server.deps import EngineDep
from patchpilot.server.downloads import plan_ansible_response, plan_csv_response
from patchpilot.server.params import MAX_DB_ID, DbId, Name200, Page, Search, Text
from patchpilot.server.security import (
    AuthError,
    HashingBusy,
    Principal,
    Role,
    authenticate,
    stored_password,
    verify_password,
)
from patchpilot.server.streams import sweep_event_stream
from patchpilot.server.web import i18n, session
from patchpilot.server.web.session import WebUser

router = APIRouter(include_in_schema=False)
HERE = Path(__file__).parent
PAGE_SIZE = 50
DECISIONS = ("accepted", "false_positive", "not_affected")

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


def _safe_next(target: str | None) -> str:
    # Only paths on this server: never an open redirect to another site.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/overview"


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


# --- login, logout, language -----------------------------------------------------------

@router.get("/")
def root() -> RedirectResponse:
    """Where ``make run``'s URL leads: the overview (via the login page)."""
    return RedirectResponse("/overview", status.HTTP_303_SEE_OTHER)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    """The login form; before sign-in the cookie carries the form's CSRF token."""
    data = session.read(request)
    csrf = session.csrf_of(data)
    lang = i18n.negotiate(request.headers.get("accept-language"))
    response = render(request, "login.html", lang,
                      {"csrf": csrf, "next": _safe_next(next), "error": None})
    if "session" not in data:
        # Signed in already: the session's own cookie stays (its token is the form's).
        session.write(request, response, {"c": csrf})
    return response


def _login_refused(request: Request, csrf: str, next: str, message: str, status_code: int,
                   retry_after: int | None = None) -> HTMLResponse:
    """The login form again with ``message`` (translated) and ``status_code``."""
    lang = i18n.negotiate(request.headers.get("accept-language"))
    response = render(request, "login.html", lang,
                      {"csrf": csrf, "next": _safe_next(next), "error": message},
                      status_code=status_code)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@router.post("/login")
def login(request: Request, engine: EngineDep, username: Annotated[Name200, Form()] = "",
          password: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/overview") -> Response:
    """Check the password (or an API token, for a user with none: ``make run``'s admin)
    and start a session.

    Failed sign-ins are counted per user name and client address (``throttle``): a locked
    name or address is answered 429 with Retry-After before any password is hashed, and
    at most ``security.HASHING_SLOTS`` passwords are hashed at once (503 when no slot
    frees up in time).
    """
    check_csrf(request, csrf)
    tr = i18n.translations(i18n.negotiate(request.headers.get("accept-language")))
    name = username.strip()
    by_token = password.startswith("pp_") and not name
    client = request.client.host if request.client else None
    keys = throttle.keys_for(None if by_token else name, client)
    principal: Principal
    try:
        throttle.ensure_open(engine, keys)
        if by_token:
            with engine.begin() as conn:
                principal = authenticate(conn, password)
        else:
            with engine.connect() as conn:
                stored = stored_password(conn, name)
            # Checked again once a hashing slot is free: attempts queued behind a burst
            # are refused, not hashed, once the burst has locked the name.
            principal = verify_password(stored, password,
                                        admit=lambda: throttle.ensure_open(engine, keys))
    except throttle.Locked as exc:
        return _login_refused(request, csrf, next, tr.gettext(
            "Too many failed logins. Try again in %(minutes)s min.")
            % {"minutes": math.ceil(exc.retry_after / 60)}, 429, exc.retry_after)
    except HashingBusy:
        return _login_refused(request, csrf, next, tr.gettext(
            "The server is busy checking other logins. Try again in a moment."), 503,
            throttle.BUSY_RETRY)
    except AuthError:
        throttle.record_failure(engine, keys, client)
        return _login_refused(request, csrf, next,
                              tr.gettext("Wrong user name or password."), 401)
    if not by_token:
        throttle.record_success(engine, name)
    response = RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)
    with engine.begin() as conn:
        previous = session.active(request, engine)
        if previous is not None:
            session.end(conn, previous)  # one browser, one session
        session.begin(request, response, conn, principal)
    return response


@router.post("/logout")
def logout(request: Request, user: User, engine: EngineDep,
           csrf: Annotated[str, Form()] = "") -> Response:
    """End the session: its row, then the cookie."""
    check_csrf(request, csrf)
    current = session.active(request, engine)
    if current is not None:
        with engine.begin() as conn:
            session.end(conn, current)
    response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    session.clear(response)
    return response


@router.post("/language")
def set_language(request: Request, user: User, engine: EngineDep,
                 lang: Annotated[str, Form()], csrf: Annotated[str, Form()] = "",
                 next: Annotated[str, Form()] = "/overview") -> Response:
    """Remember the user's language."""
    check_csrf(request, csrf)
    if lang not in i18n.LANGUAGES:
        raise HTTPException(422, f"language must be one of {', '.join(i18n.LANGUAGES)}")
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == user.principal.id).values(language=lang))
    return RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js from the plotly wheel's package data: no CDN, works offline."""
    return FileResponse(Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
                        media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


# --- overview ------------------------------------------------------------------------

@router.get("/overview")
def overview_page(request: Request, user: User, engine: EngineDep) -> HTMLResponse:
    """The estate's risk at a glance; for admins, the agents held for their approval."""
    with engine.connect() as conn:
        figures = overview(conn)
        held = (list_agents(conn, pending_only=True) if user.principal.may(Role.ADMIN)
                else [])
    tr = i18n.translations(user.language)
    charts = {
        "priority": {"labels": [k for k in ("P1", "P2", "P3", "P4") if k in figures.by_priority],
                     "values": [figures.by_priority[k] for k in ("P1", "P2", "P3", "P4")
                                if k in figures.by_priority]},
        "severity": {"keys": [s for s in SEVERITIES if s in figures.by_severity],
                     "labels": [tr.gettext(s) for s in SEVERITIES if s in figures.by_severity],
                     "values": [figures.by_severity[s] for s in SEVERITIES
                                if s in figures.by_severity]},
        "trend": {"weeks": [w["week"] for w in figures.trend],
                  "opened": [w["opened"] for w in figures.trend],
                  "fixed": [w["fixed"] for w in figures.trend],
                  "opened_label": tr.gettext("Opened"), "fixed_label": tr.gettext("Fixed")},
    }
    return render(request, "overview.html", user.language,
                  {"o": figures, "charts": orjson.dumps(charts).decode(), "held": held},
                  user)


# --- findings ------------------------------------------------------------------------

def _flag(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


@router.get("/findings")
def findings_page(request: Request, user: User, engine: EngineDep, state: Search = "open",
                  priority: Search = "", severity: Search = "", kev: Search = "",
                  fix: Search = "", group: Search = "", q: Search = "", asset: Search = "",
                  sort: Search = "priority", order: Search = "asc", page: Page = 1
                  ) -> HTMLResponse:
    """The findings list; an htmx request gets only the table (the filters stay)."""
    if state not in ("any", *STATES):
        state = "open"
    if sort not in SORTS:
        sort = "priority"
    flt = FindingFilter(state=None if state == "any" else state,
                        priority=int(priority) if priority in ("1", "2", "3", "4") else None,
                        severity=severity or None, known_exploited=_flag(kev),
                        fix_available=_flag(fix), group=group or None,
                        asset_id=_asset_id(asset), text=q or None)
    with engine.connect() as conn:
        found = search_findings(conn, flt, sort=sort, descending=order == "desc",
                                limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
                                members=group_members(conn, group) if group else None)
    total, rows = found.total, found.rows
    params = {"state": state, "priority": priority, "severity": severity, "kev": kev,
              "fix": fix, "group": group, "q": q, "asset": asset}
    context = {"rows": rows, "total": total, "exact": found.exact, "page": page,
               "pages": max(1, math.ceil(total / PAGE_SIZE)), "sort": sort, "order": order,
               "f": params, "query": lambda **kw: urlencode({**params, "sort": sort,
                                                             "order": order, **kw}),
               "states": STATES, "severities": SEVERITIES}
    name = "findings_table.html" if request.headers.get("hx-request") else "findings.html"
    return render(request, name, user.language, context, user)


def _asset_id(asset: str) -> int | None:
    """The findings list's ``asset`` filter: empty for none, else an asset id (400)."""
    if not asset:
        return None
    if not (asset.isascii() and asset.isdigit() and 0 < int(asset) <= MAX_DB_ID):
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            f"asset: {asset[:40]!r} is not an asset id")
    return int(asset)


def _finding(engine: EngineDep, finding_id: int) -> tuple[Any, dict[str, Any]]:
    """The finding's row and report fields (``findings.queries``; NotFound: a 404 page)."""
    with engine.connect() as conn:
        found = finding_detail(conn, finding_id)
    return found.row, found.data


@router.get("/findings/{finding_id}")
def finding_page(request: Request, finding_id: DbId, user: User, engine: EngineDep,
                 error: Search | None = None) -> HTMLResponse:
    """One finding: the eight report fields, the priority reason, the evidence, triage."""
    row, data = _finding(engine, finding_id)
    return render(request, "finding.html", user.language,
                  {"row": row, "d": data, "error": error, "decisions": DECISIONS}, user)


@router.post("/findings/{finding_id}/triage")
def triage_finding(request: Request, finding_id: DbId, user: User, engine: EngineDep,
                   decision: Annotated[str, Form()], reason: Annotated[Text, Form()] = "",
                   scope: Annotated[str, Form()] = "asset",
                   expires: Annotated[str, Form()] = "",
                   csrf: Annotated[str, Form()] = "") -> Response:
    """Record a triage decision for this finding's vulnerability (analysts)."""
    check_csrf(request, csrf)
    need(user, Role.ANALYST)
    row, _ = _finding(engine, finding_id)
    tr = i18n.translations(user.language)
    problem = None
    expires_at: datetime | None = None
    if scope not in ("asset", "global"):  # the page offers these two
        problem = tr.gettext("Choose a decision.")
    elif expires:
        try:
            # The end of the chosen day, UTC: "until 30 June" includes 30 June.
            expires_at = datetime.combine(datetime.strptime(expires, "%Y-%m-%d").date(),
                                          time(23, 59, 59), UTC)
        except ValueError:
            problem = tr.gettext("The expiry must be a date.")
    if problem is None:
        # The stage's rules (the API checks the same), said in the user's language.
        try:
            check_decision(decision=decision, scope=scope, reason=reason.strip(),
                           expires_at=expires_at, asset_id=row.asset_id)
        except TriageError as exc:
            problem = {
                "reason": tr.gettext("Give a reason (at least 3 characters)."),
                "expiry_needed": tr.gettext("An accepted risk needs an expiry date."),
                "expiry_past": tr.gettext("The expiry date is in the past."),
            }.get(exc.code) or tr.gettext("Choose a decision.")
    if problem is not None:
        _, data = _finding(engine, finding_id)
        return render(request, "finding.html", user.language,
                      {"row": row, "d": data, "error": problem, "decisions": DECISIONS},
                      user, status_code=422)
    with engine.begin() as conn:
        record_decision(conn, user.principal.name, vuln_id=row.vuln_id, package=row.package,
                        scope=scope, decision=decision, reason=reason.strip(),
                        asset_id=row.asset_id, expires_at=expires_at)
    return RedirectResponse(f"/findings/{finding_id}", status.HTTP_303_SEE_OTHER)


# --- assets --------------------------------------------------------------------------

@router.get("/assets")
def assets_page(request: Request, user: User, engine: EngineDep, q: Search = "",
                group: Search = "", tier: Search = "", os: Search = "", tag: Search = "",
                scan: Search = "", days: Search = "", page: Page = 1) -> HTMLResponse:
    """Assets with their open findings and last scan, filtered by name, group,
    criticality, OS, tag and last scan (``assets.queries``)."""
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    days = (days if days.isascii() and days.isdigit() and 0 < int(days) <= 36500
            else str(DEFAULT_SCAN_DAYS))
    f = {"q": q.strip(), "group": group, "tier": tier, "os": os.strip(), "tag": tag.strip(),
         "scan": scan if scan in SCAN_FILTERS else "", "days": days}
    flt = AssetFilter(q=f["q"], group=group, tier=tier, os=f["os"], tag=f["tag"],
                      scan=f["scan"], days=int(days))
    with engine.connect() as conn:
        total, rows = filter_assets(conn, flt, now_utc(), limit=PAGE_SIZE,
                                    offset=(page - 1) * PAGE_SIZE)
        groups = group_names(conn)
        tags = known_tags(conn)
    params = {k: v for k, v in f.items() if v and (k != "days" or f["scan"])}
    return render(request, "assets.html", user.language,
                  {"rows": rows, "total": total, "page": page, "f": f,
                   "query": lambda **kw: urlencode({**params, **kw}),
                   "groups": groups, "tags": tags, "scan_filters": SCAN_FILTERS,
                   "pages": max(1, math.ceil(total / PAGE_SIZE))}, user)


@router.get("/assets/{asset_id}")
def asset_page(request: Request, asset_id: DbId, user: User, engine: EngineDep
               ) -> HTMLResponse:
    """One asset: identity, context, inventory history and open findings."""
    with engine.connect() as conn:
        row = asset_row(conn, asset_id)  # NotFound: the 404 page
        context = asset_context_row(conn, asset_id)
        history = inventory_history(conn, asset_id)
        inventory_warnings = latest_inventory_warnings(conn, asset_id)
        found = search_findings(conn, FindingFilter(asset_id=asset_id), limit=200)
        # An inventory stored but not matched yet (an upload a moment ago): its findings
        # are still to come, which the page says rather than showing the old ones as all.
        matching = match_pending(conn, asset_id)
        # Its ecosystems no advisory covers: "no findings" there is not "clean".
        coverage = asset_coverage(conn, asset_id)
        owned = owned_packages(conn, asset_id)
    return render(request, "asset.html", user.language,
                  {"a": row, "ctx": context, "history": history, "rows": found.rows,
                   "total": found.total, "matching": matching,
                   "inventory_warnings": inventory_warnings, "coverage": coverage,
                   "owned": owned}, user)


# --- patch plan ----------------------------------------------------------------------

@router.get("/plan")
def plan_page(request: Request, user: User, engine: EngineDep, group: Name200 = ""
              ) -> HTMLResponse:
    """The patch plan (``scans.plan``): one row per upgrade, most risk removed first."""
    with engine.connect() as conn:
        plan = build_plan(conn, group=group or None)
        groups = group_names(conn)
    return render(request, "plan.html", user.language,
                  {"plan": plan, "group": group, "groups": groups,
                   "query": urlencode({"group": group}) if group else ""}, user)


@router.get("/plan.csv")
def plan_csv_page(user: User, engine: EngineDep, group: Name200 = "") -> Response:
    """The plan as CSV for a logged-in browser (a link cannot send a bearer header): the
    same download as ``GET /api/plan.csv``."""
    with engine.connect() as conn:
        return plan_csv_response(build_plan(conn, group=group or None))


@router.get("/plan/ansible")
def plan_ansible_page(user: User, engine: EngineDep, group: Name200 = "") -> Response:
    """The plan's Ansible export (a zip: playbook and inventory) for a logged-in browser:
    the same download as ``GET /api/plan/ansible``."""
    with engine.connect() as conn:
        return plan_ansible_response(build_plan(conn, group=group or None))


# --- schedules and maintenance windows -----------------------------------------------

@dataclass(frozen=True, slots=True)
class Opening:
    """When a window or blackout is next in force: ``now_until`` while it is, else the
    start of the next one (None: not within the horizon)."""

    start: datetime | None
    now_until: datetime | None = None


def _opening(window: MaintenanceWindow, now: datetime) -> Opening:
    current = window.containing(now)
    if current is not None:
        return Opening(current[0], now_until=current[1])
    if window.rrule is None and window.starts_at is not None:
        # One period: its start, however far off (next_start looks 400 days ahead).
        return Opening(window.starts_at if window.starts_at > now else None)
    return Opening(window.next_start(now))


def _schedule_board(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """Every group with its members count, schedules (next run computed now) and windows
    and blackouts (next opening), and the group's next allowed scan time."""
    by_group: dict[int, dict[str, Any]] = {}
    for g in list_groups(conn):
        by_group[g["id"]] = {**g, "members": len(group_asset_ids(conn, g["id"])),
                             "schedules": [], "windows": [], "blackouts": []}
    for s in list_schedules(conn):
        # A stored expression always validated; next_run only fails on a zone the server's
        # tz database has since lost -- show that, not a 500.
        try:
            upcoming = next_run(s["kind"], s["expression"], s["timezone"], now)
        except ScheduleError:
            upcoming = None
        by_group[s["group_id"]]["schedules"].append({**s, "next": upcoming})
    periods: dict[int, tuple[list[MaintenanceWindow], list[MaintenanceWindow]]] = {}
    for row in conn.execute(select(maintenance_windows).order_by(maintenance_windows.c.id)):
        window = window_of(row)
        windows, blackouts = periods.setdefault(row.group_id, ([], []))
        (blackouts if row.kind == BLACKOUT else windows).append(window)
        by_group[row.group_id]["blackouts" if row.kind == BLACKOUT else "windows"].append(
            {"row": row, "opening": _opening(window, now)})
    for group_id, g in by_group.items():
        windows, blackouts = periods.get(group_id, ([], []))
        g["next_allowed"] = next_allowed(now, windows, blackouts)
    return list(by_group.values())


def _schedules_response(request: Request, user: WebUser, engine: Engine, *,
                        error: str | None = None, form: dict[str, str] | None = None
                        ) -> HTMLResponse:
    now = now_utc()
    with engine.connect() as conn:
        board = _schedule_board(conn, now)
    return render(request, "schedules.html", user.language,
                  {"board": board, "now": now, "error": error, "form": form or {},
                   "admin": user.principal.may(Role.ADMIN), "kinds": KINDS,
                   "timezones": COMMON_TIMEZONES},
                  user, status_code=422 if error else 200)


# The time zones the forms suggest (any IANA name is accepted).
COMMON_TIMEZONES = ("UTC", "Asia/Tokyo", "Asia/Shanghai", "Asia/Singapore", "Asia/Kolkata",
                    "Europe/London", "Europe/Berlin", "America/New_York", "America/Chicago",
                    "America/Los_Angeles", "Australia/Sydney")


@router.get("/schedules")
def schedules_page(request: Request, user: User, engine: EngineDep) -> HTMLResponse:
    """Groups with their scan schedules, maintenance windows and blackouts; admins add
    and remove them here."""
    return _schedules_response(request, user, engine)


@router.post("/schedules")
def add_schedule_form(request: Request, user: User, engine: EngineDep,
                      group: Annotated[Text, Form()] = "",
                      kind: Annotated[str, Form()] = "cron",
                      expression: Annotated[Text, Form()] = "",
                      timezone: Annotated[Text, Form()] = "UTC",
                      enabled: Annotated[str, Form()] = "",
                      csrf: Annotated[str, Form()] = "") -> Response:
    """Add a scan schedule to a group (admins), as ``patchpilot schedule add`` does."""
    check_csrf(request, csrf)
    need(user, Role.ADMIN)
    try:
        with engine.begin() as conn:
            add_schedule(conn, user.principal.name, group_id_named(conn, group), kind,
                         expression.strip(), timezone.strip() or "UTC",
                         enabled=enabled == "yes")
    except PatchPilotError as exc:
        lead = i18n.translations(user.language).gettext("The schedule was not added:")
        return _schedules_response(
            request, user, engine, error=f"{lead} {exc}",
            form={"form": "schedule", "group": group, "kind": kind, "expression": expression,
                  "timezone": timezone, "enabled": enabled})
    return RedirectResponse("/schedules", status.HTTP_303_SEE_OTHER)


@router.post("/schedules/{schedule_id}/delete")
def delete_schedule_form(request: Request, schedule_id: DbId, user: User, engine: EngineDep,
                         csrf: Annotated[str, Form()] = "") -> Response:
    """Remove a schedule (admins), as ``patchpilot schedule remove`` does."""
    return _admin_delete(request, user, engine, csrf, delete_schedule, schedule_id)


def _admin_delete(request: Request, user: WebUser, engine: EngineDep, csrf: str,
                  remove: Callable[[Connection, str, int], None], row_id: int) -> Response:
    """A schedules-page removal: CSRF, the admin role, the stage's audited delete, back."""
    check_csrf(request, csrf)
    need(user, Role.ADMIN)
    with engine.begin() as conn:
        remove(conn, user.principal.name, row_id)  # NotFound: the 404 page
    return RedirectResponse("/schedules", status.HTTP_303_SEE_OTHER)


def _local_moment(text: str, timezone: str, field: str) -> datetime | None:
    """A form's ``datetime-local`` value (wall time, no offset) read in ``timezone``."""
    if not text.strip():
        return None
    try:
        wall = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ScheduleError(f"{field}: {text!r} is not a date and time") from exc
    if wall.tzinfo is not None:
        return wall
    return wall.replace(tzinfo=zone(timezone))


@router.post("/schedules/windows")
def add_window_form(request: Request, user: User, engine: EngineDep,
                    group: Annotated[Text, Form()] = "", kind: Annotated[str, Form()] = WINDOW,
                    rrule: Annotated[Text, Form()] = "", duration: Annotated[Text, Form()] = "",
                    starts_at: Annotated[Text, Form()] = "",
                    ends_at: Annotated[Text, Form()] = "",
                    timezone: Annotated[Text, Form()] = "UTC",
                    description: Annotated[Text, Form()] = "",
                    csrf: Annotated[str, Form()] = "") -> Response:
    """Add a maintenance window or blackout to a group (admins), as ``patchpilot window
    add`` does: recurring (RRULE and duration) or one period (start and end, read in the
    chosen time zone)."""
    check_csrf(request, csrf)
    need(user, Role.ADMIN)
    tz = timezone.strip() or "UTC"
    try:
        starts = _local_moment(starts_at, tz, "start")
        ends = _local_moment(ends_at, tz, "end")
        with engine.begin() as conn:
            add_window(conn, user.principal.name, group_id_named(conn, group), kind=kind,
                       rrule=rrule.strip() or None,
                       duration=parse_duration(duration) if duration.strip() else None,
                       starts_at=starts, ends_at=ends, timezone=tz,
                       description=description.strip() or None)
    except PatchPilotError as exc:
        lead = i18n.translations(user.language).gettext("The window was not added:")
        return _schedules_response(
            request, user, engine, error=f"{lead} {exc}",
            form={"form": "window", "group": group, "kind": kind, "rrule": rrule,
                  "duration": duration, "starts_at": starts_at, "ends_at": ends_at,
                  "timezone": timezone, "description": description})
    return RedirectResponse("/schedules", status.HTTP_303_SEE_OTHER)


@router.post("/schedules/windows/{window_id}/delete")
def delete_window_form(request: Request, window_id: DbId, user: User, engine: EngineDep,
                       csrf: Annotated[str, Form()] = "") -> Response:
    """Remove a maintenance window or blackout (admins)."""
    return _admin_delete(request, user, engine, csrf, delete_window, window_id)


# --- sweeps --------------------------------------------------------------------------

@router.get("/sweeps")
def sweeps_page(request: Request, user: User, engine: EngineDep,
                error: Search | None = None) -> HTMLResponse:
    """Sweeps, newest first, and the form that starts one (analysts)."""
    with engine.connect() as conn:
        found = list_sweeps(conn, limit=50)
    return render(request, "sweeps.html", user.language,
                  {"sweeps": [s.to_dict(results=False) for s in found], "error": error}, user)


@router.post("/sweeps")
def start_sweep(request: Request, user: User, engine: EngineDep,
                vuln: Annotated[Text, Form()] = "", csrf: Annotated[str, Form()] = ""
                ) -> Response:
    """Start a sweep for a vulnerability id and show it live."""
    check_csrf(request, csrf)
    need(user, Role.ANALYST)
    query = SweepQuery(vuln.strip() or None, None, None, None)
    try:
        sweep = start_sweep_stage(engine, query, created_by=user.principal.name,
                                  deadline_minutes=60)
    except SweepError as exc:
        return sweeps_page(request, user, engine, error=str(exc))
    with engine.begin() as conn:
        audit(conn, user.principal.name, "sweep.start", str(sweep.id),
              {"query": query.to_dict(), "initial": sweep.initial})
    return RedirectResponse(f"/sweeps/{sweep.id}", status.HTTP_303_SEE_OTHER)


@router.get("/sweeps/{sweep_id}")
def sweep_page(request: Request, sweep_id: DbId, user: User, engine: EngineDep
               ) -> HTMLResponse:
    """One sweep: its counts (live, from the event stream) and every asset's result."""
    close_sweeps(engine, sweep_id=sweep_id)
    with engine.connect() as conn:
        sweep = get_sweep(conn, sweep_id)
    if sweep is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no sweep {sweep_id}")
    return render(request, "sweep.html", user.language, {"s": sweep.to_dict()}, user)


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


templates.filters["date"] = fmt_date
templates.filters["datetime"] = fmt_datetime
templates.filters["in_zone"] = fmt_in_zone
# A list row's ``findings.installations`` column as dicts (its one copy for older rows).
templates.filters["installations"] = installations
templates.globals["default_expiry"] = default_expiry


@router.get("/sweeps/{sweep_id}/events")
async def sweep_events_page(request: Request, sweep_id: DbId, user: User, engine: EngineDep
                            ) -> Response:
    """The API's event stream, for a logged-in browser: EventSource cannot send a bearer
    header, so the page's session authorises it instead (same stream, same code)."""
    return await sweep_event_stream(engine, sweep_id, request)


# Words the templates translate from data (states, bands, roles, sweep answers): listed so
# the catalogue check (tests/server/test_web_i18n.py) knows every one must be translated.
DATA_MSGIDS = (*STATES, *SEVERITIES, *DECISIONS, *(r.value for r in Role),
               "affected", "not_affected", "unknown", "pending", "confirmed", "unreachable",
               "timed_out", "running", "done", WINDOW, BLACKOUT, "verified",
               *reasons.MSGIDS, *phrases.MSGIDS)
