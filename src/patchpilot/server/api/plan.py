"""The patch plan (JSON, CSV, Ansible, Windows KBs per host), the priority configuration and
SLA figures."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from fastapi import APIRouter, Body, HTTPException, Path, Query, Response
from pydantic import BaseModel, StringConstraints

from patchpilot.clock import iso, now_utc
from patchpilot.reports.ansible import export_items
from patchpilot.reports.windows_updates import CSV_NAME, SCRIPT_NAME
from patchpilot.scans import plan_store
from patchpilot.scans.plan_store import PlanPage, PlanQuery, PlanStatus
from patchpilot.scoring.apply import active_config, save_config
from patchpilot.scoring.priority import parse_config
from patchpilot.scoring.sla import DIMENSIONS, overdue_findings, sla_report
from patchpilot.server.deps import Admin, EngineDep, Viewer, scope_aware
from patchpilot.server.downloads import (
    plan_ansible_response,
    plan_csv_response,
    plan_windows_response,
)
from patchpilot.server.params import Name200, Priority, Search
from patchpilot.server.security import Principal, reach

Cursor = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}$")]

router = APIRouter(tags=["plan"])


# --- answers (``scans.plan`` / ``scoring`` data, field for field) ---------------------------

class PlanInstallationOut(BaseModel):
    """One copy of the package on the host (``location``: its site-packages folder or
    lock file; null: the OS package) and the command that upgrades it there."""

    location: str | None
    installed_version: str
    command: str | None


class PlanHostOut(BaseModel):
    """One host of a plan item (``next_window``: ISO start; null: any time; ``vulns``:
    its open vulnerabilities the item fixes, or for a verified host those fixed)."""

    asset_id: int
    name: str
    status: str
    installed_version: str | None
    binaries: list[str]
    best_priority: int | None
    groups: list[str]
    next_window: str | None
    reboot_pending: bool | None
    installations: list[PlanInstallationOut]
    vulns: list[str]


class WindowCountOut(BaseModel):
    """Pending hosts of an item whose next maintenance window starts at ``window`` (ISO;
    null: hosts that may be patched any time)."""

    window: str | None
    hosts: int


class PlanItemOut(BaseModel):
    """One change (``kind`` fix: a package upgraded to one fixed version; unfixed: the
    findings of a package no published fix removes, with the workarounds), with its
    figures for the hosts asked for and the first of those hosts.  ``key`` is stable
    across rebuilds of the plan: ``GET /api/plan/items/{key}/hosts`` lists the rest."""

    key: str
    rank: int
    kind: str
    ecosystem: str
    package: str
    fixed_version: str
    manager: str
    command: str | None
    reboot: bool
    located: bool
    workaround: str | None
    vulns: list[str]
    by_priority: dict[str, int]
    known_exploited: int
    risk: int
    pending: int
    verified: int
    hosts_by_priority: dict[str, int]
    hosts_by_window: list[WindowCountOut]
    first_hosts: list[PlanHostOut]
    summary: str


class PlanPageOut(BaseModel):
    """A page of the patch plan, most risk removed first.  ``stale``: findings changed
    since ``generated_at`` and a worker is rebuilding it; ``next_cursor``: pass it as
    ``cursor`` for the next page (null: the last page)."""

    generated_at: str | None
    since: str | None
    stale: bool
    total: int
    next_cursor: str | None
    items: list[PlanItemOut]


class PlanHostsOut(BaseModel):
    """A page of one item's hosts, pending first by priority and name."""

    item: PlanItemOut
    total: int
    next_cursor: str | None
    hosts: list[PlanHostOut]


class AnsibleFiles(BaseModel):
    """The Ansible export as text (``format=json``): file name → content."""

    files: dict[str, str]


class PriorityConfigOut(BaseModel):
    """The priority configuration in force, as YAML text and as data."""

    yaml: str
    config: dict[str, Any]


class PriorityConfigSaved(BaseModel):
    """The method now in force and how many open findings changed priority."""

    method: str
    findings_changed: int


class SlaRowOut(BaseModel):
    """SLA figures of one group, service or priority (``compliance``: 0..1, null when
    nothing is due yet)."""

    key: str
    open: int
    overdue: int
    fixed: int
    fixed_within_sla: int
    compliance: float | None
    mttr_days: float | None


class OverdueOut(BaseModel):
    """An open finding past its due date."""

    finding_id: int
    vuln_id: str
    package: str
    asset: str
    priority: int
    due_date: str | None
    reason: str | None  # in English
    reason_code: dict[str, Any] | None  # the reason as a code (scoring.reasons)


class SlaOut(BaseModel):
    """SLA compliance and MTTR per ``by``, and the oldest overdue findings."""

    by: str
    rows: list[SlaRowOut]
    overdue: list[OverdueOut]


class PlanFilters(BaseModel):
    """Which part of the plan: a group's or a service's hosts, items with a pending host
    of ``priority`` or more urgent, known-exploited items, items that need a reboot."""

    group: Name200 | None = None
    service: Name200 | None = None
    priority: Priority | None = None
    kev: bool = False
    reboot: bool | None = None


Filters = Annotated[PlanFilters, Query()]
ItemKey = Annotated[str, Path(pattern="^[0-9a-f]{20}$")]


def _query(engine: EngineDep, f: PlanFilters, who: Principal
           ) -> tuple[PlanStatus, PlanQuery]:
    """The plan and the query of the filters, of the caller's part of the estate."""
    state = plan_store.ensure_current(engine)
    with engine.connect() as conn:
        return state, plan_store.query_for(conn, group=f.group, service=f.service,
                                           priority=f.priority, kev=f.kev, reboot=f.reboot,
                                           reach=reach(conn, who))


