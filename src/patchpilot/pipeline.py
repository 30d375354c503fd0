"""The order of work: what happens after an inventory, after a feed update, after an import.

Every stage below (``findings``, ``scoring``, ``scans``, ``reports``, ``knowledge``) does one
thing inside the caller's transaction; this module says in which order they run and in
which transactions.  Workers run its :data:`HANDLERS`; the server's scheduler thread and
idle workers run its :func:`tick`.

**After an inventory** (an agent's upload, an SSH scan, an uploaded SBOM or lock file):
``findings.ingest.ingest_inventory`` stores it and queues a ``match`` job in the same
transaction, and the job runs :func:`process_inventory` -- in ONE transaction:

1. match the stored inventory against the knowledge base (reads only);
2. apply the findings to the asset (new, still open, reopened, fixed; triage decisions
   stand), per producer -- the matcher's and the host's own pending updates;
3. settle the asset in every running sweep waiting for a fresher inventory;
4. prioritise the asset's unfixed findings (priority, reason, SLA due date);
5. refresh the asset's summary row, once, from the end state.

A failure at any step leaves nothing of the others behind; the job is retried.

**After a feed update** (the server's own ``feed_update`` job, daily by default --
``PATCHPILOT_FEED_UPDATE_INTERVAL`` -- or ``patchpilot db update``): the knowledge base is
loaded one source per transaction (``knowledge.update``), then :func:`after_feed_update`
re-matches the stored inventories the update concerns (``scans.rematch``: only assets
having a package an updated advisory names, or every asset when advisories were removed
or KEV, EPSS or CVE records changed, since those change every finding's facts); when
KEV, EPSS or CVE records changed, it refreshes the imported findings' facts from them
(``importers.kb_refresh``, with the same ``known_exploited_added`` and ``epss_crossed``
events: an imported finding has no inventory to re-match), then re-prioritises every
unfixed finding and refreshes every asset's summary row (once: the
re-match leaves the rows to it).  These long jobs run in a worker lane of their own
(:data:`SLOW_KINDS`), so an upload's ``match`` job never waits behind a feed update.

**After an import** (a third-party scanner report: ``patchpilot import``, an upload's
``import`` job, the watched folder): ``importers.apply.import_file`` parses the report
whole (a malformed file is refused before anything is written), then in ONE transaction
finds or creates each host by its identity (``findings.ingest.find_assets``), applies its
findings under ``producer="importer:<scanner>"`` -- so a re-import closes only that
scanner's findings, on the assets it covers -- keeps its informational items as asset
facts, and does steps 4 and 5 as above for the report's assets.

**Divided jobs**: a re-match (``rematch``) or a re-prioritisation of the estate
(``prioritise``) of more than ``PATCHPILOT_CHUNK_ASSETS`` assets splits into chunk jobs
(``rematch_chunk``, ``prioritise_chunk``: payload ``{"parent": id, "lo": a, "hi": b}``, a
range of asset ids) queued in one transaction with the parent's wait (``queue.split``).
Any worker thread or process takes them (a pool runs as many at once as it has quick
threads: ``worker.start_pool``); the parent's ``result`` shows ``chunks_done`` of
``chunks`` meanwhile.  When the last chunk is done the parent is queued again and runs its
finishing step once -- what followed the undivided job: after a re-match the imported
findings' refresh and the ``prioritise`` job, after a re-prioritisation nothing more (each
chunk refreshed its assets' summary rows).  Each chunk does for its assets exactly what
the undivided job does for them, so the findings, counts, ``new_from_feed`` marks and
events are the same; a smaller estate is done in one job, as before.

**Events**: every lifecycle change writes a ``finding_events`` row in the transaction of
the change (``findings.lifecycle``); playbooks and notifications read those events
(``GET /api/events?after=ID``) -- they never hook into this module.

**Periodic work** (:func:`tick`): due scan schedules become scan jobs, due report schedules
report jobs, and a ``feed_update`` job is queued when the knowledge base is older than the
interval -- each claimed so that any number of processes may tick at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import Connection

from patchpilot import queue
from patchpilot.automation.run import run_automation
from patchpilot.clock import aware, now_utc
from patchpilot.config import Settings, load_settings
from patchpilot.db.dialect import prefer_index_joins
from patchpilot.db.engine import optimize
from patchpilot.db.tables import assets, feed_state, inventories, jobs
from patchpilot.errors import NotFound, PatchPilotError
from patchpilot.findings.events import (
    record_sla_breaches,
    record_sla_due_soon,
    record_stale_assets,
)
from patchpilot.findings.lifecycle import apply_asset_findings
from patchpilot.findings.scan import scan_inventory_in
from patchpilot.findings.summary import refresh as refresh_summary
from patchpilot.findings.summary import refresh_stale
from patchpilot.findings.triage import reapply_decisions
from patchpilot.importers.jobs import IMPORT, poll_watched_folder, run_import_job
from patchpilot.importers.kb_refresh import ImportedRefresh, refresh_imported
from patchpilot.inventory.model import Inventory
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.knowledge.feeds.registry import feed_named
from patchpilot.knowledge.update import SourceResult, update_from, update_online
from patchpilot.reports.jobs import REPORT_FILE, remove_expired, run_report_file
from patchpilot.reports.mail import REPORT_JOB, run_report, tick_reports
from patchpilot.reports.overview import not_scanned_condition
from patchpilot.scans.discovery import DISCOVER, run_discovery
from patchpilot.scans.plan_store import refresh_if_stale as refresh_plan_if_stale
from patchpilot.scans.rematch import (
    AssetRange,
    RematchMemo,
    RematchResult,
    assets_changed_since,
    rematch_all,
)
from patchpilot.scans.scheduler import TickResult, run_ssh_scan
from patchpilot.scans.scheduler import tick as tick_schedules
from patchpilot.scans.sweeps import close_sweeps, update_sweeps_for_asset
from patchpilot.scoring.apply import reprioritise
from patchpilot.scoring.apply import run_prioritise as prioritise_in_one_job

log = logging.getLogger(__name__)

MATCH, REMATCH, PRIORITISE, FEED_UPDATE = "match", "rematch", "prioritise", "feed_update"
# The chunks of a divided re-match and re-prioritisation.
REMATCH_CHUNK, PRIORITISE_CHUNK = "rematch_chunk", "prioritise_chunk"


class FeedUpdateFailed(PatchPilotError):
    """A ``feed_update`` job that loaded nothing: every source failed, or none was found."""


# ---------------------------------------------------------------------------------------
# After an inventory
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InventoryProcessed:
    """What :func:`process_inventory` did (the ``match`` job's result)."""

    asset_id: int
    findings: int  # findings the inventory has now
    new: int
    reopened: int
    fixed: int
    undetermined: int  # packages whose version no rule could judge

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def process_inventory(engine: Engine, inventory_id: int) -> InventoryProcessed:
    """Match a stored inventory and bring its asset up to date, in one transaction.

    Match, apply the findings, settle the asset in running sweeps, prioritise, then
    refresh the asset's summary row once.  The match only reads, so on SQLite the write
    lock is taken by the first write, after matching; a failure in any later step rolls
    back every earlier one (the job is retried, nothing is half-applied).
    """
    with engine.begin() as conn:
        row = conn.execute(select(inventories.c.asset_id, inventories.c.document)
                           .where(inventories.c.id == inventory_id)).first()
        if row is None:
            raise NotFound(f"inventory {inventory_id}: no such inventory")
        asset_id = int(row.asset_id)
        inventory = Inventory.from_json(row.document, f"inventory {inventory_id}")
        # 1. Match: the matcher's findings and the host's own pending updates (the latter
        #    only where the knowledge base says nothing of the same CVE and package).
        scan = scan_inventory_in(conn, inventory)
        # 2. Apply.  A complete inventory closes what it no longer shows; a partial one
        #    closes nothing.  Per producer: the matcher's and the host updates' reports
        #    each close only their own findings.
        counts = apply_asset_findings(conn, asset_id, scan.reports,
                                      complete=inventory.complete)
        # 3. Sweeps: a fresher inventory confirms or clears the asset in running sweeps.
        update_sweeps_for_asset(conn, asset_id)
        # 4. Prioritise: new and reopened findings get their priority, reason, due date.
        reprioritise(conn, asset_id=asset_id, summary=False)
        # 5. The asset's summary row (the dashboard's counts), once, from the end state.
        refresh_summary(conn, [asset_id])
    return InventoryProcessed(asset_id, len(scan.findings), counts.new, counts.reopened,
                              counts.fixed, len(scan.undetermined))


# ---------------------------------------------------------------------------------------
# After a feed update
# ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class FeedFollowUp:
    """What followed a knowledge-base update."""

    changed: bool = False  # some source wrote or removed records
    # Assets re-matched: those having a package an advisory of a source loaded since this
    # time names; None: every asset.
    changed_since: datetime | None = None
    rematch: RematchResult | None = None  # run here (inline)
    # Imported findings' KEV, EPSS and CVE-record facts refreshed (inline; None when only
    # advisories were added or rewritten: those change no imported finding's facts).
    imported: ImportedRefresh | None = None
    reprioritised: int | None = None  # findings whose priority changed
    prioritise_seconds: float = 0.0
    job_id: int | None = None  # the queued ``rematch`` job (not inline)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (a job's result)."""
        return {"changed": self.changed,
                "changed_since": self.changed_since.isoformat() if self.changed_since else None,
                "rematch": self.rematch.to_dict() if self.rematch else None,
                "imported": self.imported.to_dict() if self.imported else None,
                "reprioritised": self.reprioritised, "rematch_job": self.job_id}


def after_feed_update(engine: Engine, results: Sequence[SourceResult], *,
                      inline: bool = True) -> FeedFollowUp:
    """Bring the estate's findings in line with a knowledge base that ``results`` changed.

    Re-matches the stored inventories the update concerns; when KEV, EPSS or CVE records
    changed, refreshes the imported findings' facts from them
    (``importers.kb_refresh``: no inventory re-matches those); then re-prioritises every
    unfixed finding (which refreshes every asset's summary row).  With ``inline`` false
    (``patchpilot db update`` without ``--rematch``) a ``rematch`` job is queued for the
    workers instead.  Nothing happens when no source changed or no asset is stored.
    """
    changed = [r for r in results if r.status == "loaded" and (r.written or r.removed)]
    if not changed:
        return FeedFollowUp()
    with engine.connect() as conn:
        if conn.execute(select(assets.c.id).limit(1)).first() is None:
            return FeedFollowUp(changed=True)  # no inventory stored yet: nothing to match
        since = _changed_since(conn, changed)
    if not inline:
        with engine.begin() as conn:
            job_id = queue.enqueue(conn, REMATCH, {
                "changed_since": since.isoformat() if since else None})
        return FeedFollowUp(True, since, job_id=job_id)
    # The re-match leaves the summary rows alone (summary=False): the re-prioritisation
    # below refreshes every one of them, once, from the end state.
    out = FeedFollowUp(True, since,
                       rematch=rematch_all(engine, changed_since=since, summary=False))
    if since is None:  # KEV, EPSS or CVE records changed (or an advisory was removed)
        out.imported = refresh_imported(engine)
    if (out.rematch is not None and out.rematch.assets) or (
            out.imported is not None and out.imported.changed):
        started = time.perf_counter()
        with engine.begin() as conn:
            # One statement over every unfixed finding: a re-match brings new findings,
            # and a KEV or EPSS update re-ranks old ones.  Then every summary row.
            out.reprioritised = reprioritise(conn)
        out.prioritise_seconds = time.perf_counter() - started
    return out


def _changed_since(conn: Connection, changed: Sequence[SourceResult]) -> datetime | None:
    """From when the update's sources count as updated, or None: re-match every asset.

    Only added or rewritten advisories allow a re-match of just the assets whose packages
    they name.  A removed advisory leaves no name behind to find the assets it matched,
    and KEV, EPSS and CVE records change facts of findings of any package.
    """
    for r in changed:
        try:
            kind = feed_named(r.feed).kind
        except KeyError:
            return None
        if r.removed or kind is not RecordKind.ADVISORY:
            return None
    first = conn.execute(select(func.min(feed_state.c.updated_at)).where(
        feed_state.c.source.in_([r.source for r in changed]))).scalar()
    return aware(first)


# ---------------------------------------------------------------------------------------
# After an import: see the module docstring (importers come in a later issue).
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# Periodic work: the scheduler's tick, and what idle workers do
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """What one :func:`tick` queued."""

    schedules: TickResult
    reports: int  # report jobs
    feed_update_job: int | None  # the feed_update job, when one fell due


def tick(engine: Engine, now: datetime | None = None, *,
         settings: Settings | None = None) -> Tick:
    """Queue the periodic work that fell due: scans, reports, the feed update.

    Safe from any number of processes at once (the server's scheduler thread, every idle
    ``patchpilot worker``): each piece is claimed so that it is queued exactly once.
    """
    now = (now or now_utc()).astimezone(UTC)
    scans = tick_schedules(engine, now)
    try:
        reports = tick_reports(engine, now)
    except Exception:
        reports = 0
        log.exception("report schedules tick failed")  # scans are queued regardless
    job = enqueue_feed_update_if_due(engine, now, settings or load_settings())
    return Tick(scans, reports, job)


def enqueue_feed_update_if_due(engine: Engine, now: datetime, settings: Settings) -> int | None:
    """Queue a ``feed_update`` job when the knowledge base is older than the interval.

    Older means: no source was loaded (``feed_state.updated_at``) and no ``feed_update``
    job was queued (whatever became of it: a failed download waits for the next
    interval too) within ``settings.feed_update_hours``.  Never while one is queued or
    running, so however many workers tick, one of them runs it.  The job's id, or None.
    """
    if settings.feed_update_hours is None:
        return None  # off: an air-gapped install loads its feeds by hand
    due_before = now - timedelta(hours=settings.feed_update_hours)
    with engine.begin() as conn:
        loaded = aware(conn.execute(select(func.max(feed_state.c.updated_at))).scalar())
        if loaded is not None and loaded > due_before:
            return None  # the cheap answer, almost every tick
        _one_at_a_time(conn)
        last = conn.execute(select(jobs.c.state, jobs.c.created_at)
                            .where(jobs.c.kind == FEED_UPDATE)
                            .order_by(jobs.c.id.desc()).limit(1)).first()
        if last is not None and (last.state in (queue.QUEUED, queue.LEASED)
                                 or aware(last.created_at) > due_before):  # type: ignore[operator]
            return None  # one is waiting or running, or one ran within the interval
        return queue.enqueue(conn, FEED_UPDATE, {"reason": "interval",
                                                 "hours": settings.feed_update_hours})


# Constant keys of PostgreSQL's advisory locks: "patchpilot feed_update", "... upkeep".
_FEED_UPDATE_LOCK = 0x7061_7463_6866_6564
_UPKEEP_LOCK = 0x7061_7463_6875_706B


def _one_at_a_time(conn: Connection, key: int = _FEED_UPDATE_LOCK) -> None:
    """Serialise the callers' transactions until they end (check, then write)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        # SQLite: take the write lock before reading (as queue.lease does).
        conn.exec_driver_sql("UPDATE jobs SET id = id WHERE 0")


def when_idle(engine: Engine, settings: Settings | None = None) -> None:
    """What an idle worker does every round: settle sweeps whose deadline passed or whose
    refresh jobs failed for good (reads only, unless something is due); import what a
    scanner dropped in the watched folder (``PATCHPILOT_IMPORT_WATCH_DIR``, every 30 s);
    rebuild the stored patch plan when findings changed (at most once a minute), unless
    a re-match or re-prioritisation of the estate is under way; run the playbooks
    (``automation.run``: due schedules, new events, due deliveries -- each one indexed
    read when idle; its failures are logged, never raised)."""
    settings = settings or load_settings()
    close_sweeps(engine)
    poll_watched_folder(engine, settings.import_watch_dir)
    with engine.connect() as conn:
        # Those rewrite the findings and priorities the plan is made of, for minutes on a
        # large estate: a plan built meanwhile would be stale at once, and building it
        # (minutes too, at 10 million findings) would take the cores they run on.  The
        # next idle round after them builds it.
        estate_work = queue.any_under_way(conn, ESTATE_KINDS)
    if not estate_work:
        refresh_plan_if_stale(engine)
    run_automation(engine, settings)


def upkeep(engine: Engine, settings: Settings | None = None) -> None:
    """What an idle worker does every few minutes (idempotent: harmless from many)."""
    settings = settings or load_settings()
    # Risk acceptances that expired reopen their findings.
    run_expire_decisions(engine, None)
    # Findings whose due date passed since their asset's summary row was made; their
    # breaches, the findings due within the warning period and the assets not scanned on
    # schedule, as events (each once).
    now = now_utc()
    with engine.begin() as conn:
        # Two workers at once would both see a breach unrecorded and record it twice.
        _one_at_a_time(conn, _UPKEEP_LOCK)
        refresh_stale(conn, now=now)
        record_sla_breaches(conn, now)
        record_sla_due_soon(conn, timedelta(days=settings.sla_warning_days), now)
        record_stale_assets(conn, not_scanned_condition(conn, now), now)
    # Report jobs' files past PATCHPILOT_REPORT_KEEP_HOURS (and failed jobs' leftovers).
    remove_expired(engine)
    optimize(engine)  # planner statistics (SQLite) after the day's writes


# ---------------------------------------------------------------------------------------
# Job handlers: the one table
# ---------------------------------------------------------------------------------------

Handler = Callable[[Engine, queue.Job], dict[str, Any]]


def run_match(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """The ``match`` job (queued with every stored inventory): :func:`process_inventory`."""
    return process_inventory(engine, int(job.payload["inventory_id"])).to_dict()


def asset_ranges(conn: Connection, size: int, ids: Sequence[int] | None = None
                 ) -> list[tuple[int, int]]:
    """Consecutive asset id ranges (both ends included) of at most ``size`` assets each:
    of ``ids``, or of every stored asset; none when there is no asset."""
    if ids is None:
        numbered = select(assets.c.id, func.row_number().over(order_by=assets.c.id)
                          .label("n")).subquery()
        lows = list(conn.execute(select(numbered.c.id).where((numbered.c.n - 1) % size == 0)
                                 .order_by(numbered.c.id)).scalars())
        top = conn.execute(select(func.max(assets.c.id))).scalar()
    else:
        ordered = sorted(ids)
        lows, top = ordered[::size], (ordered[-1] if ordered else None)
    return [(lo, lows[n + 1] - 1 if n + 1 < len(lows) else int(top))  # type: ignore[arg-type]
            for n, lo in enumerate(lows)]


def _finishing(engine: Engine, job: queue.Job) -> list[dict[str, Any]] | None:
    """The results of ``job``'s chunks when it runs to finish a division, or None when it
    runs for the first time (it may divide itself then)."""
    with engine.connect() as conn:
        progress = queue.chunk_progress(conn, job.id)
        if progress is None:
            return None
        done, total = progress
        if done < total:  # never leased while waiting: a defect, not a retry
            raise PatchPilotError(f"job {job.id}: {total - done} of its {total} chunks "
                                  "are not done")
        return queue.chunk_results(conn, job.id)


def _summed(results: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    return {key: sum(r.get(key) or 0 for r in results) for key in keys}


_REMATCH_COUNTS = ("assets", "distinct", "matched", "findings", "new", "reopened", "fixed",
                   "seconds")


def run_rematch(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """The ``rematch`` job (``patchpilot db update``, a feed update of a large estate):
    payload ``{"changed_since": ISO time or null}``; the re-prioritisation follows as a
    ``prioritise`` job.

    More than ``PATCHPILOT_CHUNK_ASSETS`` assets to re-match: divided into
    ``rematch_chunk`` jobs by asset id range, and this job's finishing step (run once,
    after the last chunk) does the rest.  In the result of a divided job, ``distinct`` is
    the triples matched (once per worker process), ``matched`` adds up the chunks' vulnerable
    triples (one two chunks share counts twice) and ``seconds`` is the chunks' working
    time.
    """
    since = job.payload.get("changed_since")
    changed_since = datetime.fromisoformat(since) if since else None
    chunks = _finishing(engine, job)
    if chunks is not None:
        _forget_memo(job.id)
        return {**_after_rematch(engine, _summed(chunks, _REMATCH_COUNTS), changed_since),
                "chunks": len(chunks)}
    with engine.begin() as conn:
        only = assets_changed_since(conn, changed_since) if changed_since else None
        ranges = asset_ranges(conn, load_settings().chunk_assets,
                              None if only is None else sorted(only))
        if len(ranges) > 1:
            return {"chunks": queue.split(conn, job, REMATCH_CHUNK, [
                {"lo": lo, "hi": hi, "changed_since": since} for lo, hi in ranges])}
    # As after_feed_update: no summary refresh here, the prioritise job refreshes them.
    done = rematch_all(engine, changed_since=changed_since, summary=False)
    return _after_rematch(engine, done.to_dict(), changed_since)


# The memo of the division this process re-matches chunks of (scans.rematch.RematchMemo):
# the parent job's id and the memo; the next division's first chunk replaces it, so one
# estate's worth of matches at most is kept -- what the undivided re-match held.
_memo: tuple[int, RematchMemo] | None = None
_memo_lock = threading.Lock()


def _memo_of(parent: int) -> RematchMemo:
    global _memo
    with _memo_lock:
        if _memo is None or _memo[0] != parent:
            _memo = (parent, RematchMemo())
        return _memo[1]


def run_rematch_chunk(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """A ``rematch_chunk`` job: re-match the assets of ids ``lo`` to ``hi`` (payload, with
    the parent's ``changed_since``) as the undivided ``rematch`` does, each triple matched
    once per process and division (``_memo_of``)."""
    since = job.payload.get("changed_since")
    within = AssetRange(int(job.payload["lo"]), int(job.payload["hi"]))
    return rematch_all(engine, changed_since=datetime.fromisoformat(since) if since else None,
                       summary=False, within=within,
                       memo=_memo_of(int(job.payload["parent"]))).to_dict()


def _forget_memo(parent: int) -> None:
    """Drop the division's memo once it is finished (in the process that finishes it;
    the others drop theirs at the next division)."""
    global _memo
    with _memo_lock:
        if _memo is not None and _memo[0] == parent:
            _memo = None


def _after_rematch(engine: Engine, result: dict[str, Any],
                   changed_since: datetime | None) -> dict[str, Any]:
    """What follows a re-match (whole or divided): the imported findings' refresh, then the
    ``prioritise`` job; ``result`` with what they did."""
    result = dict(result)
    # As after_feed_update: KEV, EPSS or CVE records changed -> the imported findings too.
    imported = refresh_imported(engine) if changed_since is None else None
    result["imported"] = imported.to_dict() if imported else None
    if result["assets"] or (imported is not None and imported.changed):
        # New findings need their priority, and changed facts (a CVE now known exploited,
        # a new score) re-rank old ones: the next job, one statement over every unfixed
        # finding (then every summary row), so that this one's transactions stay short.
        with engine.begin() as conn:
            result["prioritise_job"] = queue.enqueue(conn, PRIORITISE, {})
    return result


def run_prioritise(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """The ``prioritise`` job: payload ``{"asset_id": n}`` for one asset, or ``{}`` for
    every unfixed finding (``scoring.apply.run_prioritise``).

    Every finding of more than ``PATCHPILOT_CHUNK_ASSETS`` assets: divided into
    ``prioritise_chunk`` jobs by asset id range, all at the time of the division (the same
    ``computed_at`` and event time as one statement would give); the finishing step adds
    up the rows changed.
    """
    if job.payload.get("asset_id"):
        return prioritise_in_one_job(engine, job)
    chunks = _finishing(engine, job)
    if chunks is not None:
        return {"asset_id": None, **_summed(chunks, ("changed",)), "chunks": len(chunks)}
    with engine.begin() as conn:
        ranges = asset_ranges(conn, load_settings().chunk_assets)
        if len(ranges) > 1:
            at = now_utc().isoformat()
            return {"chunks": queue.split(conn, job, PRIORITISE_CHUNK, [
                {"lo": lo, "hi": hi, "now": at} for lo, hi in ranges])}
    return prioritise_in_one_job(engine, job)


def run_prioritise_chunk(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """A ``prioritise_chunk`` job: re-prioritise the unfixed findings of the assets of ids
    ``lo`` to ``hi`` and refresh those assets' summary rows, in one transaction."""
    lo, hi = int(job.payload["lo"]), int(job.payload["hi"])
    with engine.begin() as conn:
        prefer_index_joins(conn)  # a slice of the findings: never hash all priorities
        changed = reprioritise(conn, asset_range=(lo, hi),
                               now=datetime.fromisoformat(job.payload["now"]))
    return {"lo": lo, "hi": hi, "changed": changed}


