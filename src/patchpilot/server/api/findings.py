"""Findings: list and filter; triage decisions (analyst) with an audit trail.

A user limited to part of the estate (issue 18) sees and triages their assets' findings
only (the routes marked ``scope_aware``): the list and its total are narrowed
(``FindingFilter.reach``), a finding elsewhere is a 404 as an unknown id is, and a
decision of theirs is for one of their assets (``findings.triage.check_reach``: a group
or global decision would reach assets outside their part, so it is refused with a 422).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

import orjson
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field, model_validator

from patchpilot.assets.groups import Scope, group_members, narrow, resolve_scope
from patchpilot.automation.tickets import tickets_of_finding
from patchpilot.clock import iso
from patchpilot.db.tables import asset_groups, assets
from patchpilot.findings.lifecycle import producers_of
from patchpilot.findings.model import STATES
from patchpilot.findings.queries import finding_dates, finding_detail, installations
from patchpilot.findings.search import SORTS, FindingFilter, search_findings
from patchpilot.findings.triage import (
    TriageError,
    check_decision,
    check_reach,
    record_decision,
    revoke_decision,
)
from patchpilot.reports.overview import overview
from patchpilot.scoring.reasons import loads as reasons_loads
from patchpilot.scoring.reasons import reason_text
from patchpilot.server.deps import Analyst, EngineDep, Viewer, scope_aware
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
from patchpilot.server.security import reach

router = APIRouter(tags=["findings"])


# --- the answers' models ------------------------------------------------------------------

class InstallationOut(BaseModel):
    """One affected copy of the package on the asset: where it was found, its version, the
    fix it needs and the command that installs it there."""

    location: str | None
    installed_version: str | None
    fixed_version: str | None
    command: str | None


class FindingItem(BaseModel):
    """A finding as listed: where, what, how bad, how urgent."""

    id: int
    asset_id: int
    asset: str
    sources: list[str] = Field(default=[], description="the producers that report it "
                                                       "(matcher, importer:tenable, …)")
    vuln_id: str
    ecosystem: str
    package: str
    state: str
    severity: str | None
    cvss_score: float | None
    known_exploited: bool
    epss_score: float | None
    installed_version: str | None
    fixed_version: str | None
    first_seen: str | None
    last_seen: str | None
    fixed_at: str | None
    new_from_feed: bool
    priority: str | None = Field(description="P1 .. P4; null until prioritised")
    priority_reason: str | None = Field(description="why this priority, in English")
    priority_reason_code: dict[str, Any] | None = Field(
        default=None, description="the reason as a code with its values (scoring.reasons)")
    due_date: str | None
    installations: list[InstallationOut] = Field(
        default=[], description="every affected copy on the asset (issue 12: one finding "
                                "per package, each installation with its own fix)")


class FindingPage(BaseModel):
    """A page of findings.  ``total`` is exact when ``total_exact`` is true, else a lower
    bound."""

    total: int
    total_exact: bool
    items: list[FindingItem]


class CvssOut(BaseModel):
    """One CVSS vector and what was computed from it."""

    version: str
    vector: str
    score: float
    severity: str
    source: str = ""


class ReferenceOut(BaseModel):
    """A link, with its kind (OSV reference type or NVD tag)."""

    url: str
    type: str = "web"


class ExploitOut(BaseModel):
    """Exploit evidence: CISA KEV, FIRST EPSS, exploit references."""

    known_exploited: bool = False
    kev_date_added: str | None = None
    kev_due_date: str | None = None
    kev_ransomware: bool = False
    epss_score: float | None = None
    epss_percentile: float | None = None
    references: list[ReferenceOut] = []
    summary: str = ""


class FixOut(BaseModel):
    """How to remove the finding (``state``: fixed when a fixed version exists)."""

    fixed_version: str | None
    command: str | None
    state: str


class EvidenceOut(BaseModel):
    """Why the finding was reported."""

    installed_version: str
    advisory_id: str
    affected_range: str
    feed: str
    source: str
    packages: list[str]
    owners: list[str] = Field(
        default=[], description="the OS packages owning the reported copies (a language "
                                "package installed by dpkg/rpm/apk)")
    detail: str | None = Field(
        default=None, description="an imported report's own evidence: the scanner's "
                                  "output for the item (plugin output, result text)")


class TicketOut(BaseModel):
    """A ticket a playbook opened for the finding (``state``: open, or closed -- by
    PatchPilot when the finding was fixed, or in the tracker)."""

    system: str = Field(description="jira, redmine, github or gitlab")
    key: str
    url: str | None
    state: str
    created_at: str | None
    closed_at: str | None


class OverrideOut(BaseModel):
    """What a person or a playbook set on the finding (``finding_overrides``): a priority
    re-prioritisation keeps when it is more urgent than the computed one, an assignee,
    tags."""

    priority: str | None
    assignee: str | None
    tags: list[str]
    reason: str | None
    set_by: str
    set_at: str | None


class FindingDetailOut(BaseModel):
    """One finding: its state and priority, and every report field."""

    id: int
    asset_id: int
    state: str
    first_seen: str | None
    last_seen: str | None
    times_reopened: int
    priority: str | None
    priority_reason: str | None
    priority_reason_code: dict[str, Any] | None = None
    due_date: str | None
    vuln_id: str
    cve: str | None = None
    name: str
    summary: str
    ecosystem: str
    package: str
    aliases: list[str]
    cvss: CvssOut | None
    severity: str
    severity_source: str
    exploit: ExploitOut
    fix: FixOut
    workaround: str
    evidence: EvidenceOut
    cwes: list[str] = []
    references: list[ReferenceOut] = []
    sources: list[str] = Field(default=[], description="the producers that report it")
    installations: list[InstallationOut] = []
    tickets: list[TicketOut] = Field(default=[], description="tickets playbooks opened")
    solution: str | None = Field(default=None, description="an imported report's remedy text")
    exploit_reported: bool | None = Field(
        default=None, description="whether the importing scanner says a public exploit exists")
    field_sources: dict[str, str] = Field(
        default={}, description="where each report field came from: 'report' or "
                                "'knowledge base' (imported findings)")
    assignee: str | None = Field(default=None, description="who the finding is assigned to")
    tags: list[str] = Field(default=[], description="the finding's own tags")
    override: OverrideOut | None = Field(
        default=None, description="what was set on the finding by hand or by a playbook")


class TrendWeek(BaseModel):
    """Findings opened and fixed in one week (its Monday)."""

    week: str
    opened: int
    fixed: int


class TopAsset(BaseModel):
    """An asset by its risk."""

    id: int
    name: str
    risk: int
    open: int


class TopService(BaseModel):
    """A business service by the risk of its assets."""

    service: str
    risk: int
    open: int


class LateAsset(BaseModel):
    """An asset not scanned as often as its schedule says."""

    id: int
    name: str
    last_seen: str | None


class CoverageOut(BaseModel):
    """One ecosystem (a distribution per release): its packages and assets, the advisories
    loaded for it, and whether that covers it (``knowledge.coverage``)."""

    ecosystem: str
    packages: int
    advisories: int
    assets: int
    covered: bool


class OverviewOut(BaseModel):
    """The overview's figures, of the estate, a group or a service."""

    open_total: int
    by_priority: dict[str, int]
    by_severity: dict[str, int]
    known_exploited: int
    kev_assets: int
    overdue: int
    fixed: int
    fixed_within_sla: int
    sla_compliance: float | None
    mttr_days: float | None
    trend: list[TrendWeek]
    top_assets: list[TopAsset]
    top_services: list[TopService]
    not_scanned: int
    not_scanned_assets: list[LateAsset]
    assets_total: int
    coverage: list[CoverageOut] = Field(
        default=[], description="per ecosystem of the estate: packages, assets, advisories "
                                "loaded, covered or not (not covered first)")


