"""The patch plan (JSON, CSV, Ansible), the priority configuration, and SLA figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, HTTPException, Response
from pydantic import BaseModel

from patchpilot.reports.ansible import export as ansible_export
from patchpilot.scans.plan import PatchPlan, build_plan
from patchpilot.scoring.apply import active_config, save_config
from patchpilot.scoring.priority import parse_config
from patchpilot.scoring.sla import DIMENSIONS, overdue_findings, sla_report
from patchpilot.server.deps import Admin, EngineDep, Viewer
from patchpilot.server.downloads import plan_ansible_response, plan_csv_response
from patchpilot.server.params import Name200, Search

router = APIRouter(tags=["plan"])


# --- answers (``scans.plan`` / ``scoring`` data, field for field) ---------------------------

class PlanInstallationOut(BaseModel):
    """One copy of the package on the host (``location``: its site-packages folder or
    lock file; null: the OS package) and the command that upgrades it there."""

    location: str | None
    installed_version: str
    command: str | None


class PlanHostOut(BaseModel):
    """One host of a plan item (``next_window``: ISO start; null: any time)."""

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


class PlanItemOut(BaseModel):
    """One change: a package upgraded to one fixed version, on its hosts."""

    ecosystem: str
    package: str
    fixed_version: str
    manager: str
    command: str | None
    reboot: bool
    vulns: list[str]
    by_priority: dict[str, int]
    known_exploited: int
    risk: int
    hosts: list[PlanHostOut]
    summary: str
    pending: int
    verified: int


class UnfixedOut(BaseModel):
    """Findings no published fix removes yet, per package."""

    ecosystem: str
    package: str
    vulns: list[str]
    hosts: list[str]
    best_priority: int | None
    workaround: str | None


class PlanOut(BaseModel):
    """The patch plan: items by risk removed, then what no fix removes yet."""

    generated_at: str | None
    since: str | None
    items: list[PlanItemOut]
    unfixed: list[UnfixedOut]


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


def _plan(engine: EngineDep, group: str | None, since: datetime | None) -> PatchPlan:
    with engine.connect() as conn:
        return build_plan(conn, group=group, since=since)


@router.get("/plan", response_model=PlanOut)
def get_plan(who: Viewer, engine: EngineDep, group: Name200 | None = None,
             since: datetime | None = None) -> dict[str, Any]:
    """The patch plan: items by risk removed, hosts, commands, windows; unfixed apart."""
    return _plan(engine, group, since).to_dict()


@router.get("/plan.csv", response_class=Response,
            responses={200: {"description": "the plan as CSV",
                             "content": {"text/csv": {}}}})
def get_plan_csv(who: Viewer, engine: EngineDep, group: Name200 | None = None,
                 since: datetime | None = None) -> Response:
    """The plan as CSV, one row per host of each item."""
    return plan_csv_response(_plan(engine, group, since))


@router.get("/plan/ansible", response_model=AnsibleFiles,
            responses={200: {"description": "a zip (playbook and inventory), or JSON with "
                                            "``format=json``",
                             "content": {"application/zip": {}}}})
def get_plan_ansible(who: Viewer, engine: EngineDep, group: Name200 | None = None,
                     format: Search = "zip") -> Any:
    """The plan as an Ansible playbook with its inventory: a zip, or JSON (``format=json``)."""
    if format not in ("zip", "json"):
        raise HTTPException(422, "format must be zip or json")
    plan = _plan(engine, group, None)
    if format == "json":
        return {"files": ansible_export(plan)}
    return plan_ansible_response(plan)


@router.get("/priority-config", response_model=PriorityConfigOut)
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
def get_sla(who: Viewer, engine: EngineDep, by: Search = "priority",
            group: Name200 | None = None) -> dict[str, Any]:
    """SLA compliance and MTTR per group, service or priority, and the overdue findings."""
    if by not in DIMENSIONS:
        raise HTTPException(422, f"by must be one of {', '.join(DIMENSIONS)}")
    with engine.connect() as conn:
        rows = sla_report(conn, by, group=group)
        overdue = overdue_findings(conn, limit=100)
    return {"by": by, "rows": [r.to_dict() for r in rows], "overdue": overdue}
