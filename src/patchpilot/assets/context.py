"""Apply CMDB records to the assets the scans found, and flag the assets the CMDB lacks.

Matching is by the most precise key a record carries: machine-id, then FQDN, then
hostname (case-insensitive), then IP address.  A key that matches nothing falls through to
the next; one that matches several assets makes the record *ambiguous* (reported, not
guessed).  Records that match nothing are reported as *unmatched*, or with
``create_missing`` become placeholder assets, so the CMDB can lead the scans.

Everything is set-based and one transaction: the assets are read once, the contexts
written with one upsert, the tags with one executemany — a bad record stops the whole
import before anything is written (records are validated by :mod:`patchpilot.assets.cmdb`
first).  Assets without a CMDB context are "unknown assets"; :func:`ensure_defaults`
gives them a default criticality so they are still prioritised.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from patchpilot.assets.cmdb import CONTEXT, CmdbRecord
from patchpilot.assets.groups import Reach, within
from patchpilot.audit import audit
from patchpilot.clock import iso, now_utc
from patchpilot.db.dialect import upsert
from patchpilot.db.tables import asset_context, assets
from patchpilot.errors import InvalidInput, NotFound

DEFAULT_CRITICALITY = 3
DEFAULT_SOURCE = "default"
# The attribute remembering which tags the CMDB set, so a later import can take back the
# ones it no longer lists without touching tags given by people or other tools.
CMDB_TAGS = "cmdb_tags"


class AssetContextError(InvalidInput):
    """A context that cannot be stored: a bad value (422), or no such asset
    (UnknownAsset, 404)."""


class UnknownAsset(AssetContextError, NotFound):
    """No asset has the id a context was given for."""


@dataclass(frozen=True, slots=True)
class Matched:
    """A record and the asset it was applied to; ``changed``: anything stored differed."""

    record: CmdbRecord
    asset_id: int
    key: str  # the key that matched: machine_id, fqdn, hostname, ip or "created"
    changed: bool


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """A record that matched several assets by its best key (or an asset already taken)."""

    record: CmdbRecord
    asset_ids: tuple[int, ...]
    reason: str


@dataclass(slots=True)
class ApplyResult:
    """What an import did, row by row."""

    updated: list[Matched] = field(default_factory=list)
    created: list[Matched] = field(default_factory=list)
    unmatched: list[CmdbRecord] = field(default_factory=list)
    ambiguous: list[Ambiguous] = field(default_factory=list)
    defaulted: int = 0  # unknown assets given the default context in the same transaction
    # Assets of the rows that declare a network device (a vendor column): assets.devices.
    devices: list[int] = field(default_factory=list)

    @property
    def changed(self) -> int:
        """How many assets' stored context or tags actually changed."""
        return sum(m.changed for m in (*self.updated, *self.created))

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer of the API (and ``--json`` of the CLI)."""
        def rec(r: CmdbRecord) -> dict[str, Any]:
            return {"where": r.where, "identity": r.identity()}
        return {
            "updated": len(self.updated), "created": len(self.created),
            "changed": self.changed, "defaulted": self.defaulted,
            "assets": [{**rec(m.record), "asset_id": m.asset_id, "matched_by": m.key,
                        "changed": m.changed} for m in (*self.updated, *self.created)],
            "unmatched": [rec(r) for r in self.unmatched],
            "ambiguous": [{**rec(a.record), "asset_ids": list(a.asset_ids),
                           "reason": a.reason} for a in self.ambiguous],
            "devices": list(self.devices),
        }


class _Index:
    """The estate's identities, loaded once: key → asset ids."""

    def __init__(self, conn: Connection) -> None:
        self.by: dict[str, dict[str, set[int]]] = {k: defaultdict(set) for k in
                                                   ("machine_id", "fqdn", "hostname", "ip")}
        for row in conn.execute(select(assets.c.id, assets.c.name, assets.c.fqdn,
                                       assets.c.machine_id, assets.c.ip_addresses)):
            self.add(row.id, row.name, row.fqdn, row.machine_id,
                     orjson.loads(row.ip_addresses or "[]"))

    def add(self, asset_id: int, name: str | None, fqdn: str | None,
            machine_id: str | None, ips: list[str]) -> None:
        """Index one asset under every key it can be found by."""
        if machine_id:
            self.by["machine_id"][machine_id.strip().lower()].add(asset_id)
        if fqdn:
            self.by["fqdn"][fqdn.lower()].add(asset_id)
            self.by["hostname"][fqdn.lower().split(".", 1)[0]].add(asset_id)
        if name:
            # An asset named by its FQDN (no hostname reported) is found by either.
            if "." in name and not _looks_like_ip(name):
                self.by["fqdn"][name.lower()].add(asset_id)
                self.by["hostname"][name.lower().split(".", 1)[0]].add(asset_id)
            else:
                self.by["hostname"][name.lower()].add(asset_id)
        for ip in ips:
            self.by["ip"][str(ip).split("/", 1)[0].lower()].add(asset_id)

    def find(self, record: CmdbRecord) -> tuple[str | None, set[int]]:
        """The first key of the record that matches any asset, and the assets it matches."""
        for key in ("machine_id", "fqdn", "hostname", "ip"):
            value = getattr(record, key)
            if value:
                ids = self.by[key].get(value.strip().lower())
                if ids:
                    return key, ids
        return None, set()


