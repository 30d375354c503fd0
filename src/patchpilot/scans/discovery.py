"""Storing what network discovery found: one asset per live host, through the ingest.

Each discovered host's inventory (``nmap``, ``snmp`` or ``nmap+snmp``) goes through
``findings.ingest.ingest_inventory`` with its match job queued, so the asset, its CPE
packages and their findings follow the same path as any scan.  A host whose asset is
already inventoried by a host collector (an agent, an SSH or WinRM scan) is *kept*: its
package list is the better source, and a port scan must never replace it and close its
findings.

**Scheduled discovery.**  A group whose rule names ``discover`` ranges gets, at each run of
its schedules, one ``discover`` job for those ranges (:func:`enqueue_group_discovery`),
waiting -- like the group's host scans -- for its next allowed moment (inside a window,
outside every blackout) and counted against its ``max_concurrent_scans`` when leased.
When the job runs (:func:`run_discovery`) a blackout in force refuses it, and the ranges
must still lie inside ``PATCHPILOT_DISCOVERY_SCOPE``, probed at the configured rate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from patchpilot import queue
from patchpilot.assets.groups import discover_ranges
from patchpilot.clock import now_utc
from patchpilot.config import load_settings
from patchpilot.db.tables import assets, inventories
from patchpilot.db.tables import jobs as jobs_table
from patchpilot.discovery.nmap import NmapOptions, host_inventory, parse_nmap_xml, run_nmap
from patchpilot.discovery.scope import check_targets
from patchpilot.errors import PatchPilotError
from patchpilot.findings.ingest import find_asset, ingest_inventory
from patchpilot.inventory.model import Inventory
from patchpilot.scans.groups import group_periods
from patchpilot.scans.schedules import is_allowed, next_allowed

log = logging.getLogger(__name__)

DISCOVER = "discover"


class DiscoveryRefused(PatchPilotError):
    """A scheduled discovery that may not run now (a blackout, outside every window)."""

# The collectors of discovery: their inventories replace one another, nothing else.
DISCOVERY_COLLECTORS = ("nmap", "snmp", "nmap+snmp")


@dataclass(frozen=True, slots=True)
class StoredHost:
    """What became of one discovered host: stored (its asset and match job) or kept."""

    address: str
    asset_id: int | None
    inventory_id: int | None
    job_id: int | None
    kept_because: str | None = None  # why nothing was stored


def store_discovered(engine: Engine, found: Sequence[Inventory]) -> list[StoredHost]:
    """Store each discovered host's inventory as its asset's latest (one transaction per
    host, its match job queued), except over an asset a host collector inventories."""
    stored: list[StoredHost] = []
    for inv in found:
        address = inv.asset.ip_addresses[0] if inv.asset.ip_addresses else \
            inv.asset.hostname or "?"
        with engine.connect() as conn:
            asset_id = find_asset(conn, inv.asset)
            collector = None
            if asset_id is not None:
                collector = conn.execute(
                    select(inventories.c.collector)
                    .join(assets, assets.c.last_inventory_id == inventories.c.id)
                    .where(assets.c.id == asset_id)).scalar()
        if collector is not None and collector not in DISCOVERY_COLLECTORS:
            stored.append(StoredHost(address, asset_id, None, None,
                                     f"asset {asset_id} is inventoried by its {collector} "
                                     "collector; discovery does not replace that"))
            continue
        result = ingest_inventory(engine, inv, asset_id=asset_id, enqueue_match=True)
        stored.append(StoredHost(address, result.asset_id, result.inventory_id,
                                 result.job_id))
    return stored


def enqueue_group_discovery(conn: Connection, group_id: int, now: datetime,
                            payload: dict[str, Any]) -> int | None:
    """Queue the group's ``discover`` job (in the caller's transaction) for its rule's
    ranges at its next allowed moment; None when it has no ranges, no allowed moment
    within the horizon, or such a job is still waiting or running."""
    ranges = discover_ranges(conn, group_id)
    if not ranges:
        return None
    windows, blackouts = group_periods(conn, group_id)
    run_after = next_allowed(now, windows, blackouts)
    if run_after is None:
        log.warning("group %s: no allowed discovery time within the horizon", group_id)
        return None
    pending = conn.execute(select(jobs_table.c.id).where(
        jobs_table.c.group_id == group_id, jobs_table.c.kind == DISCOVER,
        jobs_table.c.state.in_((queue.QUEUED, queue.LEASED)))).first()
    if pending is not None:
        return None
    return queue.enqueue(conn, DISCOVER, dict(payload, targets=ranges), group_id=group_id,
                         run_after=run_after)


def run_discovery(engine: Engine, job: queue.Job, now: datetime | None = None
                  ) -> dict[str, Any]:
    """Run a ``discover`` job: refused inside a blackout or outside the group's windows,
    and for ranges outside the scope; else nmap at the configured rate, each live host
    stored (:func:`store_discovered`)."""
    now = (now or now_utc()).astimezone(UTC)
    targets = [str(t) for t in job.payload["targets"]]
    if job.group_id is not None:
        with engine.connect() as conn:
            windows, blackouts = group_periods(conn, job.group_id)
        if not is_allowed(now, windows, blackouts):
            raise DiscoveryRefused(f"group {job.group_id}: discovery of "
                                   f"{', '.join(targets)} refused: a blackout is in force "
                                   "or no maintenance window is open now")
    settings = load_settings()
    checked = check_targets(targets, settings.discovery_scope)
    run = run_nmap([t.probe for t in checked], NmapOptions(
        rate=settings.discovery_rate, ports=job.payload.get("ports")))
    scan = parse_nmap_xml(run.xml, f"job {job.id} nmap output")
    stored = store_discovered(engine, [host_inventory(h) for h in scan.hosts])
    return {"targets": targets, "hosts": len(scan.hosts),
            "stored": sum(1 for s in stored if s.inventory_id is not None),
            "kept": sum(1 for s in stored if s.kept_because), "nmap_seconds":
            round(run.seconds, 3)}