class TriageDone(BaseModel):
    """A decision recorded or withdrawn, and the findings whose state changed with it."""

    id: int
    findings_changed: int


# --- the routes ---------------------------------------------------------------------------


@router.get("/findings", response_model=FindingPage)
@scope_aware  # narrowed to the caller's assets (FindingFilter.reach): rows and total
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
        flt = replace(flt, reach=reach(conn, who))
        page = search_findings(conn, flt, sort=sort, descending=order == "desc",
                               limit=limit, offset=offset,
                               members=group_members(conn, group) if group else None)
        extra = finding_dates(conn, (r.id for r in page.rows))
    return {"total": page.total, "total_exact": page.exact, "items": [
        {"id": r.id, "asset_id": r.asset_id, "asset": r.asset, "vuln_id": r.vuln_id,
         "sources": producers_of(r.producer),
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


@router.get("/overview", response_model=OverviewOut)
@scope_aware
def get_overview(who: Viewer, engine: EngineDep, group: Name200 | None = None,
                 service: Name200 | None = None) -> dict[str, Any]:
    """The dashboard overview's figures (of the estate, a group or a service) as JSON --
    of the caller's part of the estate only."""
    with engine.connect() as conn:
        ids = narrow(resolve_scope(conn, Scope(group=group or None, service=service or None)),
                     reach(conn, who))
        figures = overview(conn, asset_ids=ids).to_dict()
    for a in figures["not_scanned_assets"]:
        a["last_seen"] = iso(a["last_seen"])
    return figures


@router.get("/findings/{finding_id}", response_model=FindingDetailOut)
@scope_aware  # a finding outside the caller's assets is a 404, as an unknown id
def get_finding(finding_id: DbId, who: Viewer, engine: EngineDep) -> dict[str, Any]:
    """One finding with every report field."""
    with engine.connect() as conn:
        found = finding_detail(conn, finding_id, reach(conn, who))
        opened = [t.to_dict() for t in tickets_of_finding(conn, finding_id)]
    row = found.row
    return {"id": row.id, "asset_id": row.asset_id, "state": row.state,
            "first_seen": iso(row.first_seen),
            "last_seen": iso(row.last_seen),
            "times_reopened": row.times_reopened,
            "priority": f"P{row.priority}" if row.priority else None,
            "priority_reason": reason_text(row.priority_reason) or None,
            "priority_reason_code": reasons_loads(row.priority_reason),
            "due_date": iso(row.due_date),
            **found.data, "tickets": opened, **_override(row)}


def _override(row: Any) -> dict[str, Any]:
    """The finding's assignee, tags and override (``finding_overrides``) for the detail."""
    if row.override_finding_id is None:
        return {"assignee": None, "tags": [], "override": None}
    tags = orjson.loads(row.override_tags) if row.override_tags else []
    return {"assignee": row.override_assignee, "tags": tags,
            "override": {"priority": (f"P{row.override_priority}"
                                      if row.override_priority else None),
                         "assignee": row.override_assignee, "tags": tags,
                         "reason": row.override_reason, "set_by": row.override_set_by,
                         "set_at": iso(row.override_set_at)}}


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


@router.post("/triage", status_code=201, response_model=TriageDone)
@scope_aware  # a scoped caller decides for one of their assets only (check_reach)
def triage(body: TriageRequest, who: Analyst, engine: EngineDep) -> dict[str, Any]:
    """Record a decision and apply it to the findings it covers at once.  A user limited
    to part of the estate decides for one of their assets (``scope: asset``): a group or
    global decision is refused (422), an asset outside their part is a 404."""
    with engine.begin() as conn:
        seen = reach(conn, who)
        # First for a scoped caller: an asset outside answers as an unknown one does.
        check_reach(scope=body.scope, asset_id=body.asset_id, reach=seen)
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
            detail=body.model_dump(mode="json"), reach=seen)
    return {"id": decision_id, "findings_changed": changed}


@router.delete("/triage/{decision_id}", status_code=200, response_model=TriageDone)
@scope_aware  # a scoped caller withdraws only asset decisions on their assets
def revoke_triage(decision_id: DbId, who: Analyst, engine: EngineDep) -> dict[str, Any]:
    """Withdraw a decision: the findings it covered are open again (404 for an id that
    names no active decision -- and, for a user limited to part of the estate, for any
    but an asset decision on one of their assets)."""
    with engine.begin() as conn:
        changed = revoke_decision(conn, who.name, decision_id, reach(conn, who))
    return {"id": decision_id, "findings_changed": changed}
