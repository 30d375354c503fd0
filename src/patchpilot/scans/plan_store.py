"""The stored patch plan: built in the background, read a page at a time.

Grouping a million open findings into plan items takes tens of seconds and gigabytes if
done per request (``GET /api/plan`` answered 126 MB in 20 s on 10,000 assets), so the
plan of the whole estate is built once and kept like the per-asset summary:

* :func:`rebuild` groups the findings a batch of packages at a time (an item never spans
  two packages, so memory is bounded by the largest package, not the estate) with
  :func:`patchpilot.scans.plan.build_items`, and writes one *generation* of rows -- one
  ``plan_items`` row per item, one ``plan_hosts`` row per (item, host) with the host's
  own counts, risk and vulnerabilities -- then flips ``plan_state.generation`` in one
  short transaction.  Readers never see half a plan, and writers of findings are never
  blocked by a long plan transaction.
* The plan is *stale* when ``finding_events`` moved past the id it saw: every write that
  changes a finding or its priority adds an event in its transaction
  (:mod:`patchpilot.findings.events`) -- but for the ``plan_verified`` events a build
  writes itself when it finds a host fixed.  An idle worker rebuilds a stale plan
  (:func:`refresh_if_stale`, at most once per :data:`MIN_INTERVAL`); a reader rebuilds it
  itself while the estate is small (:data:`SYNC_LIMIT` open findings), so a plan read right
  after a scan is exact on a small estate and a page never waits on a large one.
* A page reads 25 items by rank.  Filtered by hosts (a group, a service), the item
  figures are sums over the hosts' rows -- a set-based ``GROUP BY`` over those hosts only.
  Maintenance windows move with time, so the next window of each host is worked out when
  read, from the groups stored with it.

Item keys are stable across rebuilds (a hash of the change), so a page's "more hosts" link
still works after the worker has rebuilt the plan underneath it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from patchpilot.assets.groups import Reach, Scope, narrow, resolve_scope
from patchpilot.clock import aware, iso, now_utc
from patchpilot.db.tables import (
    asset_summary,
    finding_events,
    findings,
    plan_hosts,
    plan_items,
    plan_state,
)
from patchpilot.errors import NotFound
from patchpilot.findings.events import PLAN_VERIFIED, event_row, write_events
from patchpilot.knowledge.cpe_names import label
from patchpilot.scans.plan import (
    DEFAULT_VERIFY_DAYS,
    FIRMWARE,
    KEV_WEIGHT,
    PRIORITY_WEIGHT,
    UNPRIORITISED,
    PlanHost,
    PlanInstallation,
    PlanItem,
    change_summary,
    group_rows,
    group_windows,
    in_ids,
    installed_span,
    manager_of,
    next_windows,
    rows_statement,
    workarounds,
)

# Open findings up to which a reader rebuilds a stale plan before answering (a few hundred
# milliseconds); past it the stored plan is shown, marked stale, until a worker rebuilt it.
SYNC_LIMIT = 50_000
# Findings grouped per batch while building (one batch holds whole packages).
BATCH_ROWS = 100_000
# A worker rebuilds a stale plan at most this often (a busy estate changes every minute).
MIN_INTERVAL = timedelta(seconds=60)
# Hosts shown with each item on a page; the rest on demand.
FIRST_HOSTS = 5
FIX, UNFIXED = "fix", "unfixed"
_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class PlanStatus:
    """Which plan readers see and whether findings changed since it was built."""

    generation: int  # 0: none built yet
    generated_at: datetime | None
    since: datetime | None
    event_id: int
    latest_event: int
    seconds: float | None

    @property
    def stale(self) -> bool:
        """Findings or priorities changed after this plan was built (or none was)."""
        return self.generation == 0 or self.latest_event > self.event_id


@dataclass(frozen=True, slots=True)
class PlanQuery:
    """Which part of the plan: the hosts of ``asset_ids`` (None: every host), items with
    a pending host of ``priority`` or more urgent, known-exploited items only, items that
    need (or do not need) a reboot."""

    asset_ids: tuple[int, ...] | None = None
    priority: int | None = None
    kev: bool = False
    reboot: bool | None = None


@dataclass(slots=True)
class ItemView:
    """One plan item (of the hosts asked for) with its first hosts."""

    key: str
    rank: int
    kind: str
    ecosystem: str
    package: str
    fixed_version: str
    manager: str
    command: str | None
    reboot: bool
    located: bool
    workaround: str | None
    vulns: list[str]
    by_priority: dict[str, int]  # open findings per priority
    known_exploited: int
    risk: int
    pending: int
    verified: int
    hosts_by_priority: dict[str, int]  # pending hosts by their best priority
    hosts_by_window: list[dict[str, Any]] = field(default_factory=list)  # window, hosts
    first_hosts: list[PlanHost] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """'openssl → 3.0.15-1~deb12u1 fixes 6 CVEs on 42 hosts, 3 of them P1'."""
        n = len(self.vulns)
        if self.kind == UNFIXED:
            return (f"{self.package}: {n} {'vulnerability' if n == 1 else 'vulnerabilities'}"
                    f" without a fix on {self.pending} "
                    f"{'host' if self.pending == 1 else 'hosts'}")
        return change_summary(self.package, self.fixed_version, n, self.pending,
                              self.hosts_by_priority.get("P1", 0), self.verified,
                              ecosystem=self.ecosystem, reboot=self.reboot,
                              installed=self.installed)

    @property
    def product(self) -> str:
        """How people name the item's product: "FortiOS" for a device item's
        ``fortinet:fortios``, the package elsewhere."""
        return label(self.package) if self.manager == FIRMWARE else self.package

    @property
    def installed(self) -> str:
        """The firmware a device item upgrades from, as its first hosts run it ('' for
        other items)."""
        if self.manager != FIRMWARE:
            return ""
        return installed_span(self.ecosystem, (h.installed_version for h in self.first_hosts))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        d = asdict(self)
        d["summary"] = self.summary
        return d


@dataclass(slots=True)
class PlanPage:
    """A page of items and where the next one starts (None: the last page)."""

    status: PlanStatus
    total: int
    items: list[ItemView]
    next_cursor: str | None


@dataclass(slots=True)
class HostPage:
    """A page of one item's hosts."""

    item: ItemView
    total: int
    hosts: list[PlanHost]
    next_cursor: str | None