def run_feed_update(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """The ``feed_update`` job: load the feeds, then :func:`after_feed_update` -- here for
    an estate of at most ``PATCHPILOT_CHUNK_ASSETS`` assets, else as a ``rematch`` job
    (divided among the workers).

    From ``PATCHPILOT_FEEDS_DIR`` when set (offline), else the official sources.  Sources
    that fail are left as they were and named in the result; when every one fails (or
    none is found) the job fails with their errors.
    """
    settings = load_settings()
    if settings.feeds_dirs:
        results = update_from(engine, settings.feeds_dirs)
    else:
        results = update_online(engine, settings.cache_dir)
    failed = [f"{r.source}: {r.error}" for r in results if r.status == "failed"]
    for line in failed:
        log.warning("feed update: %s", line)
    if len(failed) == len(results):
        where = ", ".join(map(str, settings.feeds_dirs)) or "the official sources"
        raise FeedUpdateFailed(f"nothing loaded from {where}: "
                               + ("; ".join(failed[:5]) or "no feed files found"))
    # A large estate's re-match is a job of its own, divided among the workers; a small
    # one is done here (one job, as before).
    with engine.connect() as conn:
        estate = conn.execute(select(func.count()).select_from(assets)).scalar_one()
    follow = after_feed_update(engine, results, inline=estate <= settings.chunk_assets)
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return {"sources": statuses, "written": sum(r.written for r in results),
            "removed": sum(r.removed for r in results), "failed": failed[:20],
            **follow.to_dict()}


def run_expire_decisions(engine: Engine, job: queue.Job | None) -> dict[str, Any]:
    """Reopen findings whose risk acceptance expired (and re-apply every decision)."""
    with engine.begin() as conn:
        return {"changed": reapply_decisions(conn)}


# A noop sleeps at most this long: enough to hold a lease in an operational check.
_NOOP_MAX_SLEEP = 300.0


def run_import(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """The ``import`` job (an uploaded scanner report): ``importers.jobs.run_import_job``."""
    return run_import_job(engine, int(job.payload["import_id"]))


def run_noop(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """Do nothing (after sleeping ``payload["sleep"]`` seconds): checks that workers run.

    A job kind every worker process knows, so an operator -- or a test starting separate
    ``patchpilot worker`` processes -- can check the queue end to end.
    """
    pause = min(max(float(job.payload.get("sleep", 0.0)), 0.0), _NOOP_MAX_SLEEP)
    if pause:
        time.sleep(pause)
    return {"slept": pause, "attempt": job.attempts}


# The job kinds that take long -- minutes, on a large estate or a slow download: loading
# every feed, re-matching the estate.  A worker pool runs them in a lane of their own
# (``worker.start_pool``), so they never hold every worker while uploads wait.
SLOW_KINDS = frozenset({FEED_UPDATE, REMATCH, IMPORT})
# The chunks of divided jobs: a pool gives them lanes of their own, as many as it has
# quick threads (``worker.start_pool``), so N threads run N chunks at once and the quick
# jobs (an upload's match) still find a free worker.
CHUNK_KINDS = frozenset({REMATCH_CHUNK, PRIORITISE_CHUNK})
# The jobs that rewrite the whole estate's findings or priorities (when_idle waits for them).
ESTATE_KINDS = frozenset({FEED_UPDATE, REMATCH, PRIORITISE}) | CHUNK_KINDS
# The report jobs -- seconds to minutes, in a child process under the memory ceiling
# (reports.jobs) -- get a lane of their own too, so a large export never holds a scan or an
# upload's match, and one pool builds one report at a time.
REPORT_KINDS = frozenset({REPORT_JOB, REPORT_FILE})

# Every job kind the server's workers run, and what runs it.  Agents take their own kinds
# (``collect``, ``sweep_refresh``) from the same queue; they are not here.
HANDLERS: dict[str, Handler] = {
    MATCH: run_match,  # after an inventory
    REMATCH: run_rematch,  # after `patchpilot db update`
    PRIORITISE: run_prioritise,  # after a re-match, or a changed priority configuration
    REMATCH_CHUNK: run_rematch_chunk,  # a divided re-match's piece
    PRIORITISE_CHUNK: run_prioritise_chunk,  # a divided re-prioritisation's piece
    FEED_UPDATE: run_feed_update,  # the server's own knowledge-base update
    "ssh_scan": run_ssh_scan,  # a scheduled or emergency scan of an SSH target
    DISCOVER: run_discovery,  # a scheduled nmap discovery of a group's ranges
    REPORT_JOB: run_report,  # a scheduled report, generated and mailed
    REPORT_FILE: run_report_file,  # a report to download, built as a file
    IMPORT: run_import,  # an uploaded scanner report
    "expire_decisions": run_expire_decisions,
    "noop": run_noop,
}
