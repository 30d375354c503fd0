"""Ingest and the life of a finding: new, open, fixed, reopened, triaged.

Findings are keyed by (asset, vulnerability, ecosystem, package).  A later *complete*
inventory of the same asset that no longer matches closes the finding as fixed; a match
after that reopens it.  Triage decisions (risk accepted with an expiry, false positive,
not affected), at asset, group or global scope, are applied when a finding is stored, and
a rescan never undoes them; an expired acceptance reopens the finding.  Every write is one
transaction, set-based (bulk inserts, executemany updates), never a round trip per row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, and_, bindparam, delete, exists, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from patchpilot.audit import audit
from patchpilot.clock import now_utc
from patchpilot.db.dialect import bulk_insert
from patchpilot.db.tables import (
    agents,
    asset_group_members,
    asset_packages,
    assets,
    findings,
    inventories,
    triage_decisions,
)
from patchpilot.errors import PatchPilotError
from patchpilot.findings.model import Finding
from patchpilot.findings.summary import refresh as refresh_summary
from patchpilot.inventory.model import Inventory
from patchpilot.knowledge.names import normalize_name
from patchpilot.queue import enqueue

OPEN = "open"
FIXED = "fixed"
TRIAGED = ("accepted", "false_positive", "not_affected")
STATES = (OPEN, FIXED, *TRIAGED)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """Where an uploaded inventory went."""

    asset_id: int
    inventory_id: int
    duplicate: bool  # the idempotency key was seen before: nothing was stored again
    job_id: int | None = None  # the match job queued for it


class AssetClaimedError(PatchPilotError):
    """An agent's inventory names an asset another active agent reports for.

    Nothing is stored: a new agent could otherwise take over an existing asset by its
    hostname and close its findings with an empty inventory.  The agent is held for an
    admin's approval (``agents.pending_asset_id``) instead.
    """

    def __init__(self, agent_id: int, asset_id: int, asset_name: str, owner_id: int) -> None:
        self.agent_id = agent_id
        self.asset_id = asset_id
        self.asset_name = asset_name
        self.owner_id = owner_id
        super().__init__(
            f"asset {asset_name!r} (id {asset_id}) is reported by agent {owner_id}; agent "
            f"{agent_id} is held until an admin approves it: `patchpilot agents approve "
            f"{agent_id}` or POST /api/agents/{agent_id}/approve (the dashboard's overview "
            "lists held agents)")


def _find_asset(conn: Connection, inv: Inventory) -> int | None:
    """The asset ``inv`` describes, by machine-id, then FQDN, then hostname (or None)."""
    ident = inv.asset
    for column, value in ((assets.c.machine_id, ident.machine_id), (assets.c.fqdn, ident.fqdn),
                          (assets.c.name, ident.hostname)):
        if value:
            found = conn.execute(select(assets.c.id).where(column == value)
                                 .order_by(assets.c.id)).scalar()
            if found is not None:
                return int(found)
    return None


def _agent_asset(conn: Connection, agent_id: int, inv: Inventory, now: datetime) -> int | None:
    """The asset agent ``agent_id`` reports for, bound on its first inventory.

    A bound agent reports for its own asset whatever its inventory names.  An unbound one
    is bound to the asset its inventory describes, unless another active (not revoked)
    agent owns that asset: then :class:`AssetClaimedError`.  None: no asset matches yet
    (the caller creates it and binds the agent with :func:`_bind_agent`).
    """
    bound = conn.execute(select(agents.c.asset_id).where(agents.c.id == agent_id)).scalar()
    if bound is not None:
        return int(bound)
    found = _find_asset(conn, inv)
    if found is None:
        return None
    # The asset row is locked (PostgreSQL) so that two agents claiming it at once are served
    # in turn: the second's statement below then sees the first's binding.  SQLite runs
    # one writer at a time, and the conditional UPDATE is that transaction's first write.
    conn.execute(select(assets.c.id).where(assets.c.id == found).with_for_update())
    other = agents.alias("other")
    owner_exists = exists(select(other.c.id).where(
        other.c.asset_id == found, other.c.id != agent_id, other.c.revoked_at.is_(None)))
    claimed = conn.execute(update(agents).where(agents.c.id == agent_id, ~owner_exists)
                           .values(asset_id=found, pending_asset_id=None, pending_since=None))
    if claimed.rowcount == 1:
        audit(conn, f"agent:{agent_id}", "agent.bind", str(agent_id), {"asset_id": found})
        return found
    owner = conn.execute(select(other.c.id).where(
        other.c.asset_id == found, other.c.id != agent_id, other.c.revoked_at.is_(None))
        .order_by(other.c.id)).scalar_one()
    name = conn.execute(select(assets.c.name).where(assets.c.id == found)).scalar_one()
    raise AssetClaimedError(agent_id, found, name, int(owner))


def _bind_agent(conn: Connection, agent_id: int, asset_id: int) -> None:
    """Bind an agent to the asset its first inventory created."""
    conn.execute(update(agents).where(agents.c.id == agent_id).values(
        asset_id=asset_id, pending_asset_id=None, pending_since=None))
    audit(conn, f"agent:{agent_id}", "agent.bind", str(agent_id),
          {"asset_id": asset_id, "created": True})


def _hold_for_approval(engine: Engine, claim: AssetClaimedError, now: datetime) -> None:
    """Hold the agent of a refused claim for an admin's approval (audited once per asset:
    the agent's retries do not flood the audit log)."""
    with engine.begin() as conn:
        held = conn.execute(update(agents).where(
            agents.c.id == claim.agent_id, agents.c.revoked_at.is_(None),
            or_(agents.c.pending_asset_id.is_(None),
                agents.c.pending_asset_id != claim.asset_id))
            .values(pending_asset_id=claim.asset_id, pending_since=now))
        if held.rowcount:
            audit(conn, f"agent:{claim.agent_id}", "agent.hold", str(claim.agent_id),
                  {"asset_id": claim.asset_id, "asset": claim.asset_name,
                   "owner_agent_id": claim.owner_id})