def item_key(kind: str, ecosystem: str, package: str, fixed_version: str) -> str:
    """The stable key of a change: the same upgrade keeps its key across rebuilds."""
    text = "\0".join((kind, ecosystem, package, fixed_version))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# --- state ------------------------------------------------------------------------------------

def _latest_event(conn: Connection) -> int:
    """The newest event that may change the plan: a ``plan_verified`` event is written by
    the build itself and describes the plan, so it does not make the plan stale.  (The
    primary key read backwards, stopping at the first other kind: as cheap as MAX.)"""
    e = finding_events
    return int(conn.execute(select(e.c.id).where(e.c.kind != PLAN_VERIFIED)
                            .order_by(e.c.id.desc()).limit(1)).scalar() or 0)


def status(conn: Connection) -> PlanStatus:
    """The plan readers see and whether it is stale (two primary-key reads)."""
    row = conn.execute(select(plan_state).where(plan_state.c.id == 1)).first()
    latest = _latest_event(conn)
    if row is None:
        return PlanStatus(0, None, None, 0, latest, None)
    return PlanStatus(int(row.generation), aware(row.generated_at), aware(row.since),
                      int(row.event_id), latest, row.seconds)


def _next_generation(engine: Engine) -> tuple[int, int]:
    """A generation number no other builder has, and the events this build will see."""
    with engine.begin() as conn:
        if conn.execute(select(plan_state.c.id).where(plan_state.c.id == 1)).first() is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(plan_state).values(id=1, generation=0,
                                                           next_generation=1, event_id=0))
            except IntegrityError:
                pass  # another builder made the row first
        # The UPDATE takes the row's lock (PostgreSQL) or the write lock (SQLite) before
        # the number is read: two builders never get the same one.
        conn.execute(update(plan_state).where(plan_state.c.id == 1)
                     .values(next_generation=plan_state.c.next_generation + 1))
        generation = int(conn.execute(select(plan_state.c.next_generation)
                                      .where(plan_state.c.id == 1)).scalar_one()) - 1
        return generation, _latest_event(conn)


# --- building ------------------------------------------------------------------------------

def _host_row(generation: int, key: str, h: Any) -> dict[str, Any]:
    return {"generation": generation, "item_key": key, "asset_id": h.asset_id,
            "name": h.name, "status": h.status, "best_priority": h.best_priority,
            "p1": h.by_priority[0], "p2": h.by_priority[1], "p3": h.by_priority[2],
            "p4": h.by_priority[3], "known_exploited": h.known_exploited, "risk": h.risk,
            "vulns": orjson.dumps(list(h.vulns)).decode(),
            "installed_version": h.installed_version,
            "binaries": orjson.dumps(list(h.binaries)).decode(),
            "groups": orjson.dumps(list(h.groups)).decode(),
            "reboot_pending": h.reboot_pending,
            "installations": orjson.dumps([[i.location, i.installed_version, i.command]
                                           for i in h.installations]).decode()}


def _windows(groups: Iterable[tuple[str, ...]]) -> str:
    """Pending hosts per set of groups (JSON): what the next windows are counted from."""
    return orjson.dumps({orjson.dumps(list(g)).decode(): n
                         for g, n in Counter(groups).items()}).decode()


def _item_row(generation: int, key: str, item: PlanItem) -> dict[str, Any]:
    hosts = Counter(h.best_priority for h in item.hosts if h.status == "pending")
    return {"generation": generation, "key": key, "kind": FIX, "ecosystem": item.ecosystem,
            "package": item.package, "fixed_version": item.fixed_version,
            "manager": item.manager, "command": item.command, "reboot": item.reboot,
            "located": item.located, "workaround": None,
            "vulns": orjson.dumps(item.vulns).decode(), "n_vulns": len(item.vulns),
            **{f"p{p}": item.by_priority.get(f"P{p}", 0) for p in (1, 2, 3, 4)},
            "known_exploited": item.known_exploited, "risk": item.risk,
            "pending": len(item.pending), "verified": len(item.verified),
            **{f"hosts_p{p}": hosts.get(p, 0) for p in (1, 2, 3, 4)},
            "windows": _windows(tuple(h.groups) for h in item.pending)}