def _looks_like_ip(text: str) -> bool:
    return text.replace(".", "").isdigit() or ":" in text


def _placeholder(record: CmdbRecord) -> dict[str, Any]:
    name = record.hostname or (record.fqdn or "").split(".", 1)[0] or record.ip \
        or record.machine_id or "unnamed"
    return {"name": name, "fqdn": record.fqdn, "machine_id": record.machine_id,
            "ip_addresses": orjson.dumps([record.ip] if record.ip else []).decode()}


def apply_records(engine: Engine, records: Sequence[CmdbRecord], *, source: str, actor: str,
                  create_missing: bool = False, label: str | None = None,
                  default_criticality: int | None = DEFAULT_CRITICALITY) -> ApplyResult:
    """Match ``records`` to assets and store their context and tags, in one transaction.

    ``source`` is stored with each context ("cmdb-import", "netbox"); ``label`` names the
    import in the audit log (the file name).  With ``default_criticality`` the assets that
    are still unknown afterwards get the default context in the same transaction.
    """
    with engine.begin() as conn:
        result = apply_records_in(conn, records, source=source, actor=actor,
                                  create_missing=create_missing, label=label)
        if default_criticality is not None:
            result.defaulted = ensure_defaults(conn, criticality=default_criticality,
                                               actor=actor)
    return result


def apply_records_in(conn: Connection, records: Sequence[CmdbRecord], *, source: str,
                     actor: str, create_missing: bool = False, label: str | None = None
                     ) -> ApplyResult:
    """:func:`apply_records` inside the caller's transaction."""
    now = now_utc()
    index = _Index(conn)
    result = ApplyResult()
    taken: dict[int, CmdbRecord] = {}
    plan: list[tuple[CmdbRecord, int, str]] = []
    for record in records:
        key, ids = index.find(record)
        if len(ids) > 1:
            result.ambiguous.append(Ambiguous(
                record, tuple(sorted(ids)), f"{key} matches {len(ids)} assets"))
            continue
        if not ids:
            if not create_missing:
                result.unmatched.append(record)
                continue
            values = _placeholder(record)
            asset_id = int(conn.execute(insert(assets).values(
                first_seen=now, last_seen=now, tags="[]", attributes="{}", **values)
                .returning(assets.c.id)).scalar_one())
            index.add(asset_id, values["name"], record.fqdn, record.machine_id,
                      [record.ip] if record.ip else [])
            taken[asset_id] = record
            plan.append((record, asset_id, "created"))
            continue
        asset_id = next(iter(ids))
        if asset_id in taken:
            # Two rows for one asset: which is right is the CMDB owner's call, not ours.
            result.ambiguous.append(Ambiguous(
                record, (asset_id,), f"asset {asset_id} already matched by "
                                     f"{taken[asset_id].where}"))
            continue
        taken[asset_id] = record
        plan.append((record, asset_id, str(key)))
    for matched in _write(conn, plan, source=source, now=now):
        (result.created if matched.key == "created" else result.updated).append(matched)
    _audit(conn, actor, source, label, result)
    return result


