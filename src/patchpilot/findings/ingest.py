"""Ingest: an inventory stored as its asset's latest, and the asset identity.

An uploaded inventory (agent, SSH scan, SBOM or lock file) is stored in one transaction
with its asset found or created and its packages written as ``asset_packages`` rows (what
re-matching and sweeps read).  :func:`find_or_create_asset` is the one asset-identity
lookup: importers of third-party reports reuse it, so a report and an agent speak of the
same asset.  An agent reports for the asset it is bound to; an unbound agent naming an
asset another agent owns is held for an admin's approval (:class:`AssetClaimedError`).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from patchpilot.audit import audit
from patchpilot.clock import now_utc
from patchpilot.db.dialect import bulk_insert
from patchpilot.db.tables import agents, asset_packages, assets, inventories
from patchpilot.errors import Conflict
from patchpilot.findings.coverage import record_asset_ecosystems
from patchpilot.findings.model import WINDOWS
from patchpilot.findings.owned import installed_entry
from patchpilot.findings.uploads import refuse_replacing_a_scan
from patchpilot.findings.windows import os_row
from patchpilot.inventory.model import AssetIdentity, Inventory
from patchpilot.knowledge.coverage import packages_per_ecosystem
from patchpilot.knowledge.names import normalize_name
from patchpilot.queue import enqueue


@dataclass(frozen=True, slots=True)
class IngestResult:
    """Where an uploaded inventory went."""

    asset_id: int
    inventory_id: int
    duplicate: bool  # the idempotency key was seen before: nothing was stored again
    job_id: int | None = None  # the match job queued for it


class AssetClaimedError(Conflict):
    """An agent's inventory names an asset another active agent reports for (a Conflict:
    the server answers 409).

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


# The keys of the asset identity, in order of precedence: the first key the identity has
# and some stored asset has decides.  Stable, unique keys first (machine-id survives a
# rename and a re-IP; a cloud instance id is unique in its cloud; an image or repository
# name is the asset's whole identity), then names (FQDN before the short host name), and
# an IP address last, only for an identity that has nothing else (a network scanner's
# report): addresses move (DHCP) and repeat (container bridges, NAT), so a host that
# names itself is never merged into another by an address.
IDENTITY_KEYS = ("machine_id", "cloud_instance_id", "artifact", "fqdn", "hostname",
                 "ip_addresses")


