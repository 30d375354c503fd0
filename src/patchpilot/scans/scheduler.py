"""The scheduler: due schedules become one scan job per asset of their group.

``tick`` is idempotent and safe to run from any number of processes at once (the
server's scheduler thread, every ``patchpilot worker``): a due schedule is *claimed* by
``UPDATE schedules SET next_run_at = <next> WHERE id = … AND next_run_at = <old>``, and
only the one transaction whose update changed the row enqueues that run's jobs, in the
same transaction -- so a run is enqueued exactly once, and never half.

Each asset of the group gets the job that fits how it is reached: a ``collect`` job for
its agent (the agent takes it on its next poll) or an ``ssh_scan`` job, run by the
server's workers, for an asset with an ``ssh_target``.  A job's ``run_after`` is the
group's next allowed moment (inside a maintenance window, outside every blackout), so a
scan that falls due outside its window waits for the next one.  An emergency scan
(``scan_now`` with ``override``) ignores windows and blackouts and is audited.  How many
scans of a group run at once is limited when jobs are leased (``patchpilot.queue``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, true, update
from sqlalchemy.engine import Connection

from patchpilot import queue
from patchpilot.assets.groups import NotFound, group_asset_ids, groups_of
from patchpilot.audit import audit
from patchpilot.clock import now_utc
from patchpilot.config import load_settings
from patchpilot.db.tables import (
    agents,
    asset_groups,
    assets,
    schedules,
)
from patchpilot.db.tables import jobs as jobs_table
from patchpilot.errors import InvalidInput, PatchPilotError
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.transports.ssh import (
    HostStatus,
    SshOptions,
    SshTarget,
    scan_hosts_sync,
)
from patchpilot.scans.discovery import enqueue_group_discovery
from patchpilot.scans.groups import group_periods
from patchpilot.scans.schedules import (
    MaintenanceWindow,
    ScheduleError,
    next_allowed,
    next_run,
)

log = logging.getLogger(__name__)

COLLECT, SSH_SCAN = "collect", "ssh_scan"
# What queueing an asset's scan did besides queueing one of those.
ALREADY, UNREACHABLE, NO_WINDOW = "already_queued", "unreachable", "no_window"
# Emergency scans go before everything queued at the default priority.
EMERGENCY_PRIORITY = 100


class ScanError(InvalidInput):
    """A group scan that cannot be started as asked (an override without a reason)."""


class SshScanFailed(PatchPilotError):
    """An SSH target that could not be scanned (unreachable, refused, timed out, …)."""


@dataclass(frozen=True, slots=True)
class GroupScan:
    """The jobs one scan of a group enqueued."""

    group_id: int
    run_after: datetime | None  # None: no allowed moment within the horizon; nothing queued
    collect: int = 0  # agent jobs
    ssh_scan: int = 0  # jobs for the server's workers
    already_queued: int = 0  # assets that already had such a job waiting or running
    unreachable: int = 0  # assets with neither an agent nor an ssh_target

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"group_id": self.group_id,
                "run_after": self.run_after.isoformat() if self.run_after else None,
                "collect": self.collect, "ssh_scan": self.ssh_scan,
                "already_queued": self.already_queued, "unreachable": self.unreachable}


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one tick did."""

    runs: tuple[GroupScan, ...] = ()  # the schedules this tick claimed and ran
    initialised: int = 0  # schedules without next_run_at that got one
    failed: int = 0  # schedules whose expression no longer works (left as they were)


# --- enqueueing ----------------------------------------------------------------------------

def enqueue_group_scan(conn: Connection, group_id: int, now: datetime, payload: dict[str, Any],
                       *, override: bool = False) -> GroupScan:
    """Queue one scan job per asset of the group (in the caller's transaction).

    Without ``override`` each job waits for the group's next allowed moment; with it the
    jobs may run at once (and a job of the asset already waiting for a window is pulled
    forward instead of doubled).  An asset whose job of that kind is still queued or
    running gets no second one: a tick that comes round while a window is far away does
    not pile up scans.
    """
    windows, blackouts = group_periods(conn, group_id)
    run_after = now if override else next_allowed(now, windows, blackouts)
    if run_after is None:
        log.warning("group %s: no allowed scan time within the horizon; nothing queued",
                    group_id)
        return GroupScan(group_id, None)
    counts = {COLLECT: 0, SSH_SCAN: 0, ALREADY: 0, UNREACHABLE: 0}
    for asset_id in group_asset_ids(conn, group_id):
        outcome, _job = _enqueue_one(conn, asset_id, group_id, now, run_after, payload,
                                     override)
        counts[outcome] += 1
    return GroupScan(group_id, run_after, counts[COLLECT], counts[SSH_SCAN], counts[ALREADY],
                     counts[UNREACHABLE])



