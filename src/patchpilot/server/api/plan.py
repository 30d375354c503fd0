"""The patch plan (JSON, CSV, Ansible), the priority configuration, and SLA figures."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, HTTPException, Response

from patchpilot.reports.ansible import export as ansible_export
from patchpilot.scans.plan import PatchPlan, build_plan, plan_csv
from patchpilot.scoring.apply import active_config, save_config
from patchpilot.scoring.priority import PriorityConfigError, parse_config
from patchpilot.scoring.sla import DIMENSIONS, overdue_findings, sla_report
from patchpilot.server.deps import Admin, EngineDep, Viewer
from patchpilot.server.params import Name200, Search

router = APIRouter(tags=["plan"])


def _plan(engine: EngineDep, group: str | None, since: datetime | None) -> PatchPlan:
    with engine.connect() as conn:
        return build_plan(conn, group=group, since=since)


@router.get("/plan")
def get_plan(who: Viewer, engine: EngineDep, group: Name200 | None = None,
             since: datetime | None = None) -> dict[str, Any]:
    """The patch plan: items by risk removed, hosts, commands, windows; unfixed apart."""
    return _plan(engine, group, since).to_dict()


@router.get("/plan.csv")
def get_plan_csv(who: Viewer, engine: EngineDep, group: Name200 | None = None,
                 since: datetime | None = None) -> Response:
    """The plan as CSV, one row per host of each item."""
    return Response(plan_csv(_plan(engine, group, since)), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="plan.csv"'})


@router.get("/plan/ansible")
def get_plan_ansible(who: Viewer, engine: EngineDep, group: Name200 | None = None,
                     format: Search = "zip") -> Any:
    """The plan as an Ansible playbook with its inventory: a zip, or JSON (``format=json``)."""
    files = ansible_export(_plan(engine, group, None))
    if format == "json":
        return {"files": files}
    if format != "zip":
        raise HTTPException(422, "format must be zip or json")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return Response(buffer.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": 'attachment; filename="plan-ansible.zip"'})


@router.get("/priority-config")
def get_priority_config(who: Viewer, engine: EngineDep) -> dict[str, Any]:
    """The priority configuration in force (as YAML text and as data)."""
    with engine.connect() as conn:
        config = active_config(conn)
    return {"yaml": config.to_yaml(), "config": config.to_mapping()}


@router.put("/priority-config")
def put_priority_config(who: Admin, engine: EngineDep,
                        body: str = Body(..., media_type="application/yaml")) -> dict[str, Any]:
    """Put a priority configuration (YAML) in force and re-prioritise every open finding."""
    try:
        config = parse_config(body, "body")
    except PriorityConfigError as exc:
        raise HTTPException(422, str(exc)) from exc
    with engine.begin() as conn:
        changed = save_config(conn, config, who.name)
    return {"method": config.method, "findings_changed": changed}


@router.get("/sla")
def get_sla(who: Viewer, engine: EngineDep, by: Search = "priority",
            group: Name200 | None = None) -> dict[str, Any]:
    """SLA compliance and MTTR per group, service or priority, and the overdue findings."""
    if by not in DIMENSIONS:
        raise HTTPException(422, f"by must be one of {', '.join(DIMENSIONS)}")
    with engine.connect() as conn:
        rows = sla_report(conn, by, group=group)
        overdue = overdue_findings(conn, limit=100)
    return {"by": by, "rows": [r.to_dict() for r in rows], "overdue": overdue}
