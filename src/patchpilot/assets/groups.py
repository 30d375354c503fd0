"""Asset groups: who is in them (static members and tag/attribute rules) and scopes.

A group is a set of assets: its static members plus every asset whose tags and CMDB
attributes its rule selects.  Everything that asks "which assets does this cover?" --
the scheduler, the findings list's group filter, the patch plan, reports and exports --
resolves it here, so a rule group means the same set everywhere.  A :class:`Scope` (the
estate, one group or one business service) is what a report, an export or an overview
covers; :func:`resolve_scope` turns it into asset ids.

Stage functions run in the caller's transaction and audit every change with who made it;
the API (``server/api/groups.py``) and the CLI both call them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, false, func, insert, select, update
from sqlalchemy.engine import Connection

from patchpilot import errors
from patchpilot.audit import audit
from patchpilot.clock import iso, now_utc
from patchpilot.db.tables import asset_context, asset_group_members, asset_groups, assets

DEFAULT_MAX_CONCURRENT_SCANS = 5


# The kinds below derive from errors.NotFound / InvalidInput / Conflict, so the server's one
# handler answers them (404 / 422 / 409) and no route translates them by hand.


class GroupError(errors.InvalidInput):
    """A request about groups that cannot be done as asked (says which field)."""


class NotFound(GroupError, errors.NotFound):
    """An id that names no group, asset, schedule or window."""


class Conflict(GroupError, errors.Conflict):
    """A name already taken."""


class ScopeError(errors.InvalidInput):
    """A scope that cannot be resolved (says which field)."""


class UnknownScope(ScopeError, errors.NotFound):
    """A scope naming a group or a service that does not exist."""


# --- rules --------------------------------------------------------------------------------

def check_rule(rule: dict[str, Any] | None) -> str | None:
    """A group rule as stored (JSON text), or None; GroupError naming the bad key.

    ``discover`` (optional): address ranges (CIDR) the group's schedules also discover with
    nmap (``scans.discovery``); checked against the discovery scope when the job runs.
    """
    if rule is None:
        return None
    unknown = set(rule) - {"tags", "attributes", "discover"}
    if unknown:
        raise GroupError(f"rule: unknown keys {sorted(unknown)}; use tags, attributes and "
                         "discover")
    tags = rule.get("tags", [])
    attributes = rule.get("attributes", {})
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise GroupError("rule.tags: must be a list of strings")
    if not isinstance(attributes, dict):
        raise GroupError("rule.attributes: must be an object")
    stored: dict[str, Any] = {"tags": tags, "attributes": attributes}
    if "discover" in rule:
        stored["discover"] = _discover_ranges(rule["discover"])
    return orjson.dumps(stored).decode()


def _discover_ranges(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise GroupError("rule.discover: must be a list of address ranges (CIDR)")
    ranges = []
    for item in value:
        try:
            ranges.append(str(ipaddress.ip_network(str(item), strict=False)))
        except ValueError:
            raise GroupError(f"rule.discover: {item!r} is not an address range (CIDR, e.g. "
                             "10.0.0.0/24)") from None
    return ranges


def discover_ranges(conn: Connection, group_id: int) -> list[str]:
    """The address ranges a group's schedules discover (its rule's ``discover``), or []."""
    text = conn.execute(select(asset_groups.c.rule)
                        .where(asset_groups.c.id == group_id)).scalar()
    return list(orjson.loads(text).get("discover", [])) if text else []


def _rule_matches(rule: dict[str, Any], tags: list[str], attributes: dict[str, Any]) -> bool:
    want_tags = rule.get("tags") or []
    want_attrs = rule.get("attributes") or {}
    if not want_tags and not want_attrs:
        return False  # an empty rule selects nothing, never the whole estate by accident
    return (set(want_tags) <= set(tags)
            and all(attributes.get(k) == v for k, v in want_attrs.items()))


def group_asset_ids(conn: Connection, group_id: int) -> list[int]:
    """The assets of a group: its static members and those its rule selects, ascending."""
    members = set(conn.execute(select(asset_group_members.c.asset_id)
                               .where(asset_group_members.c.group_id == group_id)).scalars())
    rule_text = conn.execute(select(asset_groups.c.rule)
                             .where(asset_groups.c.id == group_id)).scalar()
    rule = orjson.loads(rule_text) if rule_text else {}
    if rule:
        for row in conn.execute(select(assets.c.id, assets.c.tags, assets.c.attributes)):
            if _rule_matches(rule, orjson.loads(row.tags or "[]"),
                             orjson.loads(row.attributes or "{}")):
                members.add(row.id)
    return sorted(members)


def groups_of(conn: Connection, asset_ids: Sequence[int]) -> dict[int, list[str]]:
    """The names of the groups each of ``asset_ids`` belongs to (static members and rule
    matches), sorted; two statements for any number of assets plus one for the assets'
    tags when a group has a rule."""
    ids = sorted(set(asset_ids))
    found: dict[int, set[str]] = {i: set() for i in ids}
    if not ids:
        return {}
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        for asset_id, name in conn.execute(
                select(asset_group_members.c.asset_id, asset_groups.c.name)
                .join(asset_groups, asset_groups.c.id == asset_group_members.c.group_id)
                .where(asset_group_members.c.asset_id.in_(chunk))):
            found[asset_id].add(name)
    ruled = [(name, orjson.loads(rule)) for name, rule in conn.execute(
        select(asset_groups.c.name, asset_groups.c.rule).where(asset_groups.c.rule.is_not(None)))]
    if ruled:
        for start in range(0, len(ids), 5000):
            for row in conn.execute(select(assets.c.id, assets.c.tags, assets.c.attributes)
                                    .where(assets.c.id.in_(ids[start:start + 5000]))):
                tags = orjson.loads(row.tags or "[]")
                attributes = orjson.loads(row.attributes or "{}")
                found[row.id].update(n for n, r in ruled if _rule_matches(r, tags, attributes))
    return {i: sorted(names) for i, names in found.items()}


def require_row(conn: Connection, table: Any, row_id: int, what: str) -> Any:
    """The row ``row_id`` of ``table``; NotFound naming ``what`` otherwise."""
    row = conn.execute(select(table).where(table.c.id == row_id)).first()
    if row is None:
        raise NotFound(f"no {what} {row_id}")
    return row


# --- groups and their members ---------------------------------------------------------------------

def create_group(conn: Connection, actor: str, name: str, *, description: str | None = None,
                 rule: dict[str, Any] | None = None,
                 max_concurrent_scans: int = DEFAULT_MAX_CONCURRENT_SCANS) -> int:
    """A new asset group; its id."""
    if not name.strip():
        raise GroupError("name: must not be empty")
    if max_concurrent_scans < 1:
        raise GroupError("max_concurrent_scans: must be at least 1")
    if conn.execute(select(asset_groups.c.id).where(asset_groups.c.name == name)).first():
        raise Conflict(f"name: a group named {name!r} exists")
    group_id = int(conn.execute(insert(asset_groups).values(
        name=name, description=description, rule=check_rule(rule),
        max_concurrent_scans=max_concurrent_scans, created_at=now_utc())
        .returning(asset_groups.c.id)).scalar_one())
    audit(conn, actor, "group.create", f"group:{group_id}",
          {"name": name, "rule": rule, "max_concurrent_scans": max_concurrent_scans})
    return group_id


def group_id_named(conn: Connection, name: str) -> int:
    """The id of the group called ``name``."""
    found = conn.execute(select(asset_groups.c.id).where(asset_groups.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no asset group named {name!r}")
    return int(found)


def update_group(conn: Connection, actor: str, group_id: int, **changes: Any) -> None:
    """Change a group's description, rule (None removes it) or max_concurrent_scans."""
    require_row(conn, asset_groups, group_id, "asset group")
    values: dict[str, Any] = {}
    if "description" in changes:
        values["description"] = changes["description"]
    if "rule" in changes:
        values["rule"] = check_rule(changes["rule"])
    if changes.get("max_concurrent_scans") is not None:
        if changes["max_concurrent_scans"] < 1:
            raise GroupError("max_concurrent_scans: must be at least 1")
        values["max_concurrent_scans"] = changes["max_concurrent_scans"]
    if values:
        conn.execute(update(asset_groups).where(asset_groups.c.id == group_id).values(**values))
        audit(conn, actor, "group.update", f"group:{group_id}", changes)


