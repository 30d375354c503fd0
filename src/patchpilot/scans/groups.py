"""Asset groups, their schedules and maintenance windows, and SSH targets: the stored side.

The API (``server/api/groups.py``) and the CLI (``patchpilot schedule``/``window``) both
call these functions, each inside the caller's transaction; every change is audited with
who made it.  Expressions, time zones and periods are checked here, before anything is
stored (``scans.schedules`` raises ScheduleError naming the field).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from patchpilot.clock import iso, now_utc
from patchpilot.db.tables import (
    asset_group_members,
    asset_groups,
    assets,
    maintenance_windows,
    schedules,
)
from patchpilot.errors import PatchPilotError
from patchpilot.findings.lifecycle import audit
from patchpilot.inventory.transports.ssh import SshTarget
from patchpilot.scans.schedules import (
    BLACKOUT,
    WINDOW,
    MaintenanceWindow,
    ScheduleError,
    next_run,
    validate_schedule,
)

DEFAULT_MAX_CONCURRENT_SCANS = 5


class GroupError(PatchPilotError):
    """A request about groups that cannot be done as asked (says which field)."""


class NotFound(GroupError):
    """An id that names no group, asset, schedule or window."""


class Conflict(GroupError):
    """A name already taken."""


def _check_rule(rule: dict[str, Any] | None) -> str | None:
    if rule is None:
        return None
    unknown = set(rule) - {"tags", "attributes"}
    if unknown:
        raise GroupError(f"rule: unknown keys {sorted(unknown)}; use tags and attributes")
    tags = rule.get("tags", [])
    attributes = rule.get("attributes", {})
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise GroupError("rule.tags: must be a list of strings")
    if not isinstance(attributes, dict):
        raise GroupError("rule.attributes: must be an object")
    return orjson.dumps({"tags": tags, "attributes": attributes}).decode()


def _require(conn: Connection, table: Any, row_id: int, what: str) -> Any:
    row = conn.execute(select(table).where(table.c.id == row_id)).first()
    if row is None:
        raise NotFound(f"no {what} {row_id}")
    return row


# --- groups --------------------------------------------------------------------------------

def create_group(conn: Connection, actor: str, name: str, *, description: str | None = None,
                 rule: dict[str, Any] | None = None,
                 max_concurrent_scans: int = DEFAULT_MAX_CONCURRENT_SCANS) -> int:
    """A new asset group; its id."""
    if not name.strip():
        raise GroupError("name: must not be empty")
    if max_concurrent_scans < 1:
        raise GroupError("max_concurrent_scans: must be at least 1")
    if conn.execute(select(asset_groups.c.id).where(asset_groups.c.name == name)).first():
        raise Conflict(f"name: a group named {name!r} exists")
    group_id = int(conn.execute(insert(asset_groups).values(
        name=name, description=description, rule=_check_rule(rule),
        max_concurrent_scans=max_concurrent_scans, created_at=now_utc())
        .returning(asset_groups.c.id)).scalar_one())
    audit(conn, actor, "group.create", f"group:{group_id}",
          {"name": name, "rule": rule, "max_concurrent_scans": max_concurrent_scans})
    return group_id


def group_id_named(conn: Connection, name: str) -> int:
    """The id of the group called ``name``."""
    found = conn.execute(select(asset_groups.c.id).where(asset_groups.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no asset group named {name!r}")
    return int(found)


def update_group(conn: Connection, actor: str, group_id: int, **changes: Any) -> None:
    """Change a group's description, rule (None removes it) or max_concurrent_scans."""
    _require(conn, asset_groups, group_id, "asset group")
    values: dict[str, Any] = {}
    if "description" in changes:
        values["description"] = changes["description"]
    if "rule" in changes:
        values["rule"] = _check_rule(changes["rule"])
    if changes.get("max_concurrent_scans") is not None:
        if changes["max_concurrent_scans"] < 1:
            raise GroupError("max_concurrent_scans: must be at least 1")
        values["max_concurrent_scans"] = changes["max_concurrent_scans"]
    if values:
        conn.execute(update(asset_groups).where(asset_groups.c.id == group_id).values(**values))
        audit(conn, actor, "group.update", f"group:{group_id}", changes)


def _group_dict(row: Any, members: int) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description,
            "rule": orjson.loads(row.rule) if row.rule else None,
            "max_concurrent_scans": row.max_concurrent_scans,
            "created_at": iso(row.created_at), "static_members": members}


