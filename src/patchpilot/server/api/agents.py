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
from sqlalchemy import Engine, insert, select, update

from patchpilot.clock import aware, iso, now_utc
from patchpilot.db.tables import agents, enrolment_tokens
from patchpilot.findings.lifecycle import audit
from patchpilot.scans import jobs
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
    """Exchange an enrolment token for an agent credential (authenticated by the token)."""
    now = now_utc()
    credential = new_token(AGENT_TOKEN_PREFIX)
    with engine.begin() as conn:
        row = conn.execute(select(enrolment_tokens).where(
            enrolment_tokens.c.token_hash == hash_token(body.token))).first()
        expires = aware(row.expires_at) if row is not None else None
        if (row is None or row.revoked_at is not None or (expires and expires < now)
                or (row.uses_left is not None and row.uses_left <= 0)):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                                "enrolment token unknown, expired, revoked or used up")
        if row.uses_left is not None:
            conn.execute(update(enrolment_tokens).where(enrolment_tokens.c.id == row.id)
                         .values(uses_left=row.uses_left - 1))
        agent_id = int(conn.execute(insert(agents).values(
            name=body.name, credential_hash=hash_token(credential), version=body.version,
            enrolled_at=now, last_seen=now).returning(agents.c.id)).scalar_one())
        audit(conn, f"agent:{body.name}", "agent.enrol", str(agent_id),
              {"enrolment_token": row.id})
    return Enrolled(agent_id=agent_id, credential=credential)


def agent_asset(engine: Engine, agent_id: int) -> int | None:
    """The asset an agent reports for, once known."""
    with engine.connect() as conn:
        return conn.execute(select(agents.c.asset_id).where(agents.c.id == agent_id)).scalar()


def bind_agent_asset(engine: Engine, agent_id: int, asset_id: int) -> None:
    """Remember which asset an agent's first inventory created or found."""
    with engine.begin() as conn:
        conn.execute(update(agents).where(agents.c.id == agent_id).values(asset_id=asset_id))


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
        job = await asyncio.to_thread(jobs.lease, engine, f"agent:{who.id}", agent_id=who.id,
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
    done = jobs.finish(engine, job_id, f"agent:{who.id}", result=body.detail,
                       error=None if body.ok else (body.error or "failed on the agent"))
    if not done:
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} is not leased to you")


class AgentInfo(BaseModel):
    """An enrolled agent."""

    id: int
    name: str
    asset_id: int | None
    version: str | None
    enrolled_at: str | None
    last_seen: str | None
    revoked: bool


@router.get("/agents", response_model=list[AgentInfo])
def list_agents(who: Admin, engine: EngineDep) -> list[AgentInfo]:
    """Every enrolled agent."""
    with engine.connect() as conn:
        rows = conn.execute(select(agents).order_by(agents.c.id)).all()
    return [AgentInfo(id=r.id, name=r.name, asset_id=r.asset_id, version=r.version,
                      enrolled_at=iso(r.enrolled_at),
                      last_seen=iso(r.last_seen),
                      revoked=r.revoked_at is not None) for r in rows]


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