def _group_dict(row: Any, members: int) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description,
            "rule": orjson.loads(row.rule) if row.rule else None,
            "max_concurrent_scans": row.max_concurrent_scans,
            "created_at": iso(row.created_at), "static_members": members}


def list_groups(conn: Connection) -> list[dict[str, Any]]:
    """Every group, with how many static members it has."""
    counts: dict[int, int] = {
        int(g): int(n) for g, n in conn.execute(
            select(asset_group_members.c.group_id, func.count())
            .group_by(asset_group_members.c.group_id))}
    return [_group_dict(r, counts.get(r.id, 0)) for r in
            conn.execute(select(asset_groups).order_by(asset_groups.c.name))]


def describe_group(conn: Connection, group_id: int) -> dict[str, Any]:
    """One group with its members: static, and all (static and selected by its rule)."""
    row = require_row(conn, asset_groups, group_id, "asset group")
    static = sorted(conn.execute(select(asset_group_members.c.asset_id).where(
        asset_group_members.c.group_id == group_id)).scalars())
    out = _group_dict(row, len(static))
    out["members"] = {"static": static, "all": group_asset_ids(conn, group_id)}
    return out


def add_members(conn: Connection, actor: str, group_id: int, asset_ids: list[int]) -> int:
    """Add assets to a group (static membership); how many were new."""
    require_row(conn, asset_groups, group_id, "asset group")
    wanted = set(asset_ids)
    known = set(conn.execute(select(assets.c.id).where(assets.c.id.in_(wanted))).scalars())
    if wanted - known:
        raise NotFound(f"asset_ids: no asset {sorted(wanted - known)}")
    present = set(conn.execute(select(asset_group_members.c.asset_id).where(
        asset_group_members.c.group_id == group_id)).scalars())
    new = sorted(wanted - present)
    if new:
        conn.execute(insert(asset_group_members),
                     [{"group_id": group_id, "asset_id": a} for a in new])
        audit(conn, actor, "group.members.add", f"group:{group_id}", {"asset_ids": new})
    return len(new)