def list_groups(conn: Connection) -> list[dict[str, Any]]:
    """Every group, with how many static members it has."""
    counts: dict[int, int] = {
        int(g): int(n) for g, n in conn.execute(
            select(asset_group_members.c.group_id, func.count())
            .group_by(asset_group_members.c.group_id))}
    return [_group_dict(r, counts.get(r.id, 0)) for r in
            conn.execute(select(asset_groups).order_by(asset_groups.c.name))]


def get_group(conn: Connection, group_id: int) -> dict[str, Any]:
    """One group with its members (static and by rule), schedules and windows."""
    from patchpilot.scans.scheduler import group_asset_ids

    row = _require(conn, asset_groups, group_id, "asset group")
    static = sorted(conn.execute(select(asset_group_members.c.asset_id).where(
        asset_group_members.c.group_id == group_id)).scalars())
    out = _group_dict(row, len(static))
    out["members"] = {"static": static, "all": group_asset_ids(conn, group_id)}
    out["schedules"] = list_schedules(conn, group_id)
    out["windows"] = list_windows(conn, group_id)
    return out


def add_members(conn: Connection, actor: str, group_id: int, asset_ids: list[int]) -> int:
    """Add assets to a group (static membership); how many were new."""
    _require(conn, asset_groups, group_id, "asset group")
    wanted = set(asset_ids)
    known = set(conn.execute(select(assets.c.id).where(assets.c.id.in_(wanted))).scalars())
    if wanted - known:
        raise NotFound(f"asset_ids: no asset {sorted(wanted - known)}")
    present = set(conn.execute(select(asset_group_members.c.asset_id).where(
        asset_group_members.c.group_id == group_id)).scalars())
    new = sorted(wanted - present)
    if new:
        conn.execute(insert(asset_group_members),
                     [{"group_id": group_id, "asset_id": a} for a in new])
        audit(conn, actor, "group.members.add", f"group:{group_id}", {"asset_ids": new})
    return len(new)


def remove_member(conn: Connection, actor: str, group_id: int, asset_id: int) -> None:
    """Remove a static member."""
    done = conn.execute(delete(asset_group_members).where(
        asset_group_members.c.group_id == group_id, asset_group_members.c.asset_id == asset_id))
    if done.rowcount == 0:
        raise NotFound(f"asset {asset_id} is not a static member of group {group_id}")
    audit(conn, actor, "group.members.remove", f"group:{group_id}", {"asset_id": asset_id})


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
    _require(conn, asset_groups, group_id, "asset group")
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
    return _schedule_dict(_require(conn, schedules, schedule_id, "schedule"))


def update_schedule(conn: Connection, actor: str, schedule_id: int, *,
                    now: datetime | None = None, **changes: Any) -> dict[str, Any]:
    """Change a schedule's kind, expression, time zone or enabled; next run recomputed."""
    row = _require(conn, schedules, schedule_id, "schedule")
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
    return _schedule_dict(_require(conn, schedules, schedule_id, "schedule"))


def delete_schedule(conn: Connection, actor: str, schedule_id: int) -> None:
    """Remove a schedule."""
    row = _require(conn, schedules, schedule_id, "schedule")
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
    """A maintenance window (``kind="window"``) or blackout period of a group."""
    _require(conn, asset_groups, group_id, "asset group")
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
    return _window_dict(_require(conn, maintenance_windows, window_id, "window"))


def list_windows(conn: Connection, group_id: int | None = None) -> list[dict[str, Any]]:
    """Windows and blackouts (of one group, or all)."""
    stmt = select(maintenance_windows).order_by(maintenance_windows.c.group_id,
                                                maintenance_windows.c.id)
    if group_id is not None:
        stmt = stmt.where(maintenance_windows.c.group_id == group_id)
    return [_window_dict(r) for r in conn.execute(stmt)]


def delete_window(conn: Connection, actor: str, window_id: int) -> None:
    """Remove a window or blackout."""
    row = _require(conn, maintenance_windows, window_id, "window")
    conn.execute(delete(maintenance_windows).where(maintenance_windows.c.id == window_id))
    audit(conn, actor, f"{row.kind}.delete", f"window:{window_id}", {"group_id": row.group_id})


# --- SSH targets ---------------------------------------------------------------------------

def set_ssh_target(conn: Connection, actor: str, asset_id: int, target: str | None) -> None:
    """Make an asset an SSH target (``user@host[:port]``), or stop (None)."""
    _require(conn, assets, asset_id, "asset")
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
        _require(conn, asset_groups, group_id, "asset group")
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
