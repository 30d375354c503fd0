"""Agents and the asset each reports for: listing, and an admin's approval of a held agent.

An agent is bound to one asset by its first inventory (:func:`ingest_inventory`).  An
agent whose first inventory names an asset that another active agent reports for is not
bound: it is *held* (``agents.pending_asset_id``) until an admin approves it (it then
reports for that asset, and the agent that did is unbound) or rejects it (optionally
revoking it).  The API, the CLI and the dashboard call these functions in their own
transaction; each writes an audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from patchpilot.audit import audit
from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import agents, assets
from patchpilot.errors import Conflict, NotFound


class AgentStateError(Conflict):
    """An approval or rejection that does not apply: the agent holds no request to report
    for an asset (409), or there is no such active agent (``missing``: AgentMissing, 404)."""

    def __init__(self, agent_id: int, detail: str, *, missing: bool = False) -> None:
        self.agent_id = agent_id
        self.missing = missing
        super().__init__(f"agent {agent_id}: {detail}")


class AgentMissing(AgentStateError, NotFound):
    """No active agent has the id (NotFound: the one handler answers 404)."""

    def __init__(self, agent_id: int) -> None:
        super().__init__(agent_id, "no such active agent", missing=True)


@dataclass(frozen=True, slots=True)
class AgentRow:
    """An enrolled agent, the asset it reports for and the one it waits to report for."""

    id: int
    name: str
    version: str | None
    asset_id: int | None
    asset: str | None
    pending_asset_id: int | None
    pending_asset: str | None
    pending_since: datetime | None
    enrolled_at: datetime | None
    last_seen: datetime | None
    revoked: bool


def list_agents(conn: Connection, *, pending_only: bool = False) -> list[AgentRow]:
    """Every enrolled agent by id (with ``pending_only``: the active ones held for
    approval, oldest request first)."""
    bound = assets.alias("bound")
    wanted = assets.alias("wanted")
    stmt = (select(agents, bound.c.name.label("asset_name"),
                   wanted.c.name.label("pending_name"))
            .outerjoin(bound, bound.c.id == agents.c.asset_id)
            .outerjoin(wanted, wanted.c.id == agents.c.pending_asset_id))
    if pending_only:
        stmt = stmt.where(agents.c.pending_asset_id.is_not(None),
                          agents.c.revoked_at.is_(None)).order_by(agents.c.pending_since,
                                                                 agents.c.id)
    else:
        stmt = stmt.order_by(agents.c.id)
    return [AgentRow(id=r.id, name=r.name, version=r.version, asset_id=r.asset_id,
                     asset=r.asset_name, pending_asset_id=r.pending_asset_id,
                     pending_asset=r.pending_name, pending_since=aware(r.pending_since),
                     enrolled_at=aware(r.enrolled_at), last_seen=aware(r.last_seen),
                     revoked=r.revoked_at is not None) for r in conn.execute(stmt)]


def _held(conn: Connection, agent_id: int) -> int:
    """The asset an active agent waits to report for (its row locked); AgentStateError."""
    row = conn.execute(select(agents.c.pending_asset_id).where(
        agents.c.id == agent_id, agents.c.revoked_at.is_(None)).with_for_update()).first()
    if row is None:
        raise AgentMissing(agent_id)
    if row.pending_asset_id is None:
        raise AgentStateError(agent_id, "is not waiting for approval")
    return int(row.pending_asset_id)


def approve_agent(conn: Connection, actor: str, agent_id: int) -> int:
    """Bind a held agent to the asset it asked for, unbinding the agent that reported for
    it (which is held in turn if it reports that asset again); the asset's id."""
    asset_id = _held(conn, agent_id)
    # Locked so that an agent's claim on the same asset waits for this approval.
    conn.execute(select(assets.c.id).where(assets.c.id == asset_id).with_for_update())
    previous = [int(i) for i in conn.execute(select(agents.c.id).where(
        agents.c.asset_id == asset_id, agents.c.id != agent_id).order_by(agents.c.id))
        .scalars()]
    conn.execute(update(agents).where(agents.c.asset_id == asset_id, agents.c.id != agent_id)
                 .values(asset_id=None))
    conn.execute(update(agents).where(agents.c.id == agent_id).values(
        asset_id=asset_id, pending_asset_id=None, pending_since=None))
    audit(conn, actor, "agent.approve", str(agent_id),
          {"asset_id": asset_id, "unbound_agents": previous})
    return asset_id


def reject_agent(conn: Connection, actor: str, agent_id: int, *, revoke: bool = False
                 ) -> int:
    """Refuse a held agent's request (and, with ``revoke``, its credential); the asset
    it asked for.  Not revoked, it is held again if it names that asset again."""
    asset_id = _held(conn, agent_id)
    values: dict[str, object] = {"pending_asset_id": None, "pending_since": None}
    if revoke:
        values["revoked_at"] = now_utc()
    conn.execute(update(agents).where(agents.c.id == agent_id).values(values))
    audit(conn, actor, "agent.reject", str(agent_id),
          {"asset_id": asset_id, "revoked": revoke})
    return asset_id
