"""Asset groups, their schedules and maintenance windows, and SSH targets: the stored side.

The API (``server/api/groups.py``) and the CLI (``patchpilot schedule``/``window``) both
call these functions, each inside the caller's transaction; every change is audited with
who made it.  Expressions, time zones and periods are checked here, before anything is
stored (``scans.schedules`` raises ScheduleError naming the field).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from patchpilot.assets.groups import (
    GroupError,
    describe_group,
    require_row,
)
from patchpilot.audit import audit
from patchpilot.clock import aware, iso, now_utc
from patchpilot.db.tables import (
    asset_group_members,
    asset_groups,
    assets,
    maintenance_windows,
    schedules,
)
from patchpilot.inventory.transports.ssh import SshTarget
from patchpilot.scans.schedules import (
    BLACKOUT,
    WINDOW,
    MaintenanceWindow,
    ScheduleError,
    next_run,
    validate_schedule,
)


def get_group(conn: Connection, group_id: int) -> dict[str, Any]:
    """One group with its members (static and by rule), schedules and windows."""
    out = describe_group(conn, group_id)
    out["schedules"] = list_schedules(conn, group_id)
    out["windows"] = list_windows(conn, group_id)
    return out


# --- a group's periods ---------------------------------------------------------------------

def window_of(row: Any) -> MaintenanceWindow:
    """The MaintenanceWindow a ``maintenance_windows`` row describes."""
    return MaintenanceWindow(
        timezone=row.timezone, rrule=row.rrule,
        duration=(timedelta(minutes=row.duration_minutes)
                  if row.duration_minutes is not None else None),
        starts_at=aware(row.starts_at), ends_at=aware(row.ends_at))


def every_period(conn: Connection) -> list[tuple[Any, MaintenanceWindow]]:
    """Every group's windows and blackouts, in the order they were added: each
    ``maintenance_windows`` row (its ``group_id``, ``kind``, …) with its MaintenanceWindow
    (the schedules page's board)."""
    return [(row, window_of(row)) for row in conn.execute(
        select(maintenance_windows).order_by(maintenance_windows.c.id))]


def group_periods(conn: Connection, group_id: int
                  ) -> tuple[list[MaintenanceWindow], list[MaintenanceWindow]]:
    """A group's maintenance windows and its blackout periods."""
    windows: list[MaintenanceWindow] = []
    blackouts: list[MaintenanceWindow] = []
    for row in conn.execute(select(maintenance_windows)
                            .where(maintenance_windows.c.group_id == group_id)
                            .order_by(maintenance_windows.c.id)):
        (blackouts if row.kind == BLACKOUT else windows).append(window_of(row))
    return windows, blackouts


def all_group_periods(conn: Connection
                      ) -> dict[int, tuple[list[MaintenanceWindow], list[MaintenanceWindow]]]:
    """Every group's maintenance windows and blackout periods, in one query."""
    out: dict[int, tuple[list[MaintenanceWindow], list[MaintenanceWindow]]] = {}
    for row in conn.execute(select(maintenance_windows).order_by(maintenance_windows.c.id)):
        windows, blackouts = out.setdefault(row.group_id, ([], []))
        (blackouts if row.kind == BLACKOUT else windows).append(window_of(row))
    return out


# --- schedules -----------------------------------------------------------------------------

def _schedule_dict(row: Any) -> dict[str, Any]:
    return {"id": row.id, "group_id": row.group_id, "kind": row.kind,
            "expression": row.expression, "timezone": row.timezone, "enabled": row.enabled,
            "next_run_at": iso(row.next_run_at), "last_run_at": iso(row.last_run_at),
            "created_at": iso(row.created_at)}


def add_schedule(conn: Connection, actor: str, group_id: int, kind: str, expression: str,
                 timezone: str, *, enabled: bool = True, now: datetime | None = None
                 ) -> dict[str, Any]:
    """A new schedule for a group, with its first run computed; the stored schedule."""
    require_row(conn, asset_groups, group_id, "asset group")
    validate_schedule(kind, expression, timezone)
    now = (now or now_utc()).astimezone(UTC)
    first = next_run(kind, expression, timezone, now)
    schedule_id = int(conn.execute(insert(schedules).values(
        group_id=group_id, kind=kind, expression=expression, timezone=timezone,
        enabled=enabled, next_run_at=first, created_at=now)
        .returning(schedules.c.id)).scalar_one())
    audit(conn, actor, "schedule.create", f"schedule:{schedule_id}",
          {"group_id": group_id, "kind": kind, "expression": expression,
           "timezone": timezone})
    return _schedule_dict(require_row(conn, schedules, schedule_id, "schedule"))


def update_schedule(conn: Connection, actor: str, schedule_id: int, *,
                    now: datetime | None = None, **changes: Any) -> dict[str, Any]:
    """Change a schedule's kind, expression, time zone or enabled; next run recomputed."""
    row = require_row(conn, schedules, schedule_id, "schedule")
    kind = changes.get("kind") or row.kind
    expression = changes.get("expression") or row.expression
    timezone = changes.get("timezone") or row.timezone
    enabled = row.enabled if changes.get("enabled") is None else bool(changes["enabled"])
    validate_schedule(kind, expression, timezone)
    conn.execute(update(schedules).where(schedules.c.id == schedule_id).values(
        kind=kind, expression=expression, timezone=timezone, enabled=enabled,
        next_run_at=next_run(kind, expression, timezone, now or now_utc())))
    audit(conn, actor, "schedule.update", f"schedule:{schedule_id}",
          {k: v for k, v in changes.items() if v is not None})
    return _schedule_dict(require_row(conn, schedules, schedule_id, "schedule"))


def delete_schedule(conn: Connection, actor: str, schedule_id: int) -> None:
    """Remove a schedule."""
    row = require_row(conn, schedules, schedule_id, "schedule")
    conn.execute(delete(schedules).where(schedules.c.id == schedule_id))
    audit(conn, actor, "schedule.delete", f"schedule:{schedule_id}",
          {"group_id": row.group_id, "expression": row.expression})


def list_schedules(conn: Connection, group_id: int | None = None) -> list[dict[str, Any]]:
    """Schedules (of one group, or all), with group names."""
    stmt = (select(schedules, asset_groups.c.name.label("group"))
            .join(asset_groups, asset_groups.c.id == schedules.c.group_id)
            .order_by(asset_groups.c.name, schedules.c.id))
    if group_id is not None:
        stmt = stmt.where(schedules.c.group_id == group_id)
    return [dict(_schedule_dict(r), group=r.group) for r in conn.execute(stmt)]


# --- maintenance windows and blackouts -----------------------------------------------------

def _window_dict(row: Any) -> dict[str, Any]:
    return {"id": row.id, "group_id": row.group_id, "kind": row.kind, "rrule": row.rrule,
            "duration_minutes": row.duration_minutes, "starts_at": iso(row.starts_at),
            "ends_at": iso(row.ends_at), "timezone": row.timezone,
            "description": row.description}


def add_window(conn: Connection, actor: str, group_id: int, *, kind: str = WINDOW,
               rrule: str | None = None, duration: timedelta | None = None,
               starts_at: datetime | None = None, ends_at: datetime | None = None,
               timezone: str = "UTC", description: str | None = None) -> dict[str, Any]:
    """A maintenance window (``kind="window"``) or blackout period of a group.

    ``starts_at`` / ``ends_at`` must carry a UTC offset: a wall time alone would be read in
    whatever zone the server runs in (checked first, before the group, as the edges did).
    """
    for name, moment in (("starts_at", starts_at), ("ends_at", ends_at)):
        if moment is not None and moment.tzinfo is None:
            raise GroupError(f"{name}: give a UTC offset (…Z or …+09:00)")
    require_row(conn, asset_groups, group_id, "asset group")
    if kind not in (WINDOW, BLACKOUT):
        raise GroupError(f"kind: {kind!r} is neither 'window' nor 'blackout'")
    if duration is not None and duration % timedelta(minutes=1):
        raise ScheduleError("duration: must be whole minutes")
    # Validates the rrule, duration, period and time zone before anything is stored.
    MaintenanceWindow(timezone=timezone, rrule=rrule, duration=duration,
                      starts_at=starts_at, ends_at=ends_at)
    # SQLite keeps a datetime's wall time and drops its offset: store UTC, always.
    starts_at = starts_at.astimezone(UTC) if starts_at else None
    ends_at = ends_at.astimezone(UTC) if ends_at else None
    window_id = int(conn.execute(insert(maintenance_windows).values(
        group_id=group_id, kind=kind, rrule=rrule,
        duration_minutes=duration // timedelta(minutes=1) if duration else None,
        starts_at=starts_at, ends_at=ends_at, timezone=timezone, description=description)
        .returning(maintenance_windows.c.id)).scalar_one())
    audit(conn, actor, f"{kind}.create", f"window:{window_id}",
          {"group_id": group_id, "rrule": rrule, "timezone": timezone,
           "duration_minutes": duration // timedelta(minutes=1) if duration else None,
           "starts_at": iso(starts_at), "ends_at": iso(ends_at)})
    return _window_dict(require_row(conn, maintenance_windows, window_id, "window"))


def list_windows(conn: Connection, group_id: int | None = None) -> list[dict[str, Any]]:
    """Windows and blackouts (of one group, or all)."""
    stmt = select(maintenance_windows).order_by(maintenance_windows.c.group_id,
                                                maintenance_windows.c.id)
    if group_id is not None:
        stmt = stmt.where(maintenance_windows.c.group_id == group_id)
    return [_window_dict(r) for r in conn.execute(stmt)]


def delete_window(conn: Connection, actor: str, window_id: int) -> None:
    """Remove a window or blackout."""
    row = require_row(conn, maintenance_windows, window_id, "window")
    conn.execute(delete(maintenance_windows).where(maintenance_windows.c.id == window_id))
    audit(conn, actor, f"{row.kind}.delete", f"window:{window_id}", {"group_id": row.group_id})


# --- SSH targets ---------------------------------------------------------------------------

def set_ssh_target(conn: Connection, actor: str, asset_id: int, target: str | None) -> None:
    """Make an asset an SSH target (``user@host[:port]``), or stop (None)."""
    require_row(conn, assets, asset_id, "asset")
    text = str(SshTarget.parse(target, "ssh_target")) if target else None
    conn.execute(update(assets).where(assets.c.id == asset_id).values(ssh_target=text))
    audit(conn, actor, "asset.ssh_target", f"asset:{asset_id}", {"ssh_target": text})


def add_ssh_target(conn: Connection, actor: str, target: str, *, group_id: int | None = None,
                   name: str | None = None) -> int:
    """An asset for a host without an agent, scanned over SSH; its id.

    Its name is the host until the first scan stores the host's own name.
    """
    parsed = SshTarget.parse(target, "target")
    if group_id is not None:
        require_row(conn, asset_groups, group_id, "asset group")
    now = now_utc()
    asset_id = int(conn.execute(insert(assets).values(
        name=name or parsed.host, first_seen=now, last_seen=now, tags="[]",
        attributes="{}", ip_addresses="[]", ssh_target=str(parsed))
        .returning(assets.c.id)).scalar_one())
    if group_id is not None:
        conn.execute(insert(asset_group_members).values(group_id=group_id, asset_id=asset_id))
    audit(conn, actor, "ssh_target.create", f"asset:{asset_id}",
          {"target": str(parsed), "group_id": group_id})
    return asset_id