def _enqueue_one(conn: Connection, asset_id: int, group_id: int | None, now: datetime,
                 run_after: datetime, payload: dict[str, Any], override: bool
                 ) -> tuple[str, int | None]:
    """Queue the scan job that fits how the asset is reached; what happened (``collect``,
    ``ssh_scan``, ``already_queued`` or ``unreachable``) and the job (queued, or the one
    already waiting)."""
    agent_id = conn.execute(
        select(agents.c.id).where(agents.c.asset_id == asset_id, agents.c.revoked_at.is_(None))
        .order_by(agents.c.id.desc()).limit(1)).scalar()
    target = conn.execute(select(assets.c.ssh_target)
                          .where(assets.c.id == asset_id)).scalar()
    if agent_id is not None:
        kind = COLLECT
    elif target:
        kind = SSH_SCAN
    else:
        return UNREACHABLE, None
    pending = conn.execute(select(jobs_table.c.id, jobs_table.c.state).where(
        jobs_table.c.asset_id == asset_id, jobs_table.c.kind == kind,
        jobs_table.c.state.in_((queue.QUEUED, queue.LEASED)))).first()
    if pending is not None:
        if override and pending.state == queue.QUEUED:
            conn.execute(update(jobs_table).where(jobs_table.c.id == pending.id).values(
                run_after=now, priority=EMERGENCY_PRIORITY))
        return ALREADY, int(pending.id)
    job_payload = dict(payload, asset_id=asset_id)
    if kind == SSH_SCAN:
        job_payload["target"] = target
    job_id = queue.enqueue(conn, kind, job_payload, agent_id=agent_id, asset_id=asset_id,
                           group_id=group_id, run_after=run_after,
                           priority=EMERGENCY_PRIORITY if override else 0)
    return kind, job_id


@dataclass(frozen=True, slots=True)
class AssetScan:
    """What a scan of one asset did: ``outcome`` is ``collect`` / ``ssh_scan`` (that job
    queued), ``already_queued``, ``unreachable`` (neither an agent nor an ssh_target) or
    ``no_window`` (no allowed moment within the horizon); ``job_id`` the queued job."""

    asset_id: int
    outcome: str
    run_after: datetime | None
    group_id: int | None
    job_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"asset_id": self.asset_id, "outcome": self.outcome,
                "run_after": self.run_after.isoformat() if self.run_after else None,
                "group_id": self.group_id, "job_id": self.job_id}


def enqueue_asset_scan(conn: Connection, asset_id: int, now: datetime,
                       payload: dict[str, Any], *, override: bool = False) -> AssetScan:
    """Queue a scan of one asset (in the caller's transaction), as a group scan would.

    The job waits for the first moment inside a window of one of the asset's groups and
    outside every blackout of them (with ``override``: now), and carries the asset's first
    group, so that group's ``max_concurrent_scans`` throttles it when it is leased.  An
    asset in no group may be scanned at any time, unthrottled.
    """
    names = groups_of(conn, [asset_id]).get(asset_id, [])
    group_ids = list(conn.execute(select(asset_groups.c.id).where(asset_groups.c.name.in_(
        names)).order_by(asset_groups.c.id)).scalars()) if names else []
    windows: list[MaintenanceWindow] = []
    blackouts: list[MaintenanceWindow] = []
    for group_id in group_ids:
        w, b = group_periods(conn, group_id)
        windows += w
        blackouts += b
    group_id = group_ids[0] if group_ids else None
    run_after = now if override else next_allowed(now, windows, blackouts)
    if run_after is None:
        log.warning("asset %s: no allowed scan time within the horizon; nothing queued",
                    asset_id)
        return AssetScan(asset_id, NO_WINDOW, None, group_id)
    outcome, job_id = _enqueue_one(conn, asset_id, group_id, now, run_after, payload,
                                   override)
    return AssetScan(asset_id, outcome, run_after, group_id, job_id)



