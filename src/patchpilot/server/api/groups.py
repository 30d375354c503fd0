"""Asset groups: members and rules, scan schedules, maintenance windows and blackouts,
emergency scans, SSH targets.

Thin: each route parses its input and calls one function of ``assets.groups``,
``scans.groups`` or ``scans.scheduler``; their errors by kind (NotFound, Conflict,
InvalidInput) become 404, 409 or 422 in the app's one handler (``server/web``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from patchpilot.assets import groups as asset_groups
from patchpilot.scans import groups
from patchpilot.scans.scheduler import scan_now
from patchpilot.scans.schedules import parse_duration
from patchpilot.server.deps import Admin, Analyst, EngineDep
from patchpilot.server.params import DbId, Name300, Text

router = APIRouter(tags=["groups"])


# --- answers (what the stage functions return, field for field) -----------------------------

class GroupOut(BaseModel):
    """A group as listed: its rule and how many static members it has."""

    id: int
    name: str
    description: str | None
    rule: dict[str, Any] | None
    max_concurrent_scans: int
    created_at: str | None
    static_members: int


class Members(BaseModel):
    """A group's members: the static ones, and all (static and selected by its rule)."""

    static: list[int]
    all: list[int]


class ScheduleOut(BaseModel):
    """A scan schedule with its next and last run (``group``: its group's name, in lists)."""


    id: int
    group_id: int
    kind: str
    expression: str
    timezone: str
    enabled: bool
    next_run_at: str | None
    last_run_at: str | None
    created_at: str | None


class ListedSchedule(ScheduleOut):
    """A schedule as listed, with its group's name."""

    group: str


class WindowOut(BaseModel):
    """A maintenance window or blackout (recurring, or one absolute period)."""

    id: int
    group_id: int
    kind: str
    rrule: str | None
    duration_minutes: int | None
    starts_at: str | None
    ends_at: str | None
    timezone: str
    description: str | None


class GroupDetail(GroupOut):
    """One group with its members, schedules and windows."""

    members: Members
    schedules: list[ListedSchedule]
    windows: list[WindowOut]


class Added(BaseModel):
    """How many of the assets were new members."""

    added: int


class ScanQueued(BaseModel):
    """The jobs a scan of a group enqueued (``run_after`` null: no allowed moment within
    the horizon, nothing queued)."""

    group_id: int
    run_after: str | None
    collect: int
    ssh_scan: int
    already_queued: int
    unreachable: int


class SshTargetSet(BaseModel):
    """An asset's SSH target after the change (null: no SSH scans)."""

    asset_id: int
    ssh_target: str | None


class SshTargetAdded(BaseModel):
    """The asset created for an agentless host."""

    asset_id: int
    target: str
    group_id: int | None


class Rule(BaseModel):
    """Dynamic membership: assets carrying every tag and every attribute value."""

    tags: list[Text] = Field(default_factory=list)
    attributes: dict[Text, Any] = Field(default_factory=dict)


class GroupIn(BaseModel):
    """A new asset group (a site, a service, a team's servers)."""

    name: Text = Field(min_length=1, max_length=200)
    description: Text | None = Field(None, max_length=4000)
    rule: Rule | None = None
    max_concurrent_scans: int = Field(asset_groups.DEFAULT_MAX_CONCURRENT_SCANS, ge=1, le=10_000)


class GroupChange(BaseModel):
    """Fields of a group to change; a ``rule`` of null removes the rule."""

    description: Text | None = Field(None, max_length=4000)
    rule: Rule | None = None
    max_concurrent_scans: int | None = Field(None, ge=1, le=10_000)


@router.post("/groups", status_code=201, response_model=GroupDetail)
def create_group(body: GroupIn, who: Admin, engine: EngineDep) -> dict[str, Any]:
    """Create a group."""
    with engine.begin() as conn:
        group_id = asset_groups.create_group(
            conn, who.name, body.name, description=body.description,
            rule=body.rule.model_dump() if body.rule else None,
            max_concurrent_scans=body.max_concurrent_scans)
        return groups.get_group(conn, group_id)