def _page_dict(page: PlanPage) -> dict[str, Any]:
    return {"generated_at": iso(page.status.generated_at), "since": iso(page.status.since),
            "stale": page.status.stale, "total": page.total,
            "next_cursor": page.next_cursor, "items": [i.to_dict() for i in page.items]}


@router.get("/plan", response_model=PlanPageOut)
@scope_aware
def get_plan(who: Viewer, engine: EngineDep, filters: Filters, kind: Literal["fix", "unfixed"]
             = "fix", limit: Annotated[int, Ge(1), Le(200)] = 25,
             cursor: Cursor | None = None) -> dict[str, Any]:
    """A page of the patch plan: items by risk removed (``kind=unfixed``: what no fix
    removes yet), each with host counts per priority and window and its first hosts."""
    state, query = _query(engine, filters, who)
    with engine.connect() as conn:
        page = plan_store.read_page(conn, state, query, kind=kind, limit=limit,
                                    cursor=cursor)
    return _page_dict(page)


@router.get("/plan/items/{key}/hosts", response_model=PlanHostsOut)
@scope_aware
def get_plan_item_hosts(who: Viewer, engine: EngineDep, key: ItemKey, filters: Filters,
                        limit: Annotated[int, Ge(1), Le(1000)] = 100,
                        cursor: Cursor | None = None) -> dict[str, Any]:
    """A page of one plan item's hosts (of the group or service asked for)."""
    state, query = _query(engine, filters, who)
    with engine.connect() as conn:
        page = plan_store.read_hosts(conn, state, key, query, limit=limit, cursor=cursor)
    return {"item": page.item.to_dict(), "total": page.total,
            "next_cursor": page.next_cursor, "hosts": [asdict(h) for h in page.hosts]}


@router.get("/plan.csv", response_class=Response,
            responses={200: {"description": "the plan as CSV",
                             "content": {"text/csv": {}}}})
@scope_aware
def get_plan_csv(who: Viewer, engine: EngineDep, filters: Filters) -> Response:
    """The plan as CSV, one row per host of each item, streamed."""
    return plan_csv_response(engine, _query(engine, filters, who)[1])


@router.get("/plan/ansible", response_model=AnsibleFiles,
            responses={200: {"description": "a zip (playbook and inventory), or JSON with "
                                            "``format=json``",
                             "content": {"application/zip": {}}}})
@scope_aware
def get_plan_ansible(who: Viewer, engine: EngineDep, filters: Filters,
                     format: Literal["zip", "json"] = "zip") -> Any:
    """The plan as an Ansible playbook with its inventory: a zip, or JSON (``format=json``)."""
    state, query = _query(engine, filters, who)
    if format == "json":
        with engine.connect() as conn:
            return {"files": export_items(plan_store.iter_items(conn, state, query),
                                          state.generated_at or now_utc())}
    return plan_ansible_response(engine, query)


@router.get("/plan/windows-kbs.csv", response_class=Response,
            responses={200: {"description": "host, kb, title, restart",
                             "content": {"text/csv": {}}}})
@scope_aware
def get_plan_windows_kbs(who: Viewer, engine: EngineDep, filters: Filters) -> Response:
    """The KBs each Windows host of the plan is to install, as CSV (one row per host and
    KB: host, kb, title, restart yes/no), for WSUS approvals or a spreadsheet."""
    return plan_windows_response(engine, _query(engine, filters, who)[1], CSV_NAME)


@router.get("/plan/windows-updates.ps1", response_class=Response,
            responses={200: {"description": "a PowerShell script (PSWindowsUpdate)",
                             "content": {"text/plain": {}}}})
@scope_aware
def get_plan_windows_script(who: Viewer, engine: EngineDep, filters: Filters) -> Response:
    """A PowerShell script installing each Windows host's KBs with the PSWindowsUpdate
    module (one block per host, guarded by its name; run the same file on every host)."""
    return plan_windows_response(engine, _query(engine, filters, who)[1], SCRIPT_NAME)


@router.get("/priority-config", response_model=PriorityConfigOut)
@scope_aware  # the method and weights: no asset data
def get_priority_config(who: Viewer, engine: EngineDep) -> dict[str, Any]:
    """The priority configuration in force (as YAML text and as data)."""
    with engine.connect() as conn:
        config = active_config(conn)
    return {"yaml": config.to_yaml(), "config": config.to_mapping()}


@router.put("/priority-config", response_model=PriorityConfigSaved)
def put_priority_config(who: Admin, engine: EngineDep,
                        body: str = Body(..., media_type="application/yaml")) -> dict[str, Any]:
    """Put a priority configuration (YAML) in force and re-prioritise every open finding."""
    config = parse_config(body, "body")  # PriorityConfigError: an InvalidInput, 422
    with engine.begin() as conn:
        changed = save_config(conn, config, who.name)
    return {"method": config.method, "findings_changed": changed}


@router.get("/sla", response_model=SlaOut)
@scope_aware
def get_sla(who: Viewer, engine: EngineDep, by: Search = "priority",
            group: Name200 | None = None) -> dict[str, Any]:
    """SLA compliance and MTTR per group, service or priority, and the overdue findings."""
    if by not in DIMENSIONS:
        raise HTTPException(422, f"by must be one of {', '.join(DIMENSIONS)}")
    with engine.connect() as conn:
        ids = reach(conn, who)
        rows = sla_report(conn, by, group=group, asset_ids=ids)
        overdue = overdue_findings(conn, limit=100, asset_ids=ids)
    return {"by": by, "rows": [r.to_dict() for r in rows], "overdue": overdue}