def remove_member(conn: Connection, actor: str, group_id: int, asset_id: int) -> None:
    """Remove a static member."""
    done = conn.execute(delete(asset_group_members).where(
        asset_group_members.c.group_id == group_id, asset_group_members.c.asset_id == asset_id))
    if done.rowcount == 0:
        raise NotFound(f"asset {asset_id} is not a static member of group {group_id}")
    audit(conn, actor, "group.members.remove", f"group:{group_id}", {"asset_id": asset_id})


# --- membership and scopes ------------------------------------------------------------------------

def group_members(conn: Connection, name: str) -> Any:
    """The asset ids of the group called ``name``, for an ``IN``: its static members as a
    sub-select, or, for a group with a tag/attribute rule, the list of the assets it
    selects (rules are matched in Python); none for an unknown group."""
    group = conn.execute(select(asset_groups.c.id, asset_groups.c.rule)
                         .where(asset_groups.c.name == name)).first()
    if group is None:
        return []
    if group.rule:
        return group_asset_ids(conn, group.id)
    return (select(asset_group_members.c.asset_id)
            .where(asset_group_members.c.group_id == group.id))


def in_group(conn: Connection, column: Any, name: str) -> Any:
    """``column`` (an asset id) is a member of the group called ``name``."""
    return column.in_(group_members(conn, name))