def _without_packages(inv: Inventory) -> Inventory:
    """``inv``, marked incomplete when it lists no package at all.

    A complete inventory closes every finding of its asset that it no longer shows; one
    with no package would close them all.  No real host, lock file or SBOM has nothing
    installed, so an empty list means nothing could be read (an SBOM without components,
    an agent whose package database was unreadable): stored as incomplete, it never
    closes a finding.  The document stored and the ``complete`` column agree, so the match
    job, re-matching and sweeps all see it as incomplete.
    """
    if inv.packages or not inv.complete:
        return inv
    return inv.model_copy(update={
        "complete": False,
        "warnings": [*inv.warnings, "no package in this inventory: stored as incomplete, "
                                    "so it closes no finding"]})


def _asset_values(inv: Inventory, now: datetime) -> dict[str, Any]:
    ident = inv.asset
    os_text = None
    ecosystem = None
    if inv.os is not None:
        os_text = inv.os.pretty_name or f"{inv.os.id} {inv.os.version_id or ''}".strip()
    packages = inv.to_packages()
    distro = [p.ecosystem for p in packages if ":" in p.ecosystem]
    if distro:
        ecosystem = max(set(distro), key=distro.count)
    return {"name": ident.hostname or ident.fqdn or ident.machine_id or "unnamed",
            "fqdn": ident.fqdn, "machine_id": ident.machine_id,
            "ip_addresses": orjson.dumps(ident.ip_addresses).decode(),
            "os": os_text, "ecosystem": ecosystem, "last_seen": now}


def _package_rows(asset_id: int, inv: Inventory) -> list[tuple[Any, ...]]:
    grouped: dict[tuple[str, str, str], list[list[str | None]]] = defaultdict(list)
    for p in inv.to_packages():
        key = (p.ecosystem, normalize_name(p.ecosystem, p.match_name), p.match_version)
        grouped[key].append([p.name, p.version, p.arch])
    return [(asset_id, eco, name, version, orjson.dumps(installed).decode())
            for (eco, name, version), installed in grouped.items()]