def _write(conn: Connection, plan: list[tuple[CmdbRecord, int, str]], *, source: str,
           now: datetime) -> list[Matched]:
    """Store each (record, asset id, key) of ``plan``: one select, one upsert, one update."""
    if not plan:
        return []
    out: list[Matched] = []
    ids = [asset_id for _, asset_id, _ in plan]
    stored: dict[int, dict[str, Any]] = {}
    asset_rows: dict[int, Any] = {}
    # In chunks: SQLite caps the parameters of one statement (32,766 since 3.32).
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        stored.update((r.asset_id, r._asdict()) for r in conn.execute(
            select(asset_context).where(asset_context.c.asset_id.in_(chunk))))
        asset_rows.update((r.id, r) for r in conn.execute(
            select(assets.c.id, assets.c.tags, assets.c.attributes)
            .where(assets.c.id.in_(chunk))))
    context_rows: list[dict[str, Any]] = []
    asset_updates: list[dict[str, Any]] = []
    for record, asset_id, key in plan:
        old = stored.get(asset_id)
        # Fields the source did not carry keep their stored value; a default context
        # counts as none, so the CMDB's first word replaces it entirely.
        base = ({c: old[c] for c in CONTEXT} if old and old["source"] != DEFAULT_SOURCE
                else dict.fromkeys(CONTEXT))
        new = {**base, **record.context()}
        context_changed = old is None or old["source"] != source or any(
            old[c] != new[c] for c in CONTEXT)
        context_rows.append({"asset_id": asset_id, **new, "source": source,
                             "updated_at": old["updated_at"] if old and not context_changed
                             else now})
        row = asset_rows[asset_id]
        tags_before: list[str] = orjson.loads(row.tags or "[]")
        attrs_before: dict[str, Any] = orjson.loads(row.attributes or "{}")
        tags, attrs = list(tags_before), dict(attrs_before)
        if "tags" in record.present:
            ours = set(attrs.get(CMDB_TAGS, []))
            tags = [t for t in tags if t not in ours]
            tags += [t for t in record.tags if t not in tags]
            attrs[CMDB_TAGS] = list(record.tags)
        # Mirrored into attributes so asset-group rules ({"attributes": {"location": …}})
        # can select by what the CMDB says.
        attrs.update({c: v for c, v in new.items() if v is not None})
        for c in CONTEXT:
            if new[c] is None:
                attrs.pop(c, None)
        attrs.update(record.extra)
        asset_changed = tags != tags_before or attrs != attrs_before
        if asset_changed:
            asset_updates.append({"b_id": asset_id, "b_tags": orjson.dumps(tags).decode(),
                                  "b_attributes": orjson.dumps(attrs).decode()})
        out.append(Matched(record, asset_id, key, context_changed or asset_changed))
    upsert(conn, asset_context, context_rows, ["asset_id"])
    if asset_updates:
        conn.execute(update(assets).where(assets.c.id == bindparam("b_id")).values(
            tags=bindparam("b_tags"), attributes=bindparam("b_attributes")), asset_updates)
    return out


def _audit(conn: Connection, actor: str, source: str, label: str | None,
           result: ApplyResult) -> None:
    audit(conn, actor, "assets.import", label or source, {
        "source": source, "updated": len(result.updated), "created": len(result.created),
        "changed": result.changed, "unmatched": [r.where for r in result.unmatched],
        "ambiguous": [a.record.where for a in result.ambiguous],
        "asset_ids": [m.asset_id for m in (*result.updated, *result.created) if m.changed]})