@dataclass(frozen=True, slots=True)
class Scope:
    """What a report covers: the estate, one asset group or one business service."""

    group: str | None = None
    service: str | None = None

    @property
    def label(self) -> str:
        """The scope as text for titles and file names ("" for the whole estate)."""
        return self.group or self.service or ""


def resolve_scope(conn: Connection, scope: Scope) -> list[int] | None:
    """The asset ids of a scope, ascending, or None for the whole estate; ScopeError
    naming the field when the group or service does not exist."""
    if scope.group is not None and scope.service is not None:
        raise ScopeError("give a group or a service, not both")
    if scope.group is not None:
        gid = conn.execute(select(asset_groups.c.id)
                           .where(asset_groups.c.name == scope.group)).scalar()
        if gid is None:
            raise UnknownScope(f"group: no asset group named {scope.group!r}")
        return sorted(group_asset_ids(conn, gid))
    if scope.service is not None:
        ids = conn.execute(select(asset_context.c.asset_id)
                           .where(asset_context.c.service == scope.service)).scalars().all()
        if not ids:
            raise UnknownScope(f"service: no asset belongs to a service named "
                               f"{scope.service!r}")
        return sorted(int(i) for i in ids)
    return None


# --- a user's reach -------------------------------------------------------------------------
# A user limited to part of the estate (issue 18) sees the assets of some groups and
# business services.  ``reach_ids`` resolves that once per request to the asset ids (None:
# the whole estate); every list, count, report and action then narrows by them with
# ``within`` / ``narrow`` / ``check_within``, so "what may this user see" is answered here
# and nowhere else.

Reach = frozenset[int] | None
"""The asset ids a caller may see, or None for the whole estate."""


def reach_ids(conn: Connection, scopes: Sequence[tuple[str, str]]) -> Reach:
    """The asset ids of ``scopes`` (``(kind, name)``: ``group`` or ``service``), or None
    when there are none (the whole estate).  A scope naming a group or service that does
    not exist (any more) adds nothing: a user is never widened by a missing name."""
    if not scopes:
        return None
    ids: set[int] = set()
    groups = sorted({name for kind, name in scopes if kind == "group"})
    services = sorted({name for kind, name in scopes if kind == "service"})
    unknown = sorted({kind for kind, _ in scopes} - {"group", "service"})
    if unknown:
        raise ScopeError(f"scope kind {unknown[0]!r}: one of group, service")
    if groups:
        for gid in conn.execute(select(asset_groups.c.id)
                                .where(asset_groups.c.name.in_(groups))).scalars():
            ids.update(group_asset_ids(conn, gid))
    if services:
        ids.update(conn.execute(select(asset_context.c.asset_id)
                                .where(asset_context.c.service.in_(services))).scalars())
    return frozenset(ids)


def within(column: Any, reach: Reach) -> Any:
    """The clause "``column`` (an asset id) is in ``reach``", or None for the whole estate.
    The ids are rendered inline (``literal_execute``), so a scope of any size fits in one
    statement whatever the driver's parameter limit."""
    if reach is None:
        return None
    if not reach:
        return false()
    return column.in_(bindparam(None, sorted(reach), expanding=True,
                                literal_execute=True))


def narrow(ids: Sequence[int] | None, reach: Reach) -> list[int] | None:
    """The asset ids of a report's or filter's scope (None: the estate) narrowed to what
    the caller may see; None only when both are the whole estate."""
    if reach is None:
        return None if ids is None else list(ids)
    if ids is None:
        return sorted(reach)
    return [i for i in ids if i in reach]


def check_within(reach: Reach, asset_id: int, what: str = "asset") -> None:
    """NotFound unless ``asset_id`` is in ``reach``: outside a user's scope a thing is
    answered as if it did not exist, so ids do not reveal the rest of the estate."""
    if reach is not None and asset_id not in reach:
        raise errors.NotFound(f"no {what} with that id in your part of the estate")