def ingest_inventory(engine: Engine, inv: Inventory, *, idempotency_key: str | None = None,
                     asset_id: int | None = None, enqueue_match: bool = False,
                     agent_id: int | None = None) -> IngestResult:
    """Store ``inv`` as its asset's latest inventory (history kept), in one transaction.

    The asset is found by machine-id, FQDN or hostname (or given), else created.  From an
    agent (``agent_id``), the asset is the one the agent is bound to; an unbound agent is
    bound to the asset found or created, unless another active agent owns it: then
    nothing is stored, the agent is held for an admin's approval and
    :class:`AssetClaimedError` is raised.  An inventory with no package is stored as
    incomplete (it never closes findings).  A repeated ``idempotency_key`` (an agent
    retrying an upload whose answer it never got) stores nothing and answers as the first
    time did.  With ``enqueue_match`` the job that matches it is queued in the same
    transaction: stored means it will be matched.
    """
    now = now_utc()
    inv = _without_packages(inv)
    document = inv.to_json().decode()
    try:
        with engine.begin() as conn:
            if idempotency_key:
                seen = conn.execute(select(inventories.c.id, inventories.c.asset_id).where(
                    inventories.c.idempotency_key == idempotency_key)).first()
                if seen is not None:
                    return IngestResult(seen.asset_id, seen.id, True)
            if agent_id is not None:
                asset_id = _agent_asset(conn, agent_id, inv, now)
            else:
                asset_id = asset_id or _find_asset(conn, inv)
            values = _asset_values(inv, now)
            if asset_id is None:
                asset_id = int(conn.execute(insert(assets).values(
                    first_seen=now, tags="[]", attributes="{}", **values)
                    .returning(assets.c.id)).scalar_one())
                if agent_id is not None:
                    _bind_agent(conn, agent_id, asset_id)
            inventory_id = int(conn.execute(insert(inventories).values(
                asset_id=asset_id, collected_at=inv.collected_at, received_at=now,
                collector=inv.collector.name, complete=inv.complete,
                packages=len(inv.packages), idempotency_key=idempotency_key,
                document=document).returning(inventories.c.id)).scalar_one())
            conn.execute(update(assets).where(assets.c.id == asset_id).values(
                last_inventory_id=inventory_id, **values))
            conn.execute(delete(asset_packages).where(asset_packages.c.asset_id == asset_id))
            bulk_insert(conn, asset_packages,
                        ("asset_id", "ecosystem", "name", "version", "installed"),
                        _package_rows(asset_id, inv))
            job_id = (enqueue(conn, "match", {"inventory_id": inventory_id},
                              asset_id=asset_id) if enqueue_match else None)
    except AssetClaimedError as claim:
        # Rolled back (nothing stored); the hold is its own transaction.
        _hold_for_approval(engine, claim, now)
        raise
    except IntegrityError:
        # The same idempotency key raced in from a retry on another connection.
        if not idempotency_key:
            raise
        with engine.connect() as conn:
            seen = conn.execute(select(inventories.c.id, inventories.c.asset_id).where(
                inventories.c.idempotency_key == idempotency_key)).one()
        return IngestResult(seen.asset_id, seen.id, True)
    return IngestResult(asset_id, inventory_id, False, job_id)


@dataclass(slots=True)
class LifecycleCounts:
    """What one application of findings changed."""

    new: int = 0
    still_open: int = 0
    reopened: int = 0
    fixed: int = 0
    triaged: int = 0  # new or reopened findings that a triage decision covered
    new_ids: list[int] = field(default_factory=list)


def active_decisions(conn: Connection, asset_id: int, now: datetime
                     ) -> dict[tuple[str, str | None], str]:
    """(vuln, package or None) → decision, for the decisions that cover ``asset_id``.

    The narrowest scope wins: asset over group over global.
    """
    groups = select(asset_group_members.c.group_id).where(
        asset_group_members.c.asset_id == asset_id)
    rows = conn.execute(select(triage_decisions).where(
        triage_decisions.c.revoked_at.is_(None),
        or_(triage_decisions.c.expires_at.is_(None), triage_decisions.c.expires_at > now),
        or_(triage_decisions.c.scope == "global",
            and_(triage_decisions.c.scope == "asset", triage_decisions.c.asset_id == asset_id),
            and_(triage_decisions.c.scope == "group",
                 triage_decisions.c.group_id.in_(groups))))).all()
    rank = {"global": 0, "group": 1, "asset": 2}
    out: dict[tuple[str, str | None], tuple[int, str]] = {}
    for r in rows:
        key = (r.vuln_id, r.package)
        if key not in out or rank[r.scope] > out[key][0]:
            out[key] = (rank[r.scope], r.decision)
    return {k: v[1] for k, v in out.items()}


def _decision_for(decisions: dict[tuple[str, str | None], str], f: Finding) -> str | None:
    return decisions.get((f.vuln_id, f.package)) or decisions.get((f.vuln_id, None))


def _row_values(f: Finding) -> dict[str, Any]:
    return {"installed_version": f.evidence.installed_version,
            "fixed_version": f.fix.fixed_version, "severity": f.severity,
            "cvss_score": f.cvss.score if f.cvss else None,
            "known_exploited": f.exploit.known_exploited,
            "epss_score": f.exploit.epss_score, "advisory_id": f.evidence.advisory_id,
            "data": orjson.dumps(f.to_dict()).decode()}