@router.get("/groups", response_model=list[GroupOut])
def list_groups(who: Admin, engine: EngineDep) -> list[dict[str, Any]]:
    """Every group."""
    with engine.connect() as conn:
        return asset_groups.list_groups(conn)


@router.get("/groups/{group_id}", response_model=GroupDetail)
def get_group(group_id: DbId, who: Admin, engine: EngineDep) -> dict[str, Any]:
    """One group with its members, schedules and windows."""
    with engine.connect() as conn:
        return groups.get_group(conn, group_id)


@router.patch("/groups/{group_id}", response_model=GroupDetail)
def update_group(group_id: DbId, body: GroupChange, who: Admin, engine: EngineDep
                 ) -> dict[str, Any]:
    """Change a group's description, rule or scan limit (only the fields sent)."""
    changes = body.model_dump(exclude_unset=True)
    if "rule" in changes and body.rule is not None:
        changes["rule"] = body.rule.model_dump()
    with engine.begin() as conn:
        asset_groups.update_group(conn, who.name, group_id, **changes)
        return groups.get_group(conn, group_id)


class MembersIn(BaseModel):
    """Assets to add to a group."""

    asset_ids: list[DbId] = Field(min_length=1, max_length=10_000)


@router.post("/groups/{group_id}/members", response_model=Added)
def add_members(group_id: DbId, body: MembersIn, who: Admin, engine: EngineDep
                ) -> dict[str, int]:
    """Add static members."""
    with engine.begin() as conn:
        return {"added": asset_groups.add_members(conn, who.name, group_id, body.asset_ids)}


@router.delete("/groups/{group_id}/members/{asset_id}", status_code=204)
def remove_member(group_id: DbId, asset_id: DbId, who: Admin, engine: EngineDep) -> None:
    """Remove a static member."""
    with engine.begin() as conn:
        asset_groups.remove_member(conn, who.name, group_id, asset_id)


class ScheduleIn(BaseModel):
    """A cron expression or an RFC 5545 RRULE, read in an IANA time zone."""

    kind: Literal["cron", "rrule"]
    expression: Text = Field(min_length=1, max_length=1000)
    timezone: Text = Field("UTC", min_length=1, max_length=64)
    enabled: bool = True


class ScheduleChange(BaseModel):
    """Fields of a schedule to change."""

    kind: Literal["cron", "rrule"] | None = None
    expression: Text | None = Field(None, min_length=1, max_length=1000)
    timezone: Text | None = Field(None, min_length=1, max_length=64)
    enabled: bool | None = None


@router.post("/groups/{group_id}/schedules", status_code=201,
             response_model=ScheduleOut)
def add_schedule(group_id: DbId, body: ScheduleIn, who: Admin, engine: EngineDep
                 ) -> dict[str, Any]:
    """Add a scan schedule to a group (its first run is computed at once)."""
    with engine.begin() as conn:
        return groups.add_schedule(conn, who.name, group_id, body.kind, body.expression,
                                   body.timezone, enabled=body.enabled)


@router.get("/groups/{group_id}/schedules", response_model=list[ListedSchedule])
def list_schedules(group_id: DbId, who: Admin, engine: EngineDep) -> list[dict[str, Any]]:
    """A group's schedules."""
    with engine.connect() as conn:
        return groups.list_schedules(conn, group_id)


@router.patch("/schedules/{schedule_id}", response_model=ScheduleOut)
def update_schedule(schedule_id: DbId, body: ScheduleChange, who: Admin, engine: EngineDep
                    ) -> dict[str, Any]:
    """Change a schedule; its next run is recomputed."""
    with engine.begin() as conn:
        return groups.update_schedule(conn, who.name, schedule_id,
                                      **body.model_dump(exclude_unset=True))


@router.delete("/schedules/{schedule_id}", status_code=204)
def delete_schedule(schedule_id: DbId, who: Admin, engine: EngineDep) -> None:
    """Remove a schedule."""
    with engine.begin() as conn:
        groups.delete_schedule(conn, who.name, schedule_id)


