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
from sqlalchemy import insert, or_, select, update

from patchpilot import queue
from patchpilot.audit import audit
from patchpilot.clock import iso, now_utc
from patchpilot.db.tables import agents, enrolment_tokens
from patchpilot.findings.agents import AgentStateError, approve_agent, reject_agent
from patchpilot.findings.agents import list_agents as agent_rows
from patchpilot.server.deps import Admin, Agent, EngineDep
from patchpilot.server.params import DbId, Text
from patchpilot.server.security import AGENT_TOKEN_PREFIX, hash_token, new_token

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

    401 for a token unknown, expired, revoked or used up.  A use is spent by one
    conditional UPDATE whose row count says whether it was there to spend, so concurrent
    enrolments can never spend more uses than the token has.
    """
    now = now_utc()
    credential = new_token(AGENT_TOKEN_PREFIX)
    refused = HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "enrolment token unknown, expired, revoked or used up")
    with engine.begin() as conn:
        token_id = conn.execute(select(enrolment_tokens.c.id).where(
            enrolment_tokens.c.token_hash == hash_token(body.token))).scalar()
        if token_id is None:
            raise refused
        t = enrolment_tokens.c
        # Check and spend at once: PostgreSQL re-checks the WHERE of a row another
        # transaction just updated, SQLite runs one writer at a time.  NULL uses_left
        # (unlimited) stays NULL.
        spent = conn.execute(update(enrolment_tokens).where(
            t.id == token_id, t.revoked_at.is_(None),
            or_(t.expires_at.is_(None), t.expires_at > now),
            or_(t.uses_left.is_(None), t.uses_left > 0))
            .values(uses_left=t.uses_left - 1))
        if spent.rowcount != 1:
            raise refused
        agent_id = int(conn.execute(insert(agents).values(
            name=body.name, credential_hash=hash_token(credential), version=body.version,
            enrolled_at=now, last_seen=now).returning(agents.c.id)).scalar_one())
        audit(conn, f"agent:{body.name}", "agent.enrol", str(agent_id),
              {"enrolment_token": token_id})
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


def _decision_error(exc: AgentStateError) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND if exc.missing else
                         status.HTTP_409_CONFLICT, str(exc))


@router.post("/agents/{agent_id}/approve", response_model=Decided)
def approve(agent_id: DbId, who: Admin, engine: EngineDep) -> Decided:
    """Let a held agent report for the asset it asked for; the agent that reported for it
    is unbound.  404: no such active agent; 409: it is not waiting for approval."""
    try:
        with engine.begin() as conn:
            asset_id = approve_agent(conn, who.name, agent_id)
    except AgentStateError as exc:
        raise _decision_error(exc) from exc
    return Decided(agent_id=agent_id, asset_id=asset_id, approved=True, revoked=False)


@router.post("/agents/{agent_id}/reject", response_model=Decided)
def reject(agent_id: DbId, who: Admin, engine: EngineDep,
           body: RejectRequest | None = None) -> Decided:
    """Refuse a held agent's request (``{"revoke": true}``: revoke it too).  404: no such
    active agent; 409: it is not waiting for approval."""
    revoke = body.revoke if body is not None else False
    try:
        with engine.begin() as conn:
            asset_id = reject_agent(conn, who.name, agent_id, revoke=revoke)
    except AgentStateError as exc:
        raise _decision_error(exc) from exc
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