def apply_findings(engine: Engine, asset_id: int, found: list[Finding], *, complete: bool,
                   from_feed_update: bool = False) -> LifecycleCounts:
    """Bring the asset's stored findings in line with what a scan found (one transaction).

    New → open (or the covering triage decision); fixed and found again → reopened;
    open or triaged and found → last seen now; open or triaged and not found in a
    *complete* inventory → fixed.  ``from_feed_update`` marks new findings as coming
    from a knowledge-base update rather than a change on the host.
    """
    now = now_utc()
    with engine.begin() as conn:
        counts = apply_asset_findings(conn, asset_id, found, complete=complete,
                                      from_feed_update=from_feed_update, now=now)
        refresh_summary(conn, [asset_id], now=now)
        return counts


def apply_asset_findings(conn: Connection, asset_id: int, found: list[Finding], *,
                         complete: bool, from_feed_update: bool = False,
                         now: datetime | None = None) -> LifecycleCounts:
    """:func:`apply_findings` in the caller's transaction, without the summary refresh.

    For ``pipeline.process_inventory``, which applies, settles sweeps and prioritises in
    one transaction and then refreshes the asset's summary row once, from the end state.
    """
    return _apply(conn, asset_id, found, complete, from_feed_update, now or now_utc(), None)


def apply_findings_many(engine: Engine, batch: list[tuple[int, list[Finding], bool]], *,
                        from_feed_update: bool = False,
                        values_cache: dict[int, dict[str, Any]] | None = None
                        ) -> list[LifecycleCounts]:
    """:func:`apply_findings` for many (asset, findings, complete) in one transaction.

    For a re-match of the whole estate: one commit per batch instead of per asset, and
    with ``values_cache`` a Finding object shared by many assets (the same package
    version on many hosts) is serialised once (keyed by ``id``, so the caller keeps the
    findings alive while the cache lives).
    """
    now = now_utc()
    with engine.begin() as conn:
        counts = [_apply(conn, asset_id, found, complete, from_feed_update, now, values_cache)
                  for asset_id, found, complete in batch]
        refresh_summary(conn, [asset_id for asset_id, _, _ in batch], now=now)
        return counts


def _apply(conn: Connection, asset_id: int, found: list[Finding], complete: bool,
           from_feed_update: bool, now: datetime,
           values_cache: dict[int, dict[str, Any]] | None) -> LifecycleCounts:
    counts = LifecycleCounts()
    existing = {(r.vuln_id, r.ecosystem, r.package): r for r in conn.execute(
        select(findings.c.id, findings.c.vuln_id, findings.c.ecosystem,
               findings.c.package, findings.c.state, findings.c.times_reopened)
        .where(findings.c.asset_id == asset_id))}
    decisions = active_decisions(conn, asset_id, now)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    reopens: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for f in found:
        key = (f.vuln_id, f.ecosystem, f.package)
        if key in seen:
            continue
        seen.add(key)
        row = existing.get(key)
        if values_cache is None:
            values = _row_values(f)
        else:
            values = values_cache.get(id(f)) or values_cache.setdefault(id(f),
                                                                         _row_values(f))
        if row is None:
            decision = _decision_for(decisions, f)
            counts.new += 1
            counts.triaged += decision is not None
            inserts.append({"asset_id": asset_id, "vuln_id": f.vuln_id,
                            "ecosystem": f.ecosystem, "package": f.package,
                            "state": decision or OPEN, "first_seen": now, "last_seen": now,
                            "times_reopened": 0, "new_from_feed": from_feed_update,
                            **values})
            continue
        if row.state == FIXED:
            decision = _decision_for(decisions, f)
            counts.reopened += 1
            counts.triaged += decision is not None
            reopens.append({"b_id": row.id, "state": decision or OPEN, "last_seen": now,
                            "reopened_at": now, "times_reopened": row.times_reopened + 1,
                            "fixed_at": None, **values})
        else:
            counts.still_open += 1  # open or triaged: the decision stands
            updates.append({"b_id": row.id, "last_seen": now, **values})
    if inserts:
        result = conn.execute(insert(findings).returning(findings.c.id), inserts)
        counts.new_ids = [int(i) for i in result.scalars()]
    for batch in (updates, reopens):
        if batch:
            stmt = (update(findings).where(findings.c.id == bindparam("b_id"))
                    .values({k: bindparam(k) for k in batch[0] if k != "b_id"}))
            conn.execute(stmt, batch)
    if complete:
        gone = [r.id for k, r in existing.items() if k not in seen and r.state != FIXED]
        counts.fixed = len(gone)
        for start in range(0, len(gone), 5000):
            conn.execute(update(findings).where(findings.c.id.in_(gone[start:start + 5000]))
                         .values(state=FIXED, fixed_at=now))
    return counts


