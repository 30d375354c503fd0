"""What a playbook's condition and templates see of an event: its CEL activation.

For a batch of events the findings, their priorities, the assets, their CMDB context and
their groups are read with one statement each (chunked), never a round trip per event.
Every key is present whatever the event: an event without a finding (``sweep_finished``,
``import_finished``) has a ``finding`` whose fields are null, so a condition reads
``finding.severity == "Critical"`` without guarding against a missing key.

=========  ==============================================================================
event      kind, at (ISO 8601 text), producer, detail (a map, or null)
finding    id, vuln_id, severity, cvss_score, known_exploited, epss_score, state,
           package, ecosystem, priority (1-4, or null before prioritisation)
asset      id, name, criticality (1-4), exposure, environment, owner, groups, tags
=========  ==============================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import celpy
import orjson
from sqlalchemy import Integer, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from patchpilot.assets.groups import groups_of
from patchpilot.clock import iso
from patchpilot.db.tables import asset_context, assets, finding_priority, findings
from patchpilot.findings.events import Event

FINDING_FIELDS = ("id", "vuln_id", "severity", "cvss_score", "known_exploited",
                  "epss_score", "state", "package", "ecosystem", "priority")
ASSET_FIELDS = ("id", "name", "criticality", "exposure", "environment", "owner", "groups",
                "tags")
_CHUNK = 5000


def _among(conn: Connection, column: Any, chunk: list[int]) -> Any:
    # PostgreSQL: one array parameter (``= ANY(:ids)``) -- thousands of placeholders cost
    # the driver and the planner more than the query.
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam("ids", chunk, type_=ARRAY(Integer)))
    return column.in_(chunk)


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    ordered = sorted(set(ids))
    return [ordered[i:i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]


def _findings(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    f, fp = findings, finding_priority
    out: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(ids):
        for r in conn.execute(
                select(f.c.id, f.c.asset_id, f.c.vuln_id, f.c.severity, f.c.cvss_score,
                       f.c.known_exploited, f.c.epss_score, f.c.state, f.c.package,
                       f.c.ecosystem, fp.c.priority)
                .select_from(f.outerjoin(fp, fp.c.finding_id == f.c.id))
                .where(_among(conn, f.c.id, chunk))):
            out[r.id] = {"id": r.id, "vuln_id": r.vuln_id, "severity": r.severity,
                         "cvss_score": r.cvss_score,
                         "known_exploited": bool(r.known_exploited),
                         "epss_score": r.epss_score, "state": r.state, "package": r.package,
                         "ecosystem": r.ecosystem, "priority": r.priority,
                         "_asset_id": r.asset_id}
    return out


def _assets(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    a, c = assets, asset_context
    out: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(ids):
        for r in conn.execute(
                select(a.c.id, a.c.name, a.c.tags, c.c.criticality, c.c.exposure,
                       c.c.environment, c.c.owner)
                .select_from(a.outerjoin(c, c.c.asset_id == a.c.id))
                .where(_among(conn, a.c.id, chunk))):
            out[r.id] = {"id": r.id, "name": r.name, "criticality": r.criticality,
                         "exposure": r.exposure, "environment": r.environment,
                         "owner": r.owner, "groups": [],
                         "tags": sorted(orjson.loads(r.tags)) if r.tags else []}
    for asset_id, names in groups_of(conn, list(out)).items():
        out[asset_id]["groups"] = names
    return out


def contexts(conn: Connection, events: Sequence[Event]) -> dict[int, dict[str, Any]]:
    """The context (plain JSON values) of each event, by event id."""
    found = _findings(conn, [e.finding_id for e in events if e.finding_id is not None])
    asset_ids = {e.asset_id for e in events if e.asset_id is not None}
    asset_ids |= {f["_asset_id"] for f in found.values()}
    known = _assets(conn, list(asset_ids))
    no_finding = dict.fromkeys(FINDING_FIELDS)
    no_asset: dict[str, Any] = {**dict.fromkeys(ASSET_FIELDS), "groups": [], "tags": []}
    out: dict[int, dict[str, Any]] = {}
    for e in events:
        finding = found.get(e.finding_id) if e.finding_id is not None else None
        asset_id = e.asset_id if e.asset_id is not None else (
            finding["_asset_id"] if finding else None)
        out[e.id] = {
            "event": {"id": e.id, "kind": e.kind, "at": iso(e.at), "producer": e.producer,
                      "detail": e.detail},
            "finding": ({k: finding[k] for k in FINDING_FIELDS} if finding
                        else dict(no_finding)),
            "asset": dict(known[asset_id]) if asset_id in known else dict(no_asset),
        }
    return out


def activation(context: dict[str, Any]) -> dict[str, Any]:
    """The CEL activation of one context (its values as CEL types)."""
    return {k: celpy.json_to_cel(v) for k, v in context.items()}


def subject_of(context: dict[str, Any]) -> str:
    """What the event is about, for the outbox: ``finding:ID``, else ``asset:ID``, else
    ``event:ID``."""
    if context["finding"]["id"] is not None:
        return f"finding:{context['finding']['id']}"
    if context["asset"]["id"] is not None:
        return f"asset:{context['asset']['id']}"
    return f"event:{context['event']['id']}"