def set_context(engine: Engine, asset_id: int, record: CmdbRecord, *, actor: str,
                source: str = "manual", reach: Reach = None) -> dict[str, Any]:
    """Store one asset's context by id (the API's PUT); returns it as stored.  An asset
    outside ``reach`` (the assets a scoped caller sees; None: any) is UnknownAsset, as an
    id that names none."""
    with engine.begin() as conn:
        row = None
        if reach is None or asset_id in reach:
            row = conn.execute(select(assets.c.id, assets.c.name).where(
                assets.c.id == asset_id)).first()
        if row is None:
            raise UnknownAsset(f"no asset {asset_id}")
        matched = _write(conn, [(record, asset_id, "id")], source=source, now=now_utc())
        audit(conn, actor, "assets.context", row.name,
              {"asset_id": asset_id, "source": source, "changed": matched[0].changed,
               **record.context(),
               **({"tags": list(record.tags)} if "tags" in record.present else {})})
        return context_of(conn, asset_id) or {}


def context_of(conn: Connection, asset_id: int) -> dict[str, Any] | None:
    """One asset's stored context, or None when the CMDB has never described it."""
    row = conn.execute(select(asset_context, assets.c.tags).join(
        assets, assets.c.id == asset_context.c.asset_id).where(
        asset_context.c.asset_id == asset_id)).first()
    if row is None:
        return None
    return {"asset_id": asset_id, **{c: getattr(row, c) for c in CONTEXT},
            "tags": orjson.loads(row.tags or "[]"), "source": row.source,
            "updated_at": iso(row.updated_at)}


def unknown_assets(conn: Connection, reach: Reach = None) -> list[dict[str, Any]]:
    """Assets the scans found but the CMDB does not describe (no context, or the default);
    ``discovered_by`` names the scanner report that created one (``importer:tenable``).
    ``reach``: only those of the assets a scoped caller sees (None: the estate)."""
    conds = [] if reach is None else [within(assets.c.id, reach)]
    rows = conn.execute(
        select(assets.c.id, assets.c.name, assets.c.fqdn, assets.c.ip_addresses,
               assets.c.first_seen, assets.c.last_seen, asset_context.c.criticality,
               asset_context.c.source, assets.c.discovered_by)
        .outerjoin(asset_context, asset_context.c.asset_id == assets.c.id)
        .where((asset_context.c.asset_id.is_(None))
               | (asset_context.c.source == DEFAULT_SOURCE), *conds)
        .order_by(assets.c.name, assets.c.id)).all()
    return [{"id": r.id, "name": r.name, "fqdn": r.fqdn,
             "ip_addresses": orjson.loads(r.ip_addresses or "[]"),
             "first_seen": iso(r.first_seen), "last_seen": iso(r.last_seen),
             "criticality": r.criticality, "defaulted": r.source == DEFAULT_SOURCE,
             "discovered_by": r.discovered_by}
            for r in rows]


def ensure_defaults(conn: Connection, *, criticality: int = DEFAULT_CRITICALITY,
                    actor: str = "system") -> int:
    """Give every asset without a context the default one (source "default"); how many.

    They stay flagged as unknown (:func:`unknown_assets`) but are prioritised as a
    middling tier instead of not at all.
    """
    if not 1 <= criticality <= 4:
        raise AssetContextError(f"default criticality must be 1-4, got {criticality}")
    missing = [r.id for r in conn.execute(
        select(assets.c.id).outerjoin(asset_context, asset_context.c.asset_id == assets.c.id)
        .where(asset_context.c.asset_id.is_(None)).order_by(assets.c.id))]
    if missing:
        now = now_utc()
        conn.execute(insert(asset_context), [
            {"asset_id": i, "criticality": criticality, "source": DEFAULT_SOURCE,
             "updated_at": now} for i in missing])
        audit(conn, actor, "assets.default_context", None,
              {"criticality": criticality, "asset_ids": missing})
    return len(missing)