def reapply_decisions(conn: Connection, *, vuln_id: str | None = None) -> int:
    """Bring stored findings in line with the active triage decisions; how many changed.

    Called when a decision is made or withdrawn (for its vulnerability), and periodically
    for every triaged finding, so that an acceptance that expired reopens its finding.
    Fixed findings stay fixed.
    """
    now = now_utc()
    query = select(findings.c.id, findings.c.asset_id, findings.c.vuln_id, findings.c.package,
                   findings.c.state).where(findings.c.state != FIXED)
    dq = select(triage_decisions).where(
        triage_decisions.c.revoked_at.is_(None),
        or_(triage_decisions.c.expires_at.is_(None), triage_decisions.c.expires_at > now))
    if vuln_id is not None:
        query = query.where(findings.c.vuln_id == vuln_id)
        dq = dq.where(triage_decisions.c.vuln_id == vuln_id)
    else:
        query = query.where(findings.c.state.in_(TRIAGED))
    rows = conn.execute(query).all()
    if not rows:
        return 0
    decisions = conn.execute(dq).all()
    asset_ids = sorted({r.asset_id for r in rows})
    groups: dict[int, set[int]] = defaultdict(set)
    for start in range(0, len(asset_ids), 5000):
        for g, a in conn.execute(select(asset_group_members.c.group_id,
                                        asset_group_members.c.asset_id).where(
                asset_group_members.c.asset_id.in_(asset_ids[start:start + 5000]))):
            groups[a].add(g)
    rank = {"global": 0, "group": 1, "asset": 2}
    changes = []
    for r in rows:
        best: tuple[int, str] | None = None
        for d in decisions:
            if d.vuln_id != r.vuln_id or (d.package is not None and d.package != r.package):
                continue
            if (d.scope == "asset" and d.asset_id != r.asset_id) or (
                    d.scope == "group" and d.group_id not in groups[r.asset_id]):
                continue
            if best is None or rank[d.scope] > best[0]:
                best = (rank[d.scope], d.decision)
        state = best[1] if best else OPEN
        if state != r.state:
            changes.append({"b_id": r.id, "state": state,
                            "reopened_at": now if state == OPEN else None})
    reopened = [c for c in changes if c["state"] == OPEN]
    triaged = [{"b_id": c["b_id"], "state": c["state"]} for c in changes
               if c["state"] != OPEN]
    if reopened:
        conn.execute(update(findings).where(findings.c.id == bindparam("b_id"))
                     .values(state=bindparam("state"), reopened_at=bindparam("reopened_at")),
                     reopened)
    if triaged:
        conn.execute(update(findings).where(findings.c.id == bindparam("b_id"))
                     .values(state=bindparam("state")), triaged)
    if changes:
        changed = {c["b_id"] for c in changes}
        refresh_summary(conn, {r.asset_id for r in rows if r.id in changed}, now=now)
    return len(changes)


def record_decision(conn: Connection, actor: str, *, vuln_id: str, package: str | None,
                    scope: str, decision: str, reason: str, asset_id: int | None = None,
                    group_id: int | None = None, expires_at: datetime | None = None,
                    detail: dict[str, Any] | None = None) -> tuple[int, int]:
    """Store a triage decision, audit it and apply it at once; (decision id, findings
    changed).  The API and the dashboard both call this, so a decision means the same
    whichever door it came through.  Validation (scope target, expiry) is the caller's.
    """
    decision_id = int(conn.execute(insert(triage_decisions).values(
        scope=scope, asset_id=asset_id if scope == "asset" else None,
        group_id=group_id if scope == "group" else None, vuln_id=vuln_id,
        package=package, decision=decision, reason=reason, expires_at=expires_at,
        created_by=actor, created_at=now_utc()).returning(triage_decisions.c.id)).scalar_one())
    audit(conn, actor, f"triage.{decision}", vuln_id, detail or {
        "vuln_id": vuln_id, "package": package, "scope": scope, "asset_id": asset_id,
        "group_id": group_id, "decision": decision, "reason": reason,
        "expires_at": expires_at.isoformat() if expires_at else None})
    return decision_id, reapply_decisions(conn, vuln_id=vuln_id)
