"""Triage: analysts' decisions (risk accepted with an expiry, false positive, not
affected) at asset, group or global scope, and how they are applied.

A decision is applied at once to the findings it covers and to every finding stored
later (``lifecycle`` asks :func:`active_decisions`); a rescan never undoes it.  When an
acceptance expires or a decision is withdrawn, :func:`reapply_decisions` reopens what it
covered.  Every state change writes a ``triaged`` event in the same transaction.  The API
and the dashboard validate a decision with :func:`check_decision` and store it with
:func:`record_decision`, so a decision means the same whichever door it came through.

A user limited to part of the estate (issue 18; ``reach``: the asset ids they may see)
decides for one asset of theirs at a time: a group or global decision would also cover
assets outside their part (a group's rule may select new ones any day), so it is refused
(:func:`check_reach`, code ``reach``), never silently narrowed.  They withdraw only such
decisions, on their assets; any other id answers as one that does not exist.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection

from patchpilot.audit import audit
from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import asset_group_members, findings, triage_decisions
from patchpilot.errors import InvalidInput, NotFound
from patchpilot.findings.events import TRIAGED_EVENT, event_row, write_events
from patchpilot.findings.model import FIXED, OPEN, TRIAGED, Finding
from patchpilot.findings.summary import refresh as refresh_summary

DECISIONS = TRIAGED
SCOPES = ("asset", "group", "global")
# The narrowest scope wins: asset over group over global.
_RANK = {"global": 0, "group": 1, "asset": 2}


class TriageError(InvalidInput):
    """A decision that cannot be recorded.  ``code`` says which rule it breaks, so that
    the dashboard can say it in the user's language: ``decision``, ``scope``, ``target``,
    ``reason``, ``expiry_needed``, ``expiry_past`` or ``reach``."""

    def __init__(self, code: str, message: str, *, field: str) -> None:
        self.code = code
        super().__init__(message, field=field)


def check_decision(*, decision: str, scope: str, reason: str,
                   expires_at: datetime | None, asset_id: int | None = None,
                   group_id: int | None = None, now: datetime | None = None) -> None:
    """Raise :class:`TriageError` when the decision cannot be recorded as given.

    A known decision and scope; the scope's target (``asset_id`` / ``group_id``); a
    reason of at least 3 characters; an expiry for an accepted risk (when to look
    again); no expiry in the past.  Whether the target exists is the caller's question
    (it answers "not found", not "invalid").
    """
    if decision not in DECISIONS:
        raise TriageError("decision", f"decision must be one of {', '.join(DECISIONS)}",
                          field="decision")
    if scope not in SCOPES:
        raise TriageError("scope", f"scope must be one of {', '.join(SCOPES)}",
                          field="scope")
    if scope == "asset" and asset_id is None:
        raise TriageError("target", "scope 'asset' needs asset_id", field="asset_id")
    if scope == "group" and group_id is None:
        raise TriageError("target", "scope 'group' needs group_id", field="group_id")
    if len(reason) < 3:
        raise TriageError("reason", "reason needs at least 3 characters", field="reason")
    if decision == "accepted" and expires_at is None:
        raise TriageError("expiry_needed",
                          "an accepted risk needs expires_at (when to look again)",
                          field="expires_at")
    if expires_at is not None and aware(expires_at) <= (now or now_utc()):  # type: ignore[operator]
        raise TriageError("expiry_past", "expires_at is in the past", field="expires_at")


def check_reach(*, scope: str, asset_id: int | None,
                reach: frozenset[int] | None) -> None:
    """Raise unless a caller who sees ``reach`` (asset ids; None: the whole estate) may
    record this decision: a scoped caller only for one asset (``TriageError`` code
    ``reach`` otherwise) of theirs (``NotFound`` -- the same answer as an unknown asset)."""
    if reach is None:
        return
    if scope != "asset":
        raise TriageError("reach", f"scope {scope!r}: you see part of the estate only, so "
                                   "a decision of yours covers one of your assets "
                                   "(scope 'asset' with its asset_id)", field="scope")
    if asset_id is None or asset_id not in reach:
        raise NotFound(f"no asset {asset_id}", field="asset_id")


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
    out: dict[tuple[str, str | None], tuple[int, str]] = {}
    for r in rows:
        key = (r.vuln_id, r.package)
        if key not in out or _RANK[r.scope] > out[key][0]:
            out[key] = (_RANK[r.scope], r.decision)
    return {k: v[1] for k, v in out.items()}


def active_decisions_many(conn: Connection, asset_ids: Sequence[int], now: datetime
                          ) -> dict[int, dict[tuple[str, str | None], str]]:
    """:func:`active_decisions` of each of ``asset_ids``, in two queries for them all (the
    active decisions, and the groups of these assets that some decision names)."""
    if not asset_ids:
        return {}
    if len(asset_ids) == 1:
        return {asset_ids[0]: active_decisions(conn, asset_ids[0], now)}
    rows = conn.execute(select(triage_decisions).where(
        triage_decisions.c.revoked_at.is_(None),
        or_(triage_decisions.c.expires_at.is_(None), triage_decisions.c.expires_at > now)
    )).all()
    if not rows:
        return {}
    wanted = set(asset_ids)
    group_ids = sorted({r.group_id for r in rows if r.scope == "group"})
    groups_of: dict[int, set[int]] = {}
    for start in range(0, len(group_ids), 5000):
        for group_id, asset_id in conn.execute(
                select(asset_group_members.c.group_id, asset_group_members.c.asset_id)
                .where(asset_group_members.c.group_id.in_(group_ids[start:start + 5000]))):
            if asset_id in wanted:
                groups_of.setdefault(asset_id, set()).add(group_id)
    out: dict[int, dict[tuple[str, str | None], str]] = {}
    for asset_id in asset_ids:
        ranked: dict[tuple[str, str | None], tuple[int, str]] = {}
        groups = groups_of.get(asset_id, set())
        for r in rows:
            if not (r.scope == "global" or (r.scope == "asset" and r.asset_id == asset_id)
                    or (r.scope == "group" and r.group_id in groups)):
                continue
            key = (r.vuln_id, r.package)
            if key not in ranked or _RANK[r.scope] > ranked[key][0]:
                ranked[key] = (_RANK[r.scope], r.decision)
        if ranked:
            out[asset_id] = {k: v[1] for k, v in ranked.items()}
    return out


def decision_for(decisions: dict[tuple[str, str | None], str], f: Finding) -> str | None:
    """The decision of :func:`active_decisions` that covers ``f`` (its package's, else
    the vulnerability's), or None."""
    return decisions.get((f.vuln_id, f.package)) or decisions.get((f.vuln_id, None))


def reapply_decisions(conn: Connection, *, vuln_id: str | None = None,
                      actor: str | None = None) -> int:
    """Bring stored findings in line with the active triage decisions; how many changed.

    Called when a decision is made or withdrawn (for its vulnerability; ``actor`` is who
    did it, recorded on the events), and periodically for every triaged finding, so that
    an acceptance that expired reopens its finding.  Fixed findings stay fixed.
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
    changes = []
    events = []
    for r in rows:
        best: tuple[int, str] | None = None
        for d in decisions:
            if d.vuln_id != r.vuln_id or (d.package is not None and d.package != r.package):
                continue
            if (d.scope == "asset" and d.asset_id != r.asset_id) or (
                    d.scope == "group" and d.group_id not in groups[r.asset_id]):
                continue
            if best is None or _RANK[d.scope] > best[0]:
                best = (_RANK[d.scope], d.decision)
        state = best[1] if best else OPEN
        if state != r.state:
            changes.append({"b_id": r.id, "state": state,
                            "reopened_at": now if state == OPEN else None})
            events.append(event_row(TRIAGED_EVENT, now, finding_id=r.id, asset_id=r.asset_id,
                                    actor=actor, detail={"state": state, "from": r.state}))
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
    write_events(conn, events)
    if changes:
        changed = {c["b_id"] for c in changes}
        refresh_summary(conn, {r.asset_id for r in rows if r.id in changed}, now=now)
    return len(changes)


def record_decision(conn: Connection, actor: str, *, vuln_id: str, package: str | None,
                    scope: str, decision: str, reason: str, asset_id: int | None = None,
                    group_id: int | None = None, expires_at: datetime | None = None,
                    detail: dict[str, Any] | None = None,
                    reach: frozenset[int] | None = None) -> tuple[int, int]:
    """Store a triage decision, audit it and apply it at once; (decision id, findings
    changed).  The API and the dashboard both call this, so a decision means the same
    whichever door it came through.  Validate first with :func:`check_decision`; that
    the target asset or group exists is the caller's to check.  ``reach``: the asset ids
    a scoped caller sees (:func:`check_reach`, checked here too); None for the estate.
    """
    check_reach(scope=scope, asset_id=asset_id, reach=reach)
    decision_id = int(conn.execute(insert(triage_decisions).values(
        scope=scope, asset_id=asset_id if scope == "asset" else None,
        group_id=group_id if scope == "group" else None, vuln_id=vuln_id,
        package=package, decision=decision, reason=reason, expires_at=expires_at,
        created_by=actor, created_at=now_utc()).returning(triage_decisions.c.id)).scalar_one())
    audit(conn, actor, f"triage.{decision}", vuln_id, detail or {
        "vuln_id": vuln_id, "package": package, "scope": scope, "asset_id": asset_id,
        "group_id": group_id, "decision": decision, "reason": reason,
        "expires_at": expires_at.isoformat() if expires_at else None})
    return decision_id, reapply_decisions(conn, vuln_id=vuln_id, actor=actor)


def revoke_decision(conn: Connection, actor: str, decision_id: int,
                    reach: frozenset[int] | None = None) -> int:
    """Withdraw an active decision, audit it and re-apply the vulnerability's decisions at
    once (the findings it covered are open again); findings changed.  NotFound for an id
    that names no active decision (unknown, or withdrawn already) -- and, for a caller
    who sees only ``reach`` (asset ids), for any but an asset decision on one of them."""
    row = conn.execute(select(triage_decisions.c.vuln_id, triage_decisions.c.scope,
                              triage_decisions.c.asset_id).where(
        triage_decisions.c.id == decision_id,
        triage_decisions.c.revoked_at.is_(None))).first()
    vuln_id = row.vuln_id if row is not None else None
    if reach is not None and row is not None and (row.scope != "asset"
                                                  or row.asset_id not in reach):
        vuln_id = None  # answered as an unknown id: it reveals nothing outside the reach
    if vuln_id is None:
        raise NotFound(f"no active decision {decision_id}", field="decision_id")
    conn.execute(update(triage_decisions).where(triage_decisions.c.id == decision_id)
                 .values(revoked_at=now_utc()))
    audit(conn, actor, "triage.revoke", str(decision_id))
    return reapply_decisions(conn, vuln_id=vuln_id, actor=actor)
