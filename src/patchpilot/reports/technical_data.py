"""The technical report's content, organised as a patch team works: by patch.

One *section* per item of the patch plan (:func:`patchpilot.scans.plan.build_plan` over
the scope's hosts): the change (package → fixed version, the command, a reboot), the
hosts it touches with their next maintenance windows (counted per window and per
priority, then named, at most :data:`HOSTS_SHOWN` of them), and the vulnerabilities it
fixes -- each with its priority and the eight report fields *once*, however many hosts
carry it.  Then one section per package of the plan's ``unfixed`` list: what no
published fix removes yet, with the workarounds.

A size guard keeps the PDF readable and its cost bounded: at most ``limit``
vulnerability blocks (the setting ``PATCHPILOT_REPORT_MAX_FINDINGS``) are detailed; past
it the report stops adding sections and says how many blocks, changes and packages are
left out, and that the CSV/XLSX export of the same scope lists every open finding.  A
43,000-finding group used to print 43,000 blocks (one per finding and host); WeasyPrint
lays out some 50-90 blocks a second, so the limit is what bounds the time and memory of
one report, whatever the size of the scope.

Only set-based queries and plain tuples: the per-vulnerability figures (hosts per
priority, the most urgent finding's reason, KEV, CVSS) are summed while the scope's open
findings stream by, and the finding JSON with the eight fields is read for the shown
blocks only -- one representative finding each.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from patchpilot.assets.groups import Reach, Scope, narrow, resolve_scope
from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import finding_priority, findings
from patchpilot.findings.coverage import estate_coverage
from patchpilot.findings.phrases import exploit_summary
from patchpilot.knowledge.coverage import EcosystemCoverage
from patchpilot.knowledge.matcher import gc_paused
from patchpilot.reports.overview import in_scope
from patchpilot.scans.plan import PatchPlan, PlanItem, UnfixedItem, build_plan

# Host names listed per section; the others are counted ("and 12 more") and are in the
# CSV/XLSX export.  Enough for a maintenance ticket, short enough for one page.
HOSTS_SHOWN = 30
# Findings of one vulnerability with no priority yet sort as P3 (as in the plan).
UNPRIORITISED = 3
_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class VulnBlock:
    """One vulnerability of a section: its priority over the section's hosts and the
    eight report fields (from one representative finding)."""

    vuln_id: str
    priority: int | None  # the most urgent of its findings in the section
    by_priority: dict[str, int]  # "P1".."P4" / "unprioritised" → hosts
    hosts: int
    reason: str  # the most urgent finding's priority reason (stored form)
    due_date: datetime | None
    known_exploited: bool
    name: str
    summary: str
    affected_range: str
    cve: str | None
    cvss_score: float | None
    cvss_vector: str | None
    severity: str
    exploit: str
    fixed_version: str | None
    workaround: str


@dataclass(frozen=True, slots=True)
class HostSummary:
    """The hosts of a section: counted per next window and per priority, the first
    :data:`HOSTS_SHOWN` named (most urgent first), the rest counted."""

    total: int
    windows: tuple[tuple[datetime | None, int], ...]  # (start or None: any time, hosts)
    by_priority: tuple[tuple[str, int], ...]  # ("P1", hosts) in order
    names: tuple[str, ...]
    more: int


@dataclass(frozen=True, slots=True)
class PatchSection:
    """One plan item: the change, its hosts and the vulnerabilities it fixes."""

    rank: int
    ecosystem: str
    package: str
    fixed_version: str
    command: str | None
    # Installations in named folders or projects: each copy is upgraded by its own
    # command (the first few distinct ones, of the hosts named).
    commands: tuple[str, ...]
    reboot: bool
    known_exploited: int
    findings: int
    hosts: HostSummary
    vulns: tuple[VulnBlock, ...]
    vulns_total: int

    @property
    def vulns_more(self) -> int:
        """Vulnerabilities of this change left out by the size guard."""
        return self.vulns_total - len(self.vulns)


@dataclass(frozen=True, slots=True)
class UnfixedSection:
    """One package with open findings that no published fix removes yet."""

    ecosystem: str
    package: str
    priority: int | None
    hosts: HostSummary
    vulns: tuple[VulnBlock, ...]
    vulns_total: int

    @property
    def vulns_more(self) -> int:
        """Vulnerabilities of this package left out by the size guard."""
        return self.vulns_total - len(self.vulns)


@dataclass(slots=True)
class TechnicalReport:
    """Everything the technical report shows."""

    scope: Scope
    generated_at: datetime
    open_total: int  # open findings of the scope
    limit: int  # the size guard: most vulnerability blocks detailed
    sections: list[PatchSection] = field(default_factory=list)
    unfixed: list[UnfixedSection] = field(default_factory=list)
    sections_total: int = 0
    unfixed_total: int = 0
    blocks_total: int = 0  # vulnerability blocks the whole report would hold
    coverage: list[EcosystemCoverage] = field(default_factory=list)
    limited: bool = False  # narrowed to the reader's part of the estate

    @property
    def blocks_shown(self) -> int:
        """Vulnerability blocks detailed."""
        return (sum(len(s.vulns) for s in self.sections)
                + sum(len(u.vulns) for u in self.unfixed))

    @property
    def blocks_more(self) -> int:
        """Vulnerability blocks the size guard left out."""
        return self.blocks_total - self.blocks_shown

    @property
    def sections_more(self) -> int:
        """Changes (plan items) not shown at all."""
        return self.sections_total - len(self.sections)

    @property
    def unfixed_more(self) -> int:
        """Packages without a fix not shown at all."""
        return self.unfixed_total - len(self.unfixed)


# --- per-vulnerability figures, summed while the findings stream by -----------------------

class _Tally:
    """The figures of one vulnerability in one section."""

    __slots__ = ("best", "counts", "finding_id", "hosts", "kev", "reason", "due", "cvss")

    def __init__(self) -> None:
        self.best: tuple[int, float, int] | None = None  # (priority, -cvss, finding id)
        self.counts: Counter[str] = Counter()
        self.finding_id = 0
        self.hosts = 0
        self.kev = False
        self.reason = ""
        self.due: Any = None
        self.cvss: float | None = None

    def add(self, fid: int, priority: int | None, reason: str | None, due: Any,
            kev: bool, cvss: float | None) -> None:
        self.hosts += 1
        self.counts[f"P{priority}" if priority else "unprioritised"] += 1
        self.kev = self.kev or kev
        if cvss is not None and (self.cvss is None or cvss > self.cvss):
            self.cvss = cvss
        # The most urgent finding speaks for the vulnerability: its reason and due date,
        # and its JSON gives the eight fields.
        rank = (priority or UNPRIORITISED, -(cvss or 0.0), fid)
        if self.best is None or rank < self.best:
            self.best, self.finding_id, self.reason, self.due = rank, fid, reason or "", due

    @property
    def priority(self) -> int | None:
        """The most urgent priority (None when none is prioritised)."""
        return None if self.best is None or not any(
            k != "unprioritised" for k in self.counts) else self.best[0]

    def order(self, vuln_id: str) -> tuple[int, int, float, str]:
        """Most urgent first, then known exploited, higher CVSS, then by id."""
        return (self.best[0] if self.best else 9, not self.kev, -(self.cvss or 0.0), vuln_id)


def _tallies(conn: Connection, ids: list[int] | None, plan: PatchPlan
             ) -> tuple[list[dict[str, _Tally]], list[dict[str, _Tally]], int]:
    """Per plan item and per unfixed package: vulnerability → its tally; and the count of
    open findings of the scope.  Each open finding is given to the item of its package
    that holds its host and its vulnerability (a package may have several items, one per
    target version), else to its package's unfixed entry."""
    items_of: dict[tuple[str, str], list[int]] = defaultdict(list)
    for n, item in enumerate(plan.items):
        items_of[(item.ecosystem, item.package)].append(n)
    item_vulns = [frozenset(i.vulns) for i in plan.items]
    # Host ids only for packages with several items (rare): the common case needs none.
    item_hosts: dict[int, frozenset[int]] = {
        n: frozenset(h.asset_id for h in plan.items[n].hosts)
        for ns in items_of.values() if len(ns) > 1 for n in ns}
    unfixed_of = {(u.ecosystem, u.package): n for n, u in enumerate(plan.unfixed)}
    unfixed_vulns = [frozenset(u.vulns) for u in plan.unfixed]
    fixed: list[dict[str, _Tally]] = [defaultdict(_Tally) for _ in plan.items]
    open_: list[dict[str, _Tally]] = [defaultdict(_Tally) for _ in plan.unfixed]
    f, fp = findings, finding_priority
    stmt = (select(f.c.id, f.c.asset_id, f.c.vuln_id, f.c.ecosystem, f.c.package,
                   f.c.fixed_version, f.c.known_exploited, f.c.cvss_score, fp.c.priority,
                   fp.c.reason, fp.c.due_date)
            .outerjoin(fp, fp.c.finding_id == f.c.id)
            .where(f.c.state == "open", in_scope(f.c.asset_id, ids)))
    total = 0
    with gc_paused():
        # Streamed in chunks: a scope's open findings are never all in memory at once.
        result = conn.execute(stmt.execution_options(yield_per=_CHUNK))
        for fid, asset_id, vuln, eco, package, fixed_version, kev, cvss, prio, reason, due \
                in result:
            total += 1
            key = (eco, package)
            placed = False
            for n in items_of.get(key, ()):
                if vuln in item_vulns[n] and (n not in item_hosts
                                              or asset_id in item_hosts[n]):
                    fixed[n][vuln].add(fid, prio, reason, due, bool(kev), cvss)
                    placed = True
                    break
            if not placed and not fixed_version:
                u = unfixed_of.get(key)
                if u is not None and vuln in unfixed_vulns[u]:
                    open_[u][vuln].add(fid, prio, reason, due, bool(kev), cvss)
    return fixed, open_, total