def tick(engine: Engine, now: datetime | None = None) -> TickResult:
    """Run every due schedule once: claim it, queue its group's scans, set its next run.

    ``pipeline.tick`` calls it, with the report schedules' and the feed update's ticks.
    """
    now = (now or now_utc()).astimezone(UTC)
    with engine.connect() as conn:
        due = conn.execute(select(schedules).where(
            schedules.c.enabled == true(),
            (schedules.c.next_run_at.is_(None)) | (schedules.c.next_run_at <= now))
            .order_by(schedules.c.id)).all()
    runs: list[GroupScan] = []
    initialised = failed = 0
    for row in due:
        try:
            # From now, not from the missed time: a server that was down for a week runs
            # a missed schedule once, not once per missed occurrence.
            following = next_run(row.kind, row.expression, row.timezone, now)
        except ScheduleError as exc:
            log.warning("schedule %s cannot run: %s", row.id, exc)
            failed += 1
            continue
        old = row.next_run_at
        with engine.begin() as conn:
            claimed = conn.execute(update(schedules).where(
                schedules.c.id == row.id,
                schedules.c.next_run_at.is_(None) if old is None
                else schedules.c.next_run_at == old)
                .values(next_run_at=following,
                        last_run_at=now if old is not None else row.last_run_at))
            if claimed.rowcount != 1:
                continue  # another tick claimed this run first
            if old is None:
                initialised += 1
                continue
            payload = {"reason": "schedule", "schedule_id": row.id}
            runs.append(enqueue_group_scan(conn, row.group_id, now, payload))
            # A group whose rule names ranges to discover: one nmap job for them too.
            enqueue_group_discovery(conn, row.group_id, now, payload)
    return TickResult(tuple(runs), initialised, failed)


def scan_now(engine: Engine, group_id: int, *, actor: str, override: bool = False,
             reason: str | None = None, now: datetime | None = None) -> GroupScan:
    """Scan a group now: within its windows, or -- with ``override`` -- at once (audited).

    An override is an emergency: it needs a ``reason``, which the audit log keeps with
    who asked and what was queued.
    """
    now = (now or now_utc()).astimezone(UTC)
    if override and not (reason or "").strip():
        raise ScanError("reason: an emergency override needs a reason (it is audited)")
    with engine.begin() as conn:
        name = conn.execute(select(asset_groups.c.name)
                            .where(asset_groups.c.id == group_id)).scalar()
        if name is None:
            raise NotFound(f"no asset group {group_id}")
        result = enqueue_group_scan(conn, group_id, now,
                                    {"reason": "override" if override else "scan-now"},
                                    override=override)
        audit(conn, actor, "group.scan_now.override" if override else "group.scan_now",
              f"group:{group_id}", {"group": name, "override": override,
                                    "reason": reason or "", **result.as_dict()})
    return result


# --- the SSH scan job ----------------------------------------------------------------------

def server_ssh_options() -> SshOptions:
    """The server's SSH settings, from :class:`~patchpilot.config.Settings` (keys by path,
    never contents).

    ``PATCHPILOT_SSH_KNOWN_HOSTS``: the known_hosts file (default ``~/.ssh/known_hosts``);
    unknown host keys are refused, never trusted on first use by an unattended worker.
    ``PATCHPILOT_SSH_IDENTITY``: private key files, separated by ``os.pathsep``.
    """
    settings = load_settings()
    return SshOptions(identities=settings.ssh_identities, known_hosts=settings.ssh_known_hosts,
                      use_agent=settings.ssh_auth_sock is not None, trust_new_hosts=False,
                      max_concurrent=1)


def run_ssh_scan(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """Scan an asset's ``ssh_target`` and store the inventory (its match job queued)."""
    target = SshTarget.parse(str(job.payload["target"]), f"job {job.id} target")
    [result] = scan_hosts_sync([target], server_ssh_options())
    if result.status is not HostStatus.scanned or result.inventory is None:
        raise SshScanFailed(f"{target}: {result.status.value}: {result.error}")
    stored = ingest_inventory(engine, result.inventory, asset_id=job.asset_id,
                              enqueue_match=True)
    return {"target": str(target), "asset_id": stored.asset_id,
            "inventory_id": stored.inventory_id, "match_job_id": stored.job_id,
            "packages": len(result.inventory.packages), "seconds": round(result.seconds, 3)}