def _usable_address(text: str) -> bool:
    """An address that can name one asset (not loopback, link-local or unspecified)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_link_local or address.is_unspecified)


def find_asset(conn: Connection, identity: AssetIdentity) -> int | None:
    """The stored asset ``identity`` describes (its oldest, when several match), or None.

    Tried in the order of :data:`IDENTITY_KEYS`: machine-id, cloud instance id,
    image/repository (``artifact``), FQDN, host name (``assets.name``), and -- only when
    the identity has none of those -- each usable IP address in turn.
    """
    for column, value in ((assets.c.machine_id, identity.machine_id),
                          (assets.c.cloud_instance_id, identity.cloud_instance_id),
                          (assets.c.artifact, identity.artifact),
                          (assets.c.fqdn, identity.fqdn), (assets.c.name, identity.hostname)):
        if value:
            found = conn.execute(select(assets.c.id).where(column == value)
                                 .order_by(assets.c.id).limit(1)).scalar()
            if found is not None:
                return int(found)
    if any((identity.machine_id, identity.cloud_instance_id, identity.artifact,
            identity.fqdn, identity.hostname)):
        return None
    for address in identity.ip_addresses:
        if not _usable_address(address):
            continue
        # ip_addresses is a JSON list of strings: the quoted address is one element, never
        # a part of another ("10.0.0.1" is not found in "10.0.0.12").
        quoted = orjson.dumps(address).decode()
        found = conn.execute(select(assets.c.id).where(
            assets.c.ip_addresses.contains(quoted, autoescape=True))
            .order_by(assets.c.id).limit(1)).scalar()
        if found is not None:
            return int(found)
    return None


_KEY_COLUMNS = (("machine_id", assets.c.machine_id),
                ("cloud_instance_id", assets.c.cloud_instance_id),
                ("artifact", assets.c.artifact), ("fqdn", assets.c.fqdn),
                ("hostname", assets.c.name))
# How many values one lookup of :func:`find_assets` binds.
_LOOKUP_CHUNK = 5000


def find_assets(conn: Connection, identities: Sequence[AssetIdentity]) -> list[int | None]:
    """:func:`find_asset` of many identities, with the same precedence, in one query per
    identity key for them all (an import's thousands of hosts) -- the address fallback,
    for identities with nothing else, one query each."""
    oldest: dict[str, dict[str, int]] = {}
    for attribute, column in _KEY_COLUMNS:
        values = sorted({v for i in identities if (v := getattr(i, attribute))})
        found: dict[str, int] = {}
        for start in range(0, len(values), _LOOKUP_CHUNK):
            chunk = values[start:start + _LOOKUP_CHUNK]
            for value, asset_id in conn.execute(
                    select(column, func.min(assets.c.id)).where(column.in_(chunk))
                    .group_by(column)):
                found[value] = int(asset_id)
        oldest[attribute] = found
    out: list[int | None] = []
    for identity in identities:
        hit: int | None = None
        named = False
        for attribute, _column in _KEY_COLUMNS:
            value = getattr(identity, attribute)
            if value:
                named = True
                hit = oldest[attribute].get(value)
                if hit is not None:
                    break
        if hit is None and not named:
            hit = find_asset(conn, identity)
        out.append(hit)
    return out


def _identity_values(identity: AssetIdentity) -> dict[str, Any]:
    return {"name": (identity.hostname or identity.fqdn or identity.artifact
                     or identity.machine_id or identity.cloud_instance_id
                     or next(iter(identity.ip_addresses), None) or "unnamed"),
            "fqdn": identity.fqdn, "machine_id": identity.machine_id,
            "cloud_instance_id": identity.cloud_instance_id, "artifact": identity.artifact,
            "ip_addresses": orjson.dumps(identity.ip_addresses).decode()}


def find_or_create_asset(conn: Connection, identity: AssetIdentity, *,
                         now: datetime | None = None) -> int:
    """The asset ``identity`` describes (:func:`find_asset`), created when none matches.

    For importers of third-party reports: the same lookup an uploaded inventory gets, so
    a report and an agent speak of one asset.  A created asset is named by its host name,
    else its FQDN, image/repository, machine-id, cloud instance id or first address.
    Runs in the caller's transaction.
    """
    found = find_asset(conn, identity)
    if found is not None:
        return found
    now = now or now_utc()
    return int(conn.execute(insert(assets).values(
        first_seen=now, last_seen=now, tags="[]", attributes="{}",
        **_identity_values(identity)).returning(assets.c.id)).scalar_one())


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
    found = find_asset(conn, inv.asset)
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
    if inv.packages or not inv.complete or inv.windows is not None:
        # A Windows host is judged by its build and KBs, not by packages.
        return inv
    return inv.model_copy(update={
        "complete": False,
        "warnings": [*inv.warnings, "no package in this inventory: stored as incomplete, "
                                    "so it closes no finding"]})


def _asset_values(inv: Inventory, now: datetime) -> dict[str, Any]:
    os_text = None
    ecosystem: str | None = None
    if inv.os is not None:
        os_text = inv.os.pretty_name or f"{inv.os.id} {inv.os.version_id or ''}".strip()
    elif inv.device is not None:
        # A network device's OS column: "Fortinet FortiOS 7.2.4", what the lists show.
        d = inv.device
        os_text = " ".join(p for p in (d.vendor, d.os_name or d.model, d.firmware) if p
                           )[:200] or None
    packages = inv.to_packages()
    distro = [p.ecosystem for p in packages if ":" in p.ecosystem]
    if distro:
        ecosystem = max(set(distro), key=distro.count)
    elif inv.windows is not None and inv.windows.family:
        ecosystem = WINDOWS
    return {**_identity_values(inv.asset), "os": os_text, "ecosystem": ecosystem,
            "last_seen": now}


def _package_rows(asset_id: int, inv: Inventory) -> list[tuple[Any, ...]]:
    # [name, version, arch] per installed package, and its location for a language package
    # (each site-packages folder or lock file is one installation of a finding; an OS
    # package's location is the system's package database, the same for all).
    grouped: dict[tuple[str, str, str], list[list[str | None]]] = defaultdict(list)
    for p in inv.to_packages():
        key = (p.ecosystem, normalize_name(p.ecosystem, p.match_name), p.match_version)
        grouped[key].append(installed_entry(p))
    rows = [(asset_id, eco, name, version, orjson.dumps(installed).decode())
            for (eco, name, version), installed in grouped.items()]
    if inv.windows is not None and inv.windows.family:
        # The Windows OS as one row: sweeps find a vulnerability's Windows hosts by it.
        name, version = os_row(inv.windows)
        rows.append((asset_id, WINDOWS, name, version, "[]"))
    return rows


def ingest_inventory(engine: Engine, inv: Inventory, *, idempotency_key: str | None = None,
                     asset_id: int | None = None, enqueue_match: bool = False,
                     agent_id: int | None = None) -> IngestResult:
    """Store ``inv`` as its asset's latest inventory (history kept), in one transaction.

    The asset is found by its identity (:func:`find_asset`; or given), else created.  From an
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
                asset_id = asset_id or find_asset(conn, inv.asset)
            if asset_id is not None:
                # A file's inventory never replaces a scanned host's (ReplacesScan).
                refuse_replacing_a_scan(conn, asset_id, inv)
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
            # Its packages per ecosystem, for the coverage the pages show (0012_cover).
            record_asset_ecosystems(conn, asset_id,
                                    packages_per_ecosystem(p.ecosystem for p in inv.packages))
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