def _unfixed_rows(generation: int, groups: dict[tuple[str, str], list[Any]],
                  names: dict[int, str], member_of: dict[int, list[str]],
                  workaround: dict[str, str]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Items and host rows of the open findings no published fix removes, per package."""
    items, hosts = [], []
    for (ecosystem, package), rows in groups.items():
        key = item_key(UNFIXED, ecosystem, package, "")
        per_host: dict[int, list[Any]] = {}
        for r in rows:
            per_host.setdefault(r.asset_id, []).append(r)
        counts = [0, 0, 0, 0]
        best_hosts = [0, 0, 0, 0]
        kev = risk = 0
        for asset_id, rs in per_host.items():
            host_counts = [0, 0, 0, 0]
            for r in rs:
                host_counts[(r.priority or UNPRIORITISED) - 1] += 1
            host_kev = sum(1 for r in rs if r.known_exploited)
            host_risk = sum(PRIORITY_WEIGHT[p] * n for p, n in enumerate(host_counts, 1)
                            ) + KEV_WEIGHT * host_kev
            best = next(p for p, n in enumerate(host_counts, 1) if n)
            best_hosts[best - 1] += 1
            counts = [a + b for a, b in zip(counts, host_counts, strict=True)]
            kev += host_kev
            risk += host_risk
            hosts.append({
                "generation": generation, "item_key": key, "asset_id": asset_id,
                "name": names.get(asset_id, str(asset_id)), "status": "pending",
                "best_priority": best, **{f"p{p}": host_counts[p - 1] for p in (1, 2, 3, 4)},
                "known_exploited": host_kev, "risk": host_risk,
                "vulns": orjson.dumps(sorted({r.vuln_id for r in rs})).decode(),
                "installed_version": min(r.installed_version or "" for r in rs) or None,
                "binaries": "[]", "groups": orjson.dumps(member_of.get(asset_id, [])).decode(),
                "reboot_pending": None, "installations": "[]"})
        vulns = sorted({r.vuln_id for r in rows})
        notes = sorted({f"{v}: {workaround[v]}" for v in vulns if v in workaround})
        items.append({
            "generation": generation, "key": key, "kind": UNFIXED, "ecosystem": ecosystem,
            "package": package, "fixed_version": "", "manager": manager_of(ecosystem),
            "command": None, "reboot": False, "located": False,
            "workaround": "\n".join(notes) or None, "vulns": orjson.dumps(vulns).decode(),
            "n_vulns": len(vulns), **{f"p{p}": counts[p - 1] for p in (1, 2, 3, 4)},
            "known_exploited": kev, "risk": risk, "pending": len(per_host), "verified": 0,
            **{f"hosts_p{p}": best_hosts[p - 1] for p in (1, 2, 3, 4)},
            "windows": _windows(tuple(member_of.get(a, [])) for a in per_host)})
    return items, hosts


def _insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Bulk insert straight through the driver's ``executemany``: hundreds of thousands
    of host rows, whose per-row parameter processing in SQLAlchemy cost more than the
    database's own work."""
    if not rows:
        return
    columns = list(rows[0])
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
           f"VALUES ({', '.join([mark] * len(columns))})")
    for start in range(0, len(rows), _CHUNK):
        conn.exec_driver_sql(sql, [tuple(r[c] for c in columns)
                                   for r in rows[start:start + _CHUNK]])


def _record_verified(conn: Connection, before: int, after: int, now: datetime) -> int:
    """Write ``plan_verified`` for every (item, host) pending in generation ``before`` and
    verified in ``after``; how many.  One read and one insert, in the transaction that
    makes ``after`` the plan readers see, so an event is written exactly when its plan is.

    A host must have been pending in the previous plan: the first plan ever built has no
    "before" (its verified hosts are history, not news), and a host whose finding was both
    found and fixed between two builds was never in a plan to be patched.  These events do
    not make the plan stale (:func:`_latest_event`).
    """
    if not before:
        return 0
    new, old, item = plan_hosts.alias("new_host"), plan_hosts.alias("old_host"), plan_items
    found = conn.execute(
        select(new.c.item_key, new.c.asset_id, new.c.vulns, item.c.package,
               item.c.fixed_version)
        .select_from(new.join(old, and_(old.c.generation == before,
                                        old.c.item_key == new.c.item_key,
                                        old.c.asset_id == new.c.asset_id))
                     .join(item, and_(item.c.generation == after,
                                      item.c.key == new.c.item_key)))
        .where(new.c.generation == after, new.c.status == "verified",
               old.c.status == "pending")
        .order_by(new.c.item_key, new.c.asset_id)).all()
    write_events(conn, [event_row(PLAN_VERIFIED, now, asset_id=r.asset_id, detail={
        "item": r.item_key, "title": f"{r.package} → {r.fixed_version}",
        "vulns": _loads(r.vulns)}) for r in found])
    return len(found)


