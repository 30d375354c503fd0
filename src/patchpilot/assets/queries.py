"""Read-only questions about assets that the API and the pages both ask.

The assets list's filters (name, group, criticality, OS, tag, last scan), one asset with
its context and inventory history, open findings per severity, tag suggestions and the
names a form offers (groups, business services).  Each runs in the caller's connection;
an id that names nothing is a :class:`~patchpilot.errors.NotFound` (the server: 404).

``reach`` (``assets.groups.Reach``): the asset ids a user limited to part of the estate
may see (issue 18), None for the whole estate -- which adds no clause, so an unscoped
user's queries are unchanged.  An asset outside the reach answers as an unknown id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, cast, exists, func, or_, select, true
from sqlalchemy.engine import Connection

from patchpilot.assets.groups import Reach, groups_of, in_group, within
from patchpilot.db.tables import (
    asset_context,
    asset_facts,
    asset_groups,
    asset_packages,
    asset_summary,
    assets,
    findings,
    inventories,
    jobs,
)
from patchpilot.errors import NotFound

# The assets list's "last scan" filter: scanned within N days, longer ago, never.
SCAN_FILTERS = ("within", "older", "never")
DEFAULT_SCAN_DAYS = 7


@dataclass(frozen=True, slots=True)
class AssetFilter:
    """The assets list's filters; empty strings mean "any".  ``tier`` is 1-4 or ``none``
    (no criticality given), ``scan`` one of :data:`SCAN_FILTERS` over ``days``."""

    q: str = ""
    group: str = ""
    tier: str = ""
    os: str = ""
    tag: str = ""
    scan: str = ""
    days: int = DEFAULT_SCAN_DAYS
    reach: Reach = None  # the assets the caller may see (None: the estate)


def has_tag(conn: Connection, tag: str) -> Any:
    """A condition on ``assets``: its JSON list of tags holds ``tag`` (exactly).

    Read with the database's JSON functions, not a LIKE on the text, so that a tag is
    never found inside another one.
    """
    tags = func.coalesce(func.nullif(assets.c.tags, ""), "[]")
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return cast(tags, JSONB).contains([tag])
    element = func.json_each(tags).table_valued("value")
    return exists(select(element.c.value).where(element.c.value == tag))


def known_tags(conn: Connection, limit: int = 500, reach: Reach = None) -> list[str]:
    """Every tag some asset (of ``reach``) carries (for the filter's suggestions), sorted."""
    tags = func.coalesce(func.nullif(assets.c.tags, ""), "[]")
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        element: Any = (func.jsonb_array_elements_text(cast(tags, JSONB))
                        .table_valued("value").lateral())
    else:
        element = func.json_each(tags).table_valued("value")
    value = element.c.value
    stmt = select(value).select_from(assets).join(element, true())
    if reach is not None:
        stmt = stmt.where(within(assets.c.id, reach))
    return [str(t) for t in conn.execute(stmt.distinct().order_by(value).limit(limit))
            .scalars()]


def group_names(conn: Connection, reach: Reach = None) -> list[str]:
    """Every asset group's name, sorted (a form's choices); with ``reach``, only the groups
    holding at least one of those assets (static members or by their rule), so a scoped
    user is offered the groups of their own part of the estate."""
    if reach is not None:
        return sorted({name for names in groups_of(conn, sorted(reach)).values()
                       for name in names})
    return list(conn.execute(select(asset_groups.c.name).order_by(asset_groups.c.name))
                .scalars())


def service_names(conn: Connection) -> list[str]:
    """Every business service some asset belongs to (CMDB context), sorted."""
    return list(conn.execute(
        select(asset_context.c.service).distinct()
        .where(asset_context.c.service.is_not(None), asset_context.c.service != "")
        .order_by(asset_context.c.service)).scalars())


def asset_conditions(conn: Connection, f: AssetFilter, now: datetime) -> list[Any]:
    """The WHERE conditions on ``assets`` of the assets list's filters (all optional)."""
    conds: list[Any] = []
    if f.reach is not None:
        conds.append(within(assets.c.id, f.reach))
    if f.q:
        conds.append(assets.c.name.like(f.q.replace("%", "") + "%"))
    if f.group:
        conds.append(in_group(conn, assets.c.id, f.group))
    if f.tier in ("1", "2", "3", "4"):
        conds.append(assets.c.id.in_(select(asset_context.c.asset_id).where(
            asset_context.c.criticality == int(f.tier))))
    elif f.tier == "none":
        conds.append(assets.c.id.not_in(select(asset_context.c.asset_id).where(
            asset_context.c.criticality.is_not(None))))
    if f.os:
        conds.append(func.lower(assets.c.os).contains(f.os.lower(), autoescape=True))
    if f.tag:
        conds.append(has_tag(conn, f.tag))
    # "Scanned" means an inventory arrived: an asset made from a CMDB row or an SSH target
    # that was never scanned has a last_seen (its creation) but no inventory.
    scanned = assets.c.last_inventory_id.is_not(None)
    cutoff = now - timedelta(days=f.days)
    if f.scan == "within":
        conds.append(and_(scanned, assets.c.last_seen >= cutoff))
    elif f.scan == "older":
        conds.append(or_(~scanned, assets.c.last_seen < cutoff))
    elif f.scan == "never":
        conds.append(~scanned)
    return conds


def filter_assets(conn: Connection, f: AssetFilter, now: datetime, *, limit: int,
                  offset: int = 0) -> tuple[int, Sequence[Any]]:
    """The assets ``f`` selects: how many, and one page of them by name (id, name, os,
    last_seen, last_inventory_id, criticality, service, ``open`` findings)."""
    conds = asset_conditions(conn, f, now)
    total = int(conn.execute(select(func.count()).select_from(assets).where(*conds))
                .scalar() or 0)
    rows = conn.execute(
        select(assets.c.id, assets.c.name, assets.c.os, assets.c.last_seen,
               assets.c.last_inventory_id,
               asset_context.c.criticality, asset_context.c.service,
               func.coalesce(asset_summary.c.open_total, 0).label("open"))
        .outerjoin(asset_summary, asset_summary.c.asset_id == assets.c.id)
        .outerjoin(asset_context, asset_context.c.asset_id == assets.c.id)
        .where(*conds).order_by(assets.c.name, assets.c.id)
        .limit(limit).offset(offset)).all()
    return total, rows


def assets_by_name(conn: Connection, *, limit: int, offset: int = 0, reach: Reach = None
                ) -> Sequence[Any]:
    """One page of the assets (of ``reach``) by name: every ``assets`` column."""
    stmt = select(assets)
    if reach is not None:
        stmt = stmt.where(within(assets.c.id, reach))
    return conn.execute(stmt.order_by(assets.c.name, assets.c.id)
                        .limit(limit).offset(offset)).all()


def asset_row(conn: Connection, asset_id: int, reach: Reach = None) -> Any:
    """Asset ``asset_id``'s row; NotFound (``no asset <id>``) when there is none, or when
    it is not in ``reach`` (the same answer: ids reveal nothing outside it)."""
    row = None
    if reach is None or asset_id in reach:
        row = conn.execute(select(assets).where(assets.c.id == asset_id)).first()
    if row is None:
        raise NotFound(f"no asset {asset_id}", field="asset_id")
    return row


def asset_context_row(conn: Connection, asset_id: int) -> Any:
    """The asset's CMDB context (criticality, service, owner, …), or None."""
    return conn.execute(select(asset_context)
                        .where(asset_context.c.asset_id == asset_id)).first()


def scanner_facts(conn: Connection, asset_id: int, limit: int = 500) -> Sequence[Any]:
    """What scanners' reports said about the asset that is not a vulnerability (Nessus
    severity 0, Qualys "information gathered"): producer, fact_id, title, port, protocol,
    service, seen_at; by producer, then port, then id."""
    return conn.execute(
        select(asset_facts.c.producer, asset_facts.c.fact_id, asset_facts.c.title,
               asset_facts.c.port, asset_facts.c.protocol, asset_facts.c.service,
               asset_facts.c.seen_at)
        .where(asset_facts.c.asset_id == asset_id)
        .order_by(asset_facts.c.producer, asset_facts.c.port.is_(None), asset_facts.c.port,
                  asset_facts.c.fact_id, asset_facts.c.id).limit(limit)).all()


def inventory_history(conn: Connection, asset_id: int, limit: int = 20) -> Sequence[Any]:
    """The asset's latest inventories, newest first (id, collected_at, collector,
    packages, complete)."""
    return conn.execute(
        select(inventories.c.id, inventories.c.collected_at, inventories.c.collector,
               inventories.c.packages, inventories.c.complete)
        .where(inventories.c.asset_id == asset_id)
        .order_by(inventories.c.id.desc()).limit(limit)).all()


@dataclass(frozen=True, slots=True)
class InventoryWarnings:
    """The warnings of the asset's latest inventory: what its collector or the file's
    parser skipped or inferred (a line it could not read, the release it read from the
    versions), so the asset page shows what is missing rather than looking complete."""

    inventory_id: int | None
    warnings: tuple[str, ...] = ()


def latest_inventory_warnings(conn: Connection, asset_id: int) -> InventoryWarnings:
    """The warnings of asset ``asset_id``'s latest stored inventory (none: no inventory)."""
    row = conn.execute(
        select(inventories.c.id, inventories.c.document)
        .where(inventories.c.asset_id == asset_id)
        .order_by(inventories.c.id.desc()).limit(1)).first()
    if row is None:
        return InventoryWarnings(None)
    try:
        document = orjson.loads(row.document)
    except orjson.JSONDecodeError:
        return InventoryWarnings(row.id, ("the stored inventory document is not valid JSON",))
    found = document.get("warnings") if isinstance(document, dict) else None
    return InventoryWarnings(row.id, tuple(str(w) for w in found or ()))


def owned_packages(conn: Connection, asset_id: int) -> list[dict[str, str]]:
    """The asset's language packages that an OS package installed, each with its owner
    (``{"ecosystem", "name", "version", "owner"}``, by name): judged through the owner,
    so the asset page says why upstream advisories are not applied to them."""
    out: list[dict[str, str]] = []
    for eco, installed in conn.execute(
            select(asset_packages.c.ecosystem, asset_packages.c.installed)
            .where(asset_packages.c.asset_id == asset_id,
                   asset_packages.c.ecosystem.not_like("%:%"))):
        out.extend({"ecosystem": eco, "name": entry[0], "version": entry[1],
                    "owner": f"{entry[4]} {entry[5]}"}
                   for entry in orjson.loads(installed) if len(entry) > 4)
    out.sort(key=lambda p: (p["name"].lower(), p["version"], p["owner"]))
    return out


def match_pending(conn: Connection, asset_id: int) -> bool:
    """Whether a stored inventory of the asset still waits for its match (its findings
    are still to come)."""
    return conn.execute(select(jobs.c.id).where(
        jobs.c.kind == "match", jobs.c.asset_id == asset_id,
        jobs.c.state.in_(("queued", "leased"))).limit(1)).first() is not None


def open_by_severity(conn: Connection, asset_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Open findings per severity (``Unknown`` for none) of each asset of ``asset_ids``."""
    counts: dict[int, dict[str, int]] = {i: {} for i in asset_ids}
    if not asset_ids:
        return counts
    for asset_id, severity, n in conn.execute(
            select(findings.c.asset_id, findings.c.severity, func.count())
            .where(findings.c.asset_id.in_(asset_ids), findings.c.state == "open")
            .group_by(findings.c.asset_id, findings.c.severity)):
        counts[asset_id][severity or "Unknown"] = int(n)
    return counts
