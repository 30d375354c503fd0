"""Emergency sweeps: start one (analyst), list and read them, follow one live (SSE).

``POST /api/sweeps`` answers at once from the stored inventories (the per-asset first
answer with its counts) and asks agents and SSH targets to confirm;
``GET /api/sweeps/{id}/events`` streams the counts as Server-Sent Events
(``event: progress`` whenever they change, ``event: done`` at the end, then closes).

A user limited to part of the estate (issue 18) sweeps that part only, and reads every
sweep's results and counts of that part only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator

from patchpilot.audit import audit
from patchpilot.scans.sweeps import (
    SweepQuery,
    close_sweeps,
    get_sweep,
    list_sweeps,
    start_sweep,
)
from patchpilot.server.deps import Analyst, EngineDep, Viewer, scope_aware
from patchpilot.server.params import DbId, Limit, Offset, Text
from patchpilot.server.security import reach
from patchpilot.server.streams import sweep_event_stream

router = APIRouter(tags=["sweeps"])

class SweepRequest(BaseModel):
    """A vulnerability id, or an ecosystem, package and range (or both: the range
    decides, the id names the sweep)."""

    vuln: Text | None = Field(None, min_length=1, max_length=200,
                             examples=["CVE-2024-3094", "GHSA-fff8-4w9p-7v76"])
    ecosystem: Text | None = Field(None, max_length=100, examples=["Debian", "Debian:12"])
    package: Text | None = Field(None, max_length=300, examples=["xz-utils"])
    range: Text | None = Field(None, max_length=300, examples=[">=5.6.0,<5.6.2"])
    deadline_minutes: int = Field(60, ge=1, le=7 * 24 * 60)

    @model_validator(mode="after")
    def _one_query(self) -> SweepRequest:
        explicit = (self.ecosystem, self.package, self.range)
        if any(explicit) and not all(explicit):
            raise ValueError("ecosystem, package and range go together")
        if not self.vuln and not all(explicit):
            raise ValueError("give vuln, or ecosystem, package and range")
        return self


class SweepResultOut(BaseModel):
    """One asset's answer in a sweep (``packages``: the affected ones)."""

    asset_id: int
    name: str
    initial: str
    status: str
    packages: list[dict[str, Any]]
    reason: str | None
    updated_at: str | None


class SweepOut(BaseModel):
    """A sweep with its counts per first answer (``initial``) and per status now."""

    id: int
    query: dict[str, str]
    label: str
    vulns: list[str]
    created_by: str
    created_at: str | None
    deadline: str | None
    state: str
    initial: dict[str, int]
    status: dict[str, int]
    jobs: int


class SweepDetail(SweepOut):
    """A sweep with every asset's result."""

    results: list[SweepResultOut]


@router.post("/sweeps", status_code=201, response_model=SweepDetail)
@scope_aware
def create_sweep(body: SweepRequest, who: Analyst, engine: EngineDep) -> dict[str, Any]:
    """Start a sweep (of the caller's part of the estate): the first answer per asset, at
    once; refresh jobs queued."""
    query = SweepQuery(body.vuln, body.ecosystem, body.package, body.range)
    # SweepError is an InvalidInput: the one handler answers 422 with its message.
    with engine.connect() as conn:
        seen = reach(conn, who)
    sweep = start_sweep(engine, query, created_by=who.name,
                        deadline_minutes=body.deadline_minutes, reach=seen)
    with engine.begin() as conn:
        audit(conn, who.name, "sweep.start", str(sweep.id),
              {"query": query.to_dict(), "initial": sweep.initial})
    return sweep.to_dict()


@router.get("/sweeps", response_model=list[SweepOut])
@scope_aware
def sweeps_list(who: Viewer, engine: EngineDep, limit: Limit = 100, offset: Offset = 0
                ) -> list[dict[str, Any]]:
    """Sweeps, newest first, with their counts."""
    with engine.connect() as conn:
        found = list_sweeps(conn, limit=limit, offset=offset, reach=reach(conn, who))
    return [s.to_dict(results=False) for s in found]


@router.get("/sweeps/{sweep_id}", response_model=SweepDetail)
@scope_aware
def sweep_detail(sweep_id: DbId, who: Viewer, engine: EngineDep) -> dict[str, Any]:
    """One sweep with every asset's result."""
    # Deadlines pass with nobody writing: settle them before answering.
    close_sweeps(engine, sweep_id=sweep_id)
    with engine.connect() as conn:
        sweep = get_sweep(conn, sweep_id, reach=reach(conn, who))
    if sweep is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no sweep {sweep_id}")
    return sweep.to_dict()


@router.get("/sweeps/{sweep_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
@scope_aware
async def sweep_events(sweep_id: DbId, request: Request, who: Viewer,
                       engine: EngineDep) -> StreamingResponse:
    """Server-Sent Events: ``progress`` with the counts whenever they change, then
    ``done``; the stream closes when the sweep is done."""
    return await sweep_event_stream(engine, sweep_id, request, who)