def rebuild(engine: Engine, *, now: datetime | None = None) -> PlanStatus:
    """Build the plan of the whole estate as a new generation and make it the one readers
    see (unless a newer one got there first).  Findings fixed in the last
    :data:`~patchpilot.scans.plan.DEFAULT_VERIFY_DAYS` days stay in their items so that
    their hosts show as verified; a host pending in the plan this one replaces and
    verified in it is a ``plan_verified`` event (:func:`_record_verified`)."""
    started = time.monotonic()
    now = now or now_utc()
    since = now - timedelta(days=DEFAULT_VERIFY_DAYS)
    generation, event_id = _next_generation(engine)
    f = findings
    wanted = or_(f.c.state == "open", and_(f.c.state == "fixed", f.c.fixed_at >= since))
    with engine.connect() as conn:
        member_of, next_window, _ = group_windows(conn, None, now)
    fix_items: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    unfixed_items: list[dict[str, Any]] = []

    def flush(batch: list[Any]) -> None:
        with engine.connect() as conn:
            items, unfixed_groups, names = group_rows(conn, batch, member_of, next_window)
            workaround = workarounds(conn, unfixed_groups)
        host_rows: list[dict[str, Any]] = []
        for item in items:
            key = item_key(FIX, item.ecosystem, item.package, item.fixed_version)
            order = (-item.risk, -item.by_priority.get("P1", 0), -len(item.vulns),
                     item.package, item.ecosystem, item.fixed_version)
            fix_items.append((order, _item_row(generation, key, item)))
            host_rows.extend(_host_row(generation, key, h) for h in item.hosts)
        u_items, u_hosts = _unfixed_rows(generation, unfixed_groups, names, member_of,
                                         workaround)
        unfixed_items.extend(u_items)
        host_rows.extend(u_hosts)
        with engine.begin() as conn:
            _insert(conn, plan_hosts, host_rows)

    # One pass over the findings in package order (one sort, read as it streams), cut into
    # batches of whole packages: an item never spans two packages, so memory is bounded by
    # a batch, and no batch re-reads the table.
    stmt = rows_statement(wanted).order_by(f.c.ecosystem, f.c.package)
    with engine.connect() as reader:
        batch: list[Any] = []
        last = None
        for finding in reader.execution_options(stream_results=True, yield_per=10_000
                                                ).execute(stmt):
            package = (finding.ecosystem, finding.package)
            if len(batch) >= BATCH_ROWS and package != last:
                flush(batch)
                batch = []
            batch.append(finding)
            last = package
        if batch:
            flush(batch)
    fix_items.sort(key=lambda x: x[0])
    unfixed_items.sort(key=lambda u: (min((p for p in (1, 2, 3, 4) if u[f"hosts_p{p}"]),
                                          default=9), -u["pending"], u["package"],
                                      u["ecosystem"]))
    ranked = [row for _, row in fix_items] + unfixed_items
    for rank, row in enumerate(ranked, 1):
        row["rank"] = rank
    seconds = round(time.monotonic() - started, 3)
    with engine.begin() as conn:
        _insert(conn, plan_items, ranked)
        current = conn.execute(select(plan_state.c.generation).where(plan_state.c.id == 1)
                               .with_for_update()).scalar_one()
        if generation > current:
            conn.execute(update(plan_state).where(plan_state.c.id == 1).values(
                generation=generation, event_id=event_id, generated_at=now, since=since,
                seconds=seconds))
            # Before the older generations go: they are what "newly" is measured from.
            _record_verified(conn, current, generation, now)
            keep = generation
        else:  # a newer plan was flipped while this one was built: drop this one
            keep = current
        # Older generations go (a build still running on a higher number keeps its rows).
        for table in (plan_hosts, plan_items):
            conn.execute(delete(table).where(table.c.generation < keep))
        if keep != generation:
            for table in (plan_hosts, plan_items):
                conn.execute(delete(table).where(table.c.generation == generation))
    with engine.connect() as conn:
        # Statistics for the planner, whose choice between the item index and the
        # asset index decides whether a group's page reads 40,000 rows or 600,000; on
        # PostgreSQL a VACUUM too, whose visibility map lets that read use the covering
        # index alone (autovacuum would, minutes later).
        if conn.dialect.name == "postgresql":
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            auto.exec_driver_sql("VACUUM ANALYZE plan_hosts")
            auto.exec_driver_sql("VACUUM ANALYZE plan_items")
        else:
            conn.exec_driver_sql("ANALYZE plan_hosts")
            conn.exec_driver_sql("ANALYZE plan_items")
            conn.commit()
    if engine.dialect.name == "sqlite":
        # A SQLite connection plans with the statistics it read when it opened: the pool's
        # idle ones are replaced, so the pages' next queries see these (a connection opened
        # before the first ANALYZE planned a group's sums over the whole generation).
        engine.dispose()
    with engine.connect() as conn:
        return status(conn)


def open_findings(conn: Connection) -> int:
    """Open findings of the estate, from the per-asset summary (one small sum)."""
    return int(conn.execute(select(func.coalesce(func.sum(asset_summary.c.open_total), 0))
                            ).scalar_one())


