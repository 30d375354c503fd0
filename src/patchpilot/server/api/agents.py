"""Agents: enrolment, polling for jobs (long-poll), reporting job results.

Pull only: an agent calls the server; the server never connects to a host.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from annotated_types import Ge
from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import update

from patchpilot import queue
from patchpilot.audit import audit
from patchpilot.clock import iso, now_utc
from patchpilot.db.tables import agents
from patchpilot.findings.agents import approve_agent, reject_agent
from patchpilot.findings.agents import list_agents as agent_rows
from patchpilot.server.deps import Admin, Agent, EngineDep
from patchpilot.server.params import DbId, Text
from patchpilot.server.security import EnrolmentRefused, enrol_agent

router = APIRouter(tags=["agents"])


class EnrolRequest(BaseModel):
    """What an agent says about itself when it enrols."""

    token: Text = Field(min_length=8, max_length=200)
    name: Text = Field(min_length=1, max_length=300)
    version: Text | None = Field(None, max_length=50)


class Enrolled(BaseModel):
    """The agent's own credential (shown once; the agent keeps it on disk)."""

    agent_id: int
    credential: str


@router.post("/agents/enrol", status_code=201, response_model=Enrolled)
def enrol(body: EnrolRequest, engine: EngineDep) -> Enrolled:
    """Exchange an enrolment token for an agent credential (authenticated by the token).

    401 for a token unknown, expired, revoked or used up (``security.enrol_agent`` spends
    the use atomically and writes the audit row; a refusal is an authentication failure,
    so it is answered here, not by the stage-error handler)
    """
    try:
        with engine.begin() as conn:
            agent_id, credential = enrol_agent(conn, body.token, body.name, body.version)
    except EnrolmentRefused as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from exc
    return Enrolled(agent_id=agent_id, credential=credential)


class JobOut(BaseModel):
    """A job for the agent."""

    id: int
    kind: str
    payload: dict[str, Any]
    deadline: str | None


@router.get("/agents/jobs", response_model=JobOut, responses={204: {"description": "no job"}})
async def poll(who: Agent, engine: EngineDep,
               wait: Annotated[float, Ge(0)] = 25.0) -> Any:
    """The agent's next job; waits up to ``wait`` seconds (long-poll) before answering 204."""
    deadline = time.monotonic() + max(0.0, min(wait, 60.0))
    while True:
        job = await asyncio.to_thread(queue.lease, engine, f"agent:{who.id}", agent_id=who.id,
                                      seconds=600)
        if job is not None:
            return JobOut(id=job.id, kind=job.kind, payload=job.payload,
                          deadline=job.deadline.isoformat() if job.deadline else None)
        if time.monotonic() >= deadline:
            return Response(status_code=204)
        await asyncio.sleep(0.5)


class JobResult(BaseModel):
    """What the agent did with a job."""

    ok: bool
    detail: dict[str, Any] = Field(default_factory=dict)
    error: Text | None = Field(None, max_length=2000)


@router.post("/agents/jobs/{job_id}/result", status_code=204)
def job_result(job_id: DbId, body: JobResult, who: Agent, engine: EngineDep) -> None:
    """Close a job the agent held."""
    done = queue.finish(engine, job_id, f"agent:{who.id}", result=body.detail,
                       error=None if body.ok else (body.error or "failed on the agent"))
    if not done:
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} is not leased to you")


class AgentInfo(BaseModel):
    """An enrolled agent, the asset it reports for, and the one it waits to report for
    (``pending_asset_id``: held until an admin approves or rejects it)."""

    id: int
    name: str
    asset_id: int | None
    asset: str | None
    version: str | None
    enrolled_at: str | None
    last_seen: str | None
    revoked: bool
    pending_asset_id: int | None
    pending_asset: str | None
    pending_since: str | None


@router.get("/agents", response_model=list[AgentInfo])
def list_agents(who: Admin, engine: EngineDep, pending: bool = False) -> list[AgentInfo]:
    """Every enrolled agent (``pending=true``: those held for an admin's approval)."""
    with engine.connect() as conn:
        rows = agent_rows(conn, pending_only=pending)
    return [AgentInfo(id=r.id, name=r.name, asset_id=r.asset_id, asset=r.asset,
                      version=r.version, enrolled_at=iso(r.enrolled_at),
                      last_seen=iso(r.last_seen), revoked=r.revoked,
                      pending_asset_id=r.pending_asset_id, pending_asset=r.pending_asset,
                      pending_since=iso(r.pending_since)) for r in rows]


class Decided(BaseModel):
    """An admin's decision on a held agent."""

    agent_id: int
    asset_id: int
    approved: bool
    revoked: bool


class RejectRequest(BaseModel):
    """Whether a rejected agent's credential is revoked as well."""

    revoke: bool = False


@router.post("/agents/{agent_id}/approve", response_model=Decided)
def approve(agent_id: DbId, who: Admin, engine: EngineDep) -> Decided:
    """Let a held agent report for the asset it asked for; the agent that reported for it
    is unbound.  404: no such active agent; 409: it is not waiting for approval."""
    # AgentStateError: a Conflict (409), or AgentMissing, a NotFound (404): the one handler.
    with engine.begin() as conn:
        asset_id = approve_agent(conn, who.name, agent_id)
    return Decided(agent_id=agent_id, asset_id=asset_id, approved=True, revoked=False)


@router.post("/agents/{agent_id}/reject", response_model=Decided)
def reject(agent_id: DbId, who: Admin, engine: EngineDep,
           body: RejectRequest | None = None) -> Decided:
    """Refuse a held agent's request (``{"revoke": true}``: revoke it too).  404: no such
    active agent; 409: it is not waiting for approval."""
    revoke = body.revoke if body is not None else False
    with engine.begin() as conn:
        asset_id = reject_agent(conn, who.name, agent_id, revoke=revoke)
    return Decided(agent_id=agent_id, asset_id=asset_id, approved=False, revoked=revoke)


@router.delete("/agents/{agent_id}", status_code=204)
def revoke_agent(agent_id: DbId, who: Admin, engine: EngineDep) -> None:
    """Revoke an agent's credential."""
    with engine.begin() as conn:
        done = conn.execute(update(agents).where(agents.c.id == agent_id,
                                                 agents.c.revoked_at.is_(None))
                            .values(revoked_at=now_utc()))
        if done.rowcount == 0:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no active agent {agent_id}")
        audit(conn, who.name, "agent.revoke", str(agent_id))


