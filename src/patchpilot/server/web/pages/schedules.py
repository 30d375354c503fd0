"""Scan schedules, maintenance windows and blackouts, per group: when each next runs or
opens, and when the group may next be scanned.  Admins add and remove them here, with the
stage functions the CLI and the API call (``scans.groups``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from patchpilot.assets.groups import group_asset_ids, group_id_named, list_groups
from patchpilot.clock import now_utc
from patchpilot.errors import PatchPilotError
from patchpilot.scans.groups import (
    add_schedule,
    add_window,
    delete_schedule,
    delete_window,
    every_period,
    list_schedules,
)
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
from patchpilot.server.deps import EngineDep
from patchpilot.server.params import DbId, Text
from patchpilot.server.security import Role
from patchpilot.server.web import i18n
from patchpilot.server.web.render import User, check_csrf, need, render
from patchpilot.server.web.session import WebUser

router = APIRouter(include_in_schema=False)


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
    for row, window in every_period(conn):
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