def ensure_current(engine: Engine) -> PlanStatus:
    """The plan's status, after rebuilding it here when it is stale and the estate small
    enough (:data:`SYNC_LIMIT`) to rebuild within a request; a large estate's stale plan is
    left to the workers (:func:`refresh_if_stale`) and shown as it is."""
    with engine.connect() as conn:
        state = status(conn)
        if not state.stale:
            return state
        small = open_findings(conn) <= SYNC_LIMIT
    return rebuild(engine) if small else state


def refresh_if_stale(engine: Engine, *, now: datetime | None = None) -> PlanStatus | None:
    """What an idle worker does: rebuild a stale plan, unless the last one is younger than
    :data:`MIN_INTERVAL` (then the next idle round will).  The new plan's status, or None
    when nothing was done."""
    now = now or now_utc()
    with engine.connect() as conn:
        state = status(conn)
    if not state.stale:
        return None
    if state.generated_at is not None and now - state.generated_at < MIN_INTERVAL:
        return None
    # One builder at a time: the worker threads of this process, and (PostgreSQL) the
    # workers of every process, through a session advisory lock held while building.
    if not _BUILDING.acquire(blocking=False):
        return None
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql" and not conn.execute(
                    text(f"SELECT pg_try_advisory_lock({_LOCK})")).scalar():
                return None
            try:
                return rebuild(engine, now=now)
            finally:
                if conn.dialect.name == "postgresql":
                    conn.execute(text(f"SELECT pg_advisory_unlock({_LOCK})"))
    finally:
        _BUILDING.release()


_BUILDING = threading.Lock()
# PostgreSQL advisory lock key: "patchpilot plan" in this installation's schema.  An
# advisory lock is database-wide, so the key includes the schema: two installations (or
# two test schemas) in one database never hold back each other's plan builders.
_LOCK = "hashtextextended('patchpilot plan:' || current_schema(), 0)"


# --- reading -------------------------------------------------------------------------------

def group_next_windows(conn: Connection, now: datetime | None = None
                       ) -> dict[str, datetime | None]:
    """Each group's next maintenance window start (None: it may be patched any time)."""
    return next_windows(conn, now or now_utc())


def _window(groups: Iterable[str], windows: dict[str, datetime | None]) -> str | None:
    starts = [s for g in groups if (s := windows.get(g)) is not None]
    return iso(min(starts)) if starts else None


def _loads(text: str | None) -> Any:
    return orjson.loads(text) if text else []


def _host_view(r: Any, windows: dict[str, datetime | None]) -> PlanHost:
    groups = tuple(_loads(r.groups))
    return PlanHost(
        asset_id=r.asset_id, name=r.name, status=r.status,
        installed_version=r.installed_version, binaries=tuple(_loads(r.binaries)),
        best_priority=r.best_priority, groups=groups,
        next_window=_window(groups, windows) if r.status == "pending" else None,
        reboot_pending=r.reboot_pending,
        installations=tuple(PlanInstallation(loc, version, command)
                            for loc, version, command in _loads(r.installations)),
        vulns=tuple(_loads(r.vulns)), by_priority=(r.p1, r.p2, r.p3, r.p4),
        known_exploited=r.known_exploited, risk=r.risk)


_SUMS = ("p1", "p2", "p3", "p4", "known_exploited", "risk")


def _item_view(r: Any, figures: dict[str, int] | None = None) -> ItemView:
    g = figures or {c: getattr(r, c) for c in (*_SUMS, "pending", "verified", "hosts_p1",
                                                 "hosts_p2", "hosts_p3", "hosts_p4")}
    return ItemView(
        key=r.key, rank=r.rank, kind=r.kind, ecosystem=r.ecosystem, package=r.package,
        fixed_version=r.fixed_version, manager=r.manager, command=r.command,
        reboot=bool(r.reboot), located=bool(r.located), workaround=r.workaround,
        vulns=_loads(r.vulns),
        by_priority={f"P{p}": g[f"p{p}"] for p in (1, 2, 3, 4) if g[f"p{p}"]},
        known_exploited=g["known_exploited"], risk=g["risk"], pending=g["pending"],
        verified=g["verified"],
        hosts_by_priority={f"P{p}": g[f"hosts_p{p}"] for p in (1, 2, 3, 4)
                           if g[f"hosts_p{p}"]})


def _keep(v: ItemView, q: PlanQuery) -> bool:
    if q.kev and not v.known_exploited:
        return False
    if q.reboot is not None and v.reboot != q.reboot:
        return False
    if q.priority is not None and not any(v.hosts_by_priority.get(f"P{p}")
                                          for p in range(1, q.priority + 1)):
        return False
    return v.pending + v.verified > 0


def _ordered(conn: Connection, generation: int, kind: str, q: PlanQuery) -> list[ItemView]:
    """Every item of ``kind`` for ``q``, ordered, without hosts."""
    return _ordered_kinds(conn, generation, q, (kind,))[kind]