class WindowIn(BaseModel):
    """A maintenance window (scans only inside) or a blackout (never during).

    Recurring: ``rrule`` (each start, on the wall clock of ``timezone``) and ``duration``
    (``4h``, ``90m``); or one absolute period: ``starts_at`` and ``ends_at`` with offsets.
    """

    kind: Literal["window", "blackout"] = "window"
    rrule: Text | None = Field(None, max_length=1000)
    duration: Text | None = Field(None, max_length=20)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    timezone: Text = Field("UTC", min_length=1, max_length=64)
    description: Text | None = Field(None, max_length=2000)


@router.post("/groups/{group_id}/windows", status_code=201, response_model=WindowOut)
def add_window(group_id: DbId, body: WindowIn, who: Admin, engine: EngineDep) -> dict[str, Any]:
    """Add a maintenance window or blackout to a group."""
    with engine.begin() as conn:
        return groups.add_window(
            conn, who.name, group_id, kind=body.kind, rrule=body.rrule,
            duration=parse_duration(body.duration) if body.duration else None,
            starts_at=body.starts_at, ends_at=body.ends_at, timezone=body.timezone,
            description=body.description)


@router.get("/groups/{group_id}/windows", response_model=list[WindowOut])
def list_windows(group_id: DbId, who: Admin, engine: EngineDep) -> list[dict[str, Any]]:
    """A group's windows and blackouts."""
    with engine.connect() as conn:
        return groups.list_windows(conn, group_id)


@router.delete("/windows/{window_id}", status_code=204)
def delete_window(window_id: DbId, who: Admin, engine: EngineDep) -> None:
    """Remove a window or blackout."""
    with engine.begin() as conn:
        groups.delete_window(conn, who.name, window_id)


class ScanNowIn(BaseModel):
    """Scan a group now.  ``override`` ignores its windows and blackouts (an emergency:
    ``reason`` is then required and audited)."""

    override: bool = False
    reason: Text | None = Field(None, max_length=2000)


@router.post("/groups/{group_id}/scan-now", status_code=202, response_model=ScanQueued)
def scan_group_now(group_id: DbId, body: ScanNowIn, who: Analyst, engine: EngineDep
                   ) -> dict[str, Any]:
    """Queue a scan of every asset of the group (at its next allowed moment, or at once
    with ``override``)."""
    result = scan_now(engine, group_id, actor=who.name, override=body.override,
                      reason=body.reason)
    return result.as_dict()


class SshTargetIn(BaseModel):
    """Where to reach an asset over SSH: ``user@host[:port]``; null stops SSH scans."""

    ssh_target: Text | None = Field(None, max_length=300)


@router.patch("/assets/{asset_id}/ssh-target", response_model=SshTargetSet)
def set_ssh_target(asset_id: DbId, body: SshTargetIn, who: Admin, engine: EngineDep
                   ) -> dict[str, Any]:
    """Make an asset an SSH target (scanned by the server's workers), or stop."""
    with engine.begin() as conn:
        groups.set_ssh_target(conn, who.name, asset_id, body.ssh_target)
    return {"asset_id": asset_id, "ssh_target": body.ssh_target}


class NewSshTarget(BaseModel):
    """A host without an agent, scanned over SSH."""

    target: Text = Field(min_length=1, max_length=300)
    group_id: DbId | None = None
    name: Name300 | None = None


@router.post("/ssh-targets", status_code=201, response_model=SshTargetAdded)
def add_ssh_target(body: NewSshTarget, who: Admin, engine: EngineDep) -> dict[str, Any]:
    """Create the asset of an agentless host (in ``group_id`` when given)."""
    with engine.begin() as conn:
        asset_id = groups.add_ssh_target(conn, who.name, body.target, group_id=body.group_id,
                                         name=body.name)
    return {"asset_id": asset_id, "target": body.target, "group_id": body.group_id}