def _fields(conn: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The eight report fields of each finding of ``ids`` (decoded from its JSON)."""
    out: dict[int, dict[str, Any]] = {}
    f = findings
    for start in range(0, len(ids), _CHUNK):
        for r in conn.execute(select(f.c.id, f.c.vuln_id, f.c.data, f.c.severity,
                                     f.c.cvss_score, f.c.known_exploited, f.c.fixed_version)
                              .where(f.c.id.in_(ids[start:start + _CHUNK]))):
            data = orjson.loads(r.data)
            cvss = data.get("cvss") or {}
            exploit = data.get("exploit") or {}
            cve = data.get("cve") or (r.vuln_id if r.vuln_id.startswith("CVE-") else None)
            if cve is None:
                cve = next((a for a in data.get("aliases") or () if a.startswith("CVE-")),
                           None)
            kev = bool(r.known_exploited)
            out[int(r.id)] = {
                "name": data.get("name") or r.vuln_id, "summary": data.get("summary") or "",
                "affected_range": (data.get("evidence") or {}).get("affected_range") or "",
                "cve": cve, "cvss_score": cvss.get("score", r.cvss_score),
                "cvss_vector": cvss.get("vector"), "severity": r.severity or "Unknown",
                # The same one-line form as findings.model.Exploit.summary.
                "exploit": exploit_summary(
                    kev or bool(exploit.get("known_exploited")),
                    bool(exploit.get("kev_ransomware")), exploit.get("epss_score"),
                    exploit.get("epss_percentile"), len(exploit.get("references") or ())),
                "fixed_version": r.fixed_version,
                "workaround": data.get("workaround") or ""}
    return out


def _block(vuln_id: str, tally: _Tally, fields: dict[str, Any]) -> VulnBlock:
    order = ("P1", "P2", "P3", "P4", "unprioritised")
    return VulnBlock(
        vuln_id=vuln_id, priority=tally.priority,
        by_priority={k: tally.counts[k] for k in order if tally.counts[k]},
        hosts=tally.hosts, reason=tally.reason, due_date=aware(tally.due),
        known_exploited=tally.kev, **fields)


def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that orders the numbers within a name by value."""
    return tuple((0, int(p)) if p.isdigit() else (1, p)
                 for p in re.split(r"(\d+)", name) if p)


def _hosts(entries: list[tuple[str, int | None, str | None]], *, counted: bool = True
           ) -> HostSummary:
    """(name, best priority, next window) of a section's hosts, summarised; without
    ``counted``, named only (what no fix removes has no window to wait for)."""
    windows = Counter(w for _, _, w in entries) if counted else Counter()
    priorities = (Counter(f"P{p}" if p else "unprioritised" for _, p, _ in entries)
                  if counted else Counter())
    # Most urgent first, then the earliest window, then by name (host-9 before host-10).
    ordered = sorted(entries, key=lambda e: (e[1] or 9, e[2] or "~", _natural(e[0])))
    return HostSummary(
        total=len(entries),
        # "Any time" (no window) after the dated ones; P1..P4 before "unprioritised".
        windows=tuple((datetime.fromisoformat(w) if w else None, n)
                      for w, n in sorted(windows.items(), key=lambda kv: kv[0] or "~")),
        by_priority=tuple(sorted(priorities.items())),
        names=tuple(e[0] for e in ordered[:HOSTS_SHOWN]),
        more=max(0, len(entries) - HOSTS_SHOWN))


def _item_commands(item: PlanItem, names: tuple[str, ...], most: int = 5) -> tuple[str, ...]:
    """The distinct per-copy commands of a located item, for the hosts named."""
    if not item.located:
        return ()
    shown = set(names)
    out: list[str] = []
    for h in item.hosts:
        if h.name not in shown:
            continue
        for i in h.installations:
            if i.command and i.command not in out:
                out.append(i.command)
                if len(out) == most:
                    return tuple(out)
    return tuple(out)


def technical_report(conn: Connection, scope: Scope | None = None, *, limit: int,
                     now: datetime | None = None, reach: Reach = None) -> TechnicalReport:
    """Gather the technical report of ``scope`` by patch, detailing at most ``limit``
    vulnerability blocks (the size guard) -- of the hosts in ``reach`` only, the part of
    the estate its reader may see (None: no limit)."""
    scope = scope or Scope()
    now = now or now_utc()
    ids = narrow(resolve_scope(conn, scope), reach)
    plan = build_plan(conn, group=scope.group, asset_ids=ids, now=now, verify=False)
    fixed, unfixed, total = _tallies(conn, ids, plan)
    report = TechnicalReport(
        scope=scope, generated_at=now, open_total=total, limit=limit,
        sections_total=len(plan.items), unfixed_total=len(plan.unfixed),
        blocks_total=sum(len(t) for t in fixed) + sum(len(t) for t in unfixed),
        coverage=estate_coverage(conn, ids), limited=reach is not None)
    # Which blocks are shown: in plan order (most risk removed first), each section's
    # vulnerabilities most urgent first, until the limit.
    budget = limit
    chosen_items: list[tuple[int, list[str]]] = []
    for n, tallies in enumerate(fixed):
        if budget <= 0:
            break
        order = sorted(tallies, key=lambda v: tallies[v].order(v))[:budget]
        chosen_items.append((n, order))
        budget -= len(order)
    chosen_unfixed: list[tuple[int, list[str]]] = []
    for n, tallies in enumerate(unfixed):
        if budget <= 0:
            break
        order = sorted(tallies, key=lambda v: tallies[v].order(v))[:budget]
        chosen_unfixed.append((n, order))
        budget -= len(order)
    wanted = sorted({fixed[n][v].finding_id for n, vs in chosen_items for v in vs}
                    | {unfixed[n][v].finding_id for n, vs in chosen_unfixed for v in vs})
    fields = _fields(conn, wanted)
    for n, order in chosen_items:
        item = plan.items[n]
        hosts = _hosts([(h.name, h.best_priority, h.next_window) for h in item.pending])
        report.sections.append(PatchSection(
            rank=n + 1, ecosystem=item.ecosystem, package=item.package,
            fixed_version=item.fixed_version, command=item.command,
            commands=_item_commands(item, hosts.names), reboot=item.reboot,
            known_exploited=item.known_exploited,
            findings=sum(t.hosts for t in fixed[n].values()), hosts=hosts,
            vulns=tuple(_block(v, fixed[n][v], fields[fixed[n][v].finding_id])
                        for v in order),
            vulns_total=len(fixed[n])))
    for n, order in chosen_unfixed:
        u: UnfixedItem = plan.unfixed[n]
        report.unfixed.append(UnfixedSection(
            ecosystem=u.ecosystem, package=u.package, priority=u.best_priority,
            hosts=_hosts([(name, None, None) for name in u.hosts], counted=False),
            vulns=tuple(_block(v, unfixed[n][v], fields[unfixed[n][v].finding_id])
                        for v in order),
            vulns_total=len(unfixed[n])))
    return report