def _ordered_kinds(conn: Connection, generation: int, q: PlanQuery, kinds: tuple[str, ...]
                   ) -> dict[str, list[ItemView]]:
    """Every item of each of ``kinds`` for ``q``, ordered, without hosts: the estate's
    from the item rows; a host subset's summed over those hosts' rows (one GROUP BY for
    every kind asked)."""
    pi, ph = plan_items, plan_hosts
    out: dict[str, list[ItemView]] = {kind: [] for kind in kinds}
    if q.asset_ids is None:
        for r in conn.execute(select(pi).where(pi.c.generation == generation,
                                               pi.c.kind.in_(kinds)).order_by(pi.c.rank)):
            view = _item_view(r)
            if _keep(view, q):
                out[view.kind].append(view)
        return out
    pending = ph.c.status == "pending"

    def count(cond: Any) -> Any:
        return func.sum(case((cond, 1), else_=0))

    sums = (select(ph.c.item_key, *(func.sum(ph.c[c]).label(c) for c in _SUMS),
                   count(pending).label("pending"),
                   count(ph.c.status == "verified").label("verified"),
                   *(count(and_(pending, ph.c.best_priority == p)).label(f"hosts_p{p}")
                     for p in (1, 2, 3, 4)))
            .where(ph.c.generation == generation, in_ids(ph.c.asset_id, q.asset_ids))
            .group_by(ph.c.item_key).subquery())
    columns = [c.name for c in sums.c if c.name != "item_key"]
    rows = conn.execute(select(pi, *(sums.c[c].label(f"s_{c}") for c in columns))
                        .join(sums, and_(sums.c.item_key == pi.c.key))
                        .where(pi.c.generation == generation, pi.c.kind.in_(kinds)))
    for r in rows:
        view = _item_view(r, {c: int(getattr(r, f"s_{c}") or 0) for c in columns})
        if _keep(view, q):
            out[view.kind].append(view)
    if FIX in out:
        out[FIX].sort(key=lambda v: (-v.risk, -v.by_priority.get("P1", 0), -len(v.vulns),
                                     v.package, v.ecosystem, v.fixed_version))
    if UNFIXED in out:
        out[UNFIXED].sort(key=lambda v: (
            min((int(k[1]) for k in v.hosts_by_priority), default=9), -v.pending, v.package,
            v.ecosystem))
    return out


def _host_filter(generation: int, keys: list[str], q: PlanQuery) -> Any:
    cond = and_(plan_hosts.c.generation == generation, plan_hosts.c.item_key.in_(keys))
    if q.asset_ids is not None:
        cond = and_(cond, in_ids(plan_hosts.c.asset_id, q.asset_ids))
    return cond


_HOST_ORDER = (plan_hosts.c.status, plan_hosts.c.best_priority, plan_hosts.c.name,
               plan_hosts.c.asset_id)


def _fill(conn: Connection, generation: int, views: list[ItemView], q: PlanQuery,
          windows: dict[str, datetime | None], first: int) -> None:
    """Each item's hosts by window, its first hosts and (for a host subset) the
    vulnerabilities of those hosts only -- three queries for the whole page."""
    if not views:
        return
    ph = plan_hosts
    keys = [v.key for v in views]
    by_key = {v.key: v for v in views}
    cond = _host_filter(generation, keys, q)
    per_window: dict[str, Counter[str | None]] = {k: Counter() for k in keys}
    firsts: list[Any] = []
    if q.asset_ids is None:
        # The estate's counts per set of groups were counted when the plan was built;
        # each item's first hosts are one short index range (generation, item_key,
        # status, priority, name), all in one statement.
        counted = conn.execute(select(plan_items.c.key, plan_items.c.windows).where(
            plan_items.c.generation == generation, plan_items.c.key.in_(keys)))
        per_groups = [(key, groups, n) for key, text in counted
                      for groups, n in orjson.loads(text).items()]
        if first:
            ranges = [select(ph).where(_host_filter(generation, [key], q))
                      .order_by(*_HOST_ORDER).limit(first).subquery() for key in keys]
            firsts = list(conn.execute(union_all(*(select(sub) for sub in ranges))))
    else:
        # A host subset: its rows of the page's items, narrow, in one read; the counts per
        # set of groups and the first hosts are worked out from them, then those hosts'
        # whole rows read (a planner given 25 ranges and an IN list of hundreds of hosts
        # chose badly for some of them).
        narrow = conn.execute(select(ph.c.item_key, ph.c.status, ph.c.best_priority,
                                     ph.c.name, ph.c.asset_id, ph.c.groups).where(cond))
        counts: Counter[tuple[str, str]] = Counter()
        candidates: dict[str, list[tuple[Any, ...]]] = {k: [] for k in keys}
        for r in narrow:
            if r.status == "pending":
                counts[(r.item_key, r.groups)] += 1
            candidates[r.item_key].append((r.status, r.best_priority or 9, r.name,
                                           r.asset_id))
        per_groups = [(key, groups, n) for (key, groups), n in counts.items()]
        chosen = [(key, c[3]) for key, found in candidates.items()
                  for c in sorted(found)[:first]]
        if chosen:
            # By the items and the hosts chosen (two plain IN lists: a row-value IN made
            # SQLite scan the generation), then the exact pairs.
            pairs = set(chosen)
            firsts = [r for r in conn.execute(select(ph).where(
                ph.c.generation == generation, ph.c.item_key.in_({k for k, _ in pairs}),
                ph.c.asset_id.in_({a for _, a in pairs})))
                if (r.item_key, r.asset_id) in pairs]
    for key, groups, n in per_groups:
        per_window[key][_window(_loads(groups), windows)] += int(n)
    for key, window_counts in per_window.items():
        # The soonest window first; hosts that may be patched any time last.
        by_key[key].hosts_by_window = [
            {"window": w, "hosts": n} for w, n in
            sorted(window_counts.items(), key=lambda wn: (wn[0] is None, wn[0] or ""))]
    for r in sorted(firsts, key=lambda r: (r.item_key, r.status, r.best_priority or 9,
                                           r.name, r.asset_id)):
        by_key[r.item_key].first_hosts.append(_host_view(r, windows))
    if q.asset_ids is not None:
        _narrow_vulns(conn, views, cond)


