"""Findings: list and filter; triage decisions (analyst) with an audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select, update

from patchpilot.assets.groups import Scope, group_members, resolve_scope
from patchpilot.audit import audit
from patchpilot.clock import iso, now_utc
from patchpilot.db.tables import (
    asset_groups,
    assets,
    triage_decisions,
)
from patchpilot.findings.model import STATES
from patchpilot.findings.queries import finding_dates, finding_detail, installations
from patchpilot.findings.search import SORTS, FindingFilter, search_findings
from patchpilot.findings.triage import (
    TriageError,
    check_decision,
    reapply_decisions,
    record_decision,
)
from patchpilot.reports.overview import overview
from patchpilot.scoring.reasons import loads as reasons_loads
from patchpilot.scoring.reasons import reason_text
from patchpilot.server.deps import Analyst, EngineDep, Viewer
from patchpilot.server.params import (
    DbId,
    Limit,
    Name200,
    Name300,
    Offset,
    Priority,
    Search,
    Text,
    require_row,
)

router = APIRouter(tags=["findings"])


@router.get("/findings")
def list_findings(who: Viewer, engine: EngineDep, state: Search | None = "open",
                  severity: Search | None = None, priority: Priority | None = None,
                  kev: bool | None = None, fix_available: bool | None = None,
                  group: Name200 | None = None, asset_id: DbId | None = None,
                  vuln: Name200 | None = None, package: Name300 | None = None,
                  q: Search | None = None, sort: Search = "priority", order: Search = "asc",
                  limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """Findings in work order (priority, then score), filtered, sorted and paged as the
    dashboard's list; ``state=any`` for every state.  ``total`` is exact when
    ``total_exact`` is true, else a lower bound (counts stop at 1,000 beyond what the
    per-asset summary can answer)."""
    if state not in (None, "any", *STATES):
        raise HTTPException(422,
                            f"state must be one of {', '.join(STATES)} or any")
    if sort not in SORTS:
        raise HTTPException(422, f"sort must be one of {', '.join(SORTS)}")
    if order not in ("asc", "desc"):
        raise HTTPException(422, "order must be asc or desc")
    flt = FindingFilter(state=None if state in (None, "any") else state, priority=priority,
                        severity=severity, known_exploited=kev, fix_available=fix_available,
                        group=group, asset_id=asset_id, text=q, vuln_id=vuln,
                        package=package)
    with engine.connect() as conn:
        page = search_findings(conn, flt, sort=sort, descending=order == "desc",
                               limit=limit, offset=offset,
                               members=group_members(conn, group) if group else None)
        extra = finding_dates(conn, (r.id for r in page.rows))
    return {"total": page.total, "total_exact": page.exact, "items": [
        {"id": r.id, "asset_id": r.asset_id, "asset": r.asset, "vuln_id": r.vuln_id,
         "ecosystem": r.ecosystem, "package": r.package, "state": r.state,
         "severity": r.severity, "cvss_score": r.cvss_score,
         "known_exploited": r.known_exploited, "epss_score": extra[r.id].epss_score,
         "installed_version": r.installed_version, "fixed_version": r.fixed_version,
         "installations": installations(r.installations, r.installed_version,
                                        r.fixed_version),
         "first_seen": iso(r.first_seen),
         "last_seen": iso(extra[r.id].last_seen),
         "fixed_at": iso(extra[r.id].fixed_at),
         "new_from_feed": extra[r.id].new_from_feed,
         "priority": f"P{r.priority}" if r.priority else None,
         "priority_reason": reason_text(r.reason) or None,
         "priority_reason_code": reasons_loads(r.reason),
         "due_date": iso(r.due_date)} for r in page.rows]}


@router.get("/overview")
def get_overview(who: Viewer, engine: EngineDep, group: Name200 | None = None,
                 service: Name200 | None = None) -> dict[str, Any]:
    """The dashboard overview's figures (of the estate, a group or a service) as JSON."""
    with engine.connect() as conn:
        ids = resolve_scope(conn, Scope(group=group or None, service=service or None))
        figures = overview(conn, asset_ids=ids).to_dict()
    for a in figures["not_scanned_assets"]:
        a["last_seen"] = iso(a["last_seen"])
    return figures


@router.get("/findings/{finding_id}")
def get_finding(finding_id: DbId, who: Viewer, engine: EngineDep) -> dict[str, Any]:
    """One finding with every report field."""
    with engine.connect() as conn:
        found = finding_detail(conn, finding_id)
    row = found.row
    return {"id": row.id, "asset_id": row.asset_id, "state": row.state,
            "first_seen": iso(row.first_seen),
            "last_seen": iso(row.last_seen),
            "times_reopened": row.times_reopened,
            "priority": f"P{row.priority}" if row.priority else None,
            "priority_reason": reason_text(row.priority_reason) or None,
            "priority_reason_code": reasons_loads(row.priority_reason),
            "due_date": iso(row.due_date),
            **found.data}


class TriageRequest(BaseModel):
    """A triage decision: risk accepted (with an expiry), false positive, not affected."""

    vuln_id: Text = Field(min_length=3, max_length=200)
    package: Name300 | None = None
    scope: Literal["asset", "group", "global"]
    asset_id: DbId | None = None
    group_id: DbId | None = None
    decision: Literal["accepted", "false_positive", "not_affected"]
    reason: Text = Field(min_length=3, max_length=4000)
    expires_at: datetime | None = None

    @model_validator(mode="after")
    def _scope_target(self) -> TriageRequest:
        # The rules are the stage's (the dashboard checks the same); a 422 like any field.
        try:
            check_decision(decision=self.decision, scope=self.scope, reason=self.reason,
                           expires_at=self.expires_at, asset_id=self.asset_id,
                           group_id=self.group_id)
        except TriageError as exc:
            raise ValueError(str(exc)) from exc
        return self


@router.post("/triage", status_code=201)
def triage(body: TriageRequest, who: Analyst, engine: EngineDep) -> dict[str, Any]:
    """Record a decision and apply it to the findings it covers at once."""
    with engine.begin() as conn:
        # The decision's target must exist: checked here, so an unknown id is a 404
        # naming the field (not a foreign-key violation from the insert, a 500).
        if body.scope == "asset":
            require_row(conn, assets, body.asset_id, "asset_id", "asset")
        elif body.scope == "group":
            require_row(conn, asset_groups, body.group_id, "group_id", "asset group")
        decision_id, changed = record_decision(
            conn, who.name, vuln_id=body.vuln_id, package=body.package, scope=body.scope,
            decision=body.decision, reason=body.reason, asset_id=body.asset_id,
            group_id=body.group_id, expires_at=body.expires_at,
            detail=body.model_dump(mode="json"))
    return {"id": decision_id, "findings_changed": changed}


@router.delete("/triage/{decision_id}", status_code=200)
def revoke_triage(decision_id: DbId, who: Analyst, engine: EngineDep) -> dict[str, Any]:
    """Withdraw a decision: the findings it covered are open again."""
    with engine.begin() as conn:
        row = conn.execute(select(triage_decisions.c.vuln_id).where(
            triage_decisions.c.id == decision_id,
            triage_decisions.c.revoked_at.is_(None))).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no active decision {decision_id}")
        conn.execute(update(triage_decisions).where(triage_decisions.c.id == decision_id)
                     .values(revoked_at=now_utc()))
        audit(conn, who.name, "triage.revoke", str(decision_id))
        changed = reapply_decisions(conn, vuln_id=row.vuln_id, actor=who.name)
    return {"id": decision_id, "findings_changed": changed}