def _narrow_vulns(conn: Connection, views: list[ItemView], cond: Any) -> None:
    """Each item's vulnerabilities (and their workarounds) as those of the host subset's
    rows (``cond``) only: a group's -- or a user's part of the estate (issue 18) -- never
    shows what only other hosts have."""
    ph = plan_hosts
    # Hosts of one item mostly share their list: each distinct list is decoded once.
    vulns: dict[str, set[str]] = {v.key: set() for v in views}
    for key, listed in conn.execute(select(ph.c.item_key, ph.c.vulns).where(cond)
                                    .distinct()):
        vulns[key].update(_loads(listed))
    for view in views:
        found = vulns[view.key]
        view.workaround = _workarounds_of(view.workaround, view.vulns, found)
        view.vulns = sorted(found)


def _workarounds_of(text: str | None, every: list[str], kept: set[str]) -> str | None:
    """The lines of an unfixed item's workarounds (``"<vuln>: <text>"`` each, a text
    perhaps of several lines) about the vulnerabilities ``kept``; None when none is left."""
    if not text:
        return text
    heads = tuple(f"{v}: " for v in every)
    blocks: list[tuple[str, list[str]]] = []
    for line in text.split("\n"):
        head = next((h for h in heads if line.startswith(h)), None)
        if head is not None or not blocks:
            blocks.append((head[:-2] if head else "", [line]))
        else:
            blocks[-1][1].append(line)
    return "\n".join(line for vuln, lines in blocks if vuln in kept for line in lines) or None


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    if not cursor.isdigit():
        raise ValueError(f"cursor: {cursor!r} is not a cursor this API gave")
    return int(cursor)


def read_page(conn: Connection, state: PlanStatus, q: PlanQuery | None = None, *,
              kind: str = FIX, limit: int = 25, cursor: str | None = None,
              first_hosts: int = FIRST_HOSTS, now: datetime | None = None) -> PlanPage:
    """A page of the plan's items (``kind``: fix or unfixed) for ``q``, each with its
    figures, hosts by window and first hosts."""
    return read_pages(conn, state, q, {kind: (cursor, limit, first_hosts)}, now=now)[kind]


def read_pages(conn: Connection, state: PlanStatus, q: PlanQuery | None,
               wanted: dict[str, tuple[str | None, int, int]], *,
               now: datetime | None = None) -> dict[str, PlanPage]:
    """A page of each kind in ``wanted`` (kind → cursor, limit, first hosts) for ``q``:
    the plan page's changes and what no fix removes, from one aggregation."""
    q = q or PlanQuery()
    ordered = (_ordered_kinds(conn, state.generation, q, tuple(wanted)) if state.generation
               else {kind: [] for kind in wanted})
    windows = group_next_windows(conn, now)
    pages: dict[str, PlanPage] = {}
    for kind, (cursor, limit, first) in wanted.items():
        views = ordered[kind]
        start = _offset(cursor)
        page = views[start:start + limit]
        _fill(conn, state.generation, page, q, windows, first)
        after = start + len(page)
        pages[kind] = PlanPage(status=state, total=len(views), items=page,
                               next_cursor=str(after) if after < len(views) else None)
    return pages


def read_item(conn: Connection, state: PlanStatus, key: str, q: PlanQuery | None = None
              ) -> ItemView:
    """One item (for ``q``'s hosts), or NotFound."""
    q = q or PlanQuery()
    row = conn.execute(select(plan_items).where(plan_items.c.generation == state.generation,
                                                plan_items.c.key == key)).first()
    if row is None:
        raise NotFound(f"no plan item {key!r} (the plan was rebuilt: reload the page)")
    if q.asset_ids is None:
        return _item_view(row)
    view = next((v for v in _ordered(conn, state.generation, row.kind,
                                     PlanQuery(asset_ids=q.asset_ids)) if v.key == key),
                None)
    if view is None:
        view = _item_view(row, dict.fromkeys((*_SUMS, "pending", "verified", "hosts_p1",
                                              "hosts_p2", "hosts_p3", "hosts_p4"), 0))
    _narrow_vulns(conn, [view], _host_filter(state.generation, [key], q))
    return view


def read_hosts(conn: Connection, state: PlanStatus, key: str, q: PlanQuery | None = None,
               *, limit: int = 100, cursor: str | None = None,
               now: datetime | None = None) -> HostPage:
    """A page of one item's hosts (pending first, by priority and name)."""
    q = q or PlanQuery()
    item = read_item(conn, state, key, q)
    start = _offset(cursor)
    cond = _host_filter(state.generation, [key], q)
    total = int(conn.execute(select(func.count()).select_from(plan_hosts).where(cond))
                .scalar_one())
    windows = group_next_windows(conn, now)
    hosts = [_host_view(r, windows) for r in conn.execute(
        select(plan_hosts).where(cond).order_by(*_HOST_ORDER).offset(start).limit(limit))]
    after = start + len(hosts)
    return HostPage(item=item, total=total, hosts=hosts,
                    next_cursor=str(after) if after < total else None)


def iter_items(conn: Connection, state: PlanStatus, q: PlanQuery | None = None, *,
               manager: str | None = None, now: datetime | None = None
               ) -> Iterator[PlanItem]:
    """Every fix item in order with all its hosts (of ``q``; of ``manager``'s items only,
    such as ``windows-update``), read item by item: an export of the whole estate holds
    one item's hosts at a time.  Hosts' next windows are those after ``now``."""
    q = q or PlanQuery()
    if not state.generation:
        return
    windows = group_next_windows(conn, now)
    for view in _ordered(conn, state.generation, FIX, q):
        if manager is not None and view.manager != manager:
            continue
        cond = _host_filter(state.generation, [view.key], q)
        hosts = [_host_view(r, windows) for r in conn.execute(
            select(plan_hosts).where(cond).order_by(*_HOST_ORDER))]
        yield PlanItem(ecosystem=view.ecosystem, package=view.package,
                       fixed_version=view.fixed_version, manager=view.manager,
                       command=view.command, reboot=view.reboot,
                       vulns=sorted({v for h in hosts for v in h.vulns}),
                       by_priority=view.by_priority, known_exploited=view.known_exploited,
                       risk=view.risk, hosts=hosts, located=view.located)


def query_for(conn: Connection, *, group: str | None = None, service: str | None = None,
              priority: int | None = None, kev: bool = False,
              reboot: bool | None = None, reach: Reach = None) -> PlanQuery:
    """The query of a request's filters: a group's or a service's hosts (ScopeError /
    UnknownScope naming the field otherwise), a priority, known exploited, reboot --
    of the hosts in the caller's ``reach`` only (None: the whole estate), whose rows then
    make every figure, as a group's do."""
    ids = narrow(resolve_scope(conn, Scope(group=group or None, service=service or None)),
                 reach)
    return PlanQuery(asset_ids=None if ids is None else tuple(ids), priority=priority,
                     kev=kev, reboot=reboot)


def csv_rows(conn: Connection, state: PlanStatus, q: PlanQuery | None = None
             ) -> Iterator[tuple[Any, ...]]:
    """The plan's CSV rows (:data:`~patchpilot.scans.plan.PLAN_COLUMNS`), one per item,
    host and installation, straight from the stored rows: an item's hosts are read as
    they stream, each host's lists decoded once and windows worked out once per set of
    groups (the export of a million-finding estate in seconds, at flat memory)."""
    q = q or PlanQuery()
    if not state.generation:
        return
    ph = plan_hosts
    windows = group_next_windows(conn)
    window_of: dict[str, str] = {}
    # Hosts of an item mostly share their binaries, groups and installed copies: each
    # distinct JSON text is decoded once (the caches are dropped when they grow large).
    joined: dict[str, str] = {}
    copies: dict[str, Any] = {}

    def join(text: str) -> str:
        found = joined.get(text)
        if found is None:
            if len(joined) > 100_000:
                joined.clear()
            found = joined[text] = " ".join(_loads(text))
        return found

    for rank, item in enumerate(_ordered(conn, state.generation, FIX, q), 1):
        cond = _host_filter(state.generation, [item.key], q)
        n_vulns = len(item.vulns)
        if q.asset_ids is not None:  # the hosts asked for: their vulnerabilities only
            found: set[str] = set()
            for text, in conn.execute(select(ph.c.vulns).where(cond).distinct()):
                found.update(_loads(text))
            n_vulns = len(found)
        head = (rank, item.ecosystem, item.package, item.fixed_version, n_vulns, item.risk)
        reboot = "yes" if item.reboot else "no"
        for r in conn.execute(select(ph.c.name, ph.c.status, ph.c.best_priority,
                                     ph.c.installed_version, ph.c.binaries, ph.c.groups,
                                     ph.c.reboot_pending, ph.c.installations)
                              .where(cond).order_by(*_HOST_ORDER)):
            if r.status == "pending":
                when = window_of.get(r.groups)
                if when is None:
                    when = window_of[r.groups] = (_window(_loads(r.groups), windows)
                                                  or "any time")
            else:
                when = "any time"
            host = (r.name, r.status, f"P{r.best_priority}" if r.best_priority else "")
            tail = (join(r.binaries), item.manager)
            pending = "" if r.reboot_pending is None else (
                "yes" if r.reboot_pending else "no")
            after = (reboot, pending, join(r.groups), when)
            installed = copies.get(r.installations)
            if installed is None:
                if len(copies) > 100_000:
                    copies.clear()
                installed = copies[r.installations] = _loads(r.installations) or [
                    (None, "", None)]
            for location, version, command in installed:
                yield (*head, *host, version or r.installed_version or "", location or "",
                       *tail, command or item.command or "", *after)
