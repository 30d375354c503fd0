"""The figures of a report, gathered with set-based SQL (no finding goes through Python
except the ones a technical report lists).

A report has a *scope*: the whole estate, one asset group (static members and dynamic
rule, as the scheduler resolves them) or one business service (``asset_context.service``).
The executive report's figures are the dashboard overview's
(:func:`patchpilot.reports.overview.overview`, summed from the per-asset summary), so the
page and the PDF never disagree; KEV's distinct CVEs come from the known-exploited open
findings, and the top patch actions from :func:`patchpilot.scans.plan.build_plan` with
``top`` (only the items that can rank are built) -- or, once the workers have stored
the plan, from the stored plan the ``/plan`` page reads.

A report asked for by a user limited to part of the estate (issue 18) is narrowed to it:
every function here takes the caller's ``reach`` (the asset ids they may see, None for the
whole estate) and reads the assets of the scope *and* the reach only (:func:`scope_ids`).

The technical exports (CSV/XLSX) read every open finding of their scope with its eight
report fields (decoded from the finding's JSON) and its priority reason; the technical
PDF/HTML is organised by patch instead (:mod:`patchpilot.reports.technical_data`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import and_, func, select, true
from sqlalchemy.engine import Connection

from patchpilot.assets.groups import Reach, Scope, narrow, resolve_scope
from patchpilot.clock import aware, now_utc
from patchpilot.db.engine import low_memory
from patchpilot.db.tables import (
    asset_context,
    asset_summary,
    assets,
    finding_priority,
    findings,
)
from patchpilot.errors import InvalidInput, NotFound
from patchpilot.findings.phrases import exploit_summary
from patchpilot.findings.queries import installations
from patchpilot.reports.overview import in_scope, overview
from patchpilot.scans import plan_store
from patchpilot.scans.plan import PlanItem, build_plan
from patchpilot.scoring.priority import BAND_ORDER

SEVERITIES = (*reversed(BAND_ORDER), "Unknown")
DEFAULT_WEEKS = 12
TOP_ACTIONS = 5


class ReportError(InvalidInput):
    """A report that cannot be built (unknown group, bad option), naming what is wrong."""


class ReportNotFound(ReportError, NotFound):
    """A report schedule id that names no schedule."""


def scope_ids(conn: Connection, scope: Scope, reach: Reach = None) -> list[int] | None:
    """The asset ids a report of ``scope`` covers for a caller who may see ``reach``
    (None: the whole estate, for an unscoped caller of an estate report)."""
    return narrow(resolve_scope(conn, scope), reach)


@dataclass(frozen=True, slots=True)
class WeekPoint:
    """Findings opened and fixed in one week (starting ``start``, a Monday, UTC)."""

    start: datetime
    opened: int
    fixed: int


@dataclass(frozen=True, slots=True)
class PatchAction:
    """One line of the top patch actions (from the patch plan)."""

    package: str
    fixed_version: str
    ecosystem: str
    vulns: int
    hosts: int
    p1_hosts: int
    known_exploited: int
    command: str | None
    reboot: bool


@dataclass(slots=True)
class ExecutiveData:
    """Every figure of the executive report."""

    scope: Scope
    generated_at: datetime
    assets: int
    open_total: int
    by_priority: dict[str, int]  # "P1".."P4" and "unprioritised"
    by_severity: dict[str, int]  # Critical .. None, Unknown
    kev_findings: int
    kev_cves: int
    kev_assets: int
    kev_top: list[tuple[str, int]]  # (CVE, open findings) most widespread first
    trend: list[WeekPoint]
    sla_open: int
    sla_overdue: int
    sla_fixed: int
    sla_within: int
    compliance: float | None  # 0..1; None when nothing was due yet
    mttr_days: float | None
    actions: list[PatchAction] = field(default_factory=list)
    # Per ecosystem of the scope: packages, assets, advisories loaded, covered (the
    # overview's ``coverage``), not covered first.
    coverage: list[dict[str, Any]] = field(default_factory=list)
    limited: bool = False  # narrowed to the reader's part of the estate


@dataclass(frozen=True, slots=True)
class TechnicalFinding:
    """One open finding with the eight report fields and its priority reason."""

    asset: str
    service: str | None
    priority: int | None
    reason: str
    due_date: datetime | None
    vuln_id: str
    name: str
    summary: str
    package: str
    ecosystem: str
    installed_version: str | None
    affected_range: str
    cve: str | None
    cvss_score: float | None
    cvss_vector: str | None
    severity: str
    exploit: str
    known_exploited: bool
    fixed_version: str | None
    fix_command: str | None
    workaround: str
    # Every affected copy: (location or None for an OS package, installed version, fixed
    # version, the command that upgrades it there), oldest version first.
    installations: tuple[tuple[str | None, str, str | None, str | None], ...] = ()

    @property
    def installations_text(self) -> str:
        """The installations on one line (:func:`installations_line`)."""
        return installations_line(self.installations)


Installations = tuple[tuple[str | None, str, str | None, str | None], ...]


def installations_line(copies: Installations) -> str:
    """Installations on one line: ``/venv/lib/python3.11/site-packages 19.2.3 → 23.3; …``
    (an OS package's location is left out)."""
    return "; ".join(" ".join(p for p in (loc, ver) if p) + (f" → {fixed}" if fixed else "")
                     for loc, ver, fixed, _ in copies)


class TechnicalRow(NamedTuple):
    """:class:`TechnicalFinding`'s fields as a tuple, for the exports that stream a million
    of them: made in a fifth of the time of the frozen dataclass (a test keeps the two
    alike)."""

    asset: str
    service: str | None
    priority: int | None
    reason: str
    due_date: datetime | None
    vuln_id: str
    name: str
    summary: str
    package: str
    ecosystem: str
    installed_version: str | None
    affected_range: str
    cve: str | None
    cvss_score: float | None
    cvss_vector: str | None
    severity: str
    exploit: str
    known_exploited: bool
    fixed_version: str | None
    fix_command: str | None
    workaround: str
    installations: Installations = ()

    @property
    def installations_text(self) -> str:
        """The installations on one line (:func:`installations_line`)."""
        return installations_line(self.installations)


def _action(item: PlanItem) -> PatchAction:
    pending = item.pending
    return PatchAction(package=item.package, fixed_version=item.fixed_version,
                       ecosystem=item.ecosystem, vulns=len(item.vulns), hosts=len(pending),
                       p1_hosts=sum(1 for h in pending if h.best_priority == 1),
                       known_exploited=item.known_exploited, command=item.command,
                       reboot=item.reboot)


def _top_actions(conn: Connection, scope: Scope, ids: list[int] | None, now: datetime,
                 top: int, limited: bool = False) -> list[PatchAction]:
    """The first ``top`` changes of the patch plan for the scope's hosts.

    Read from the stored plan (:mod:`patchpilot.scans.plan_store`, what ``/plan`` shows,
    kept current by the workers) when one has been built: a few index ranges instead of
    grouping the estate's open findings (``build_plan`` with ``top`` ranks every package
    and reads every open row to find the best twenty's: 6 of the 9.5 s the executive PDF
    took on 1,000,000 findings).  The vulnerabilities counted are those open on the
    scope's pending hosts.  Before any plan is stored, the items are built here
    (``limited``: ``ids`` is narrowed to the reader's part of the estate)."""
    state = plan_store.status(conn)
    if not state.generation:
        plan = build_plan(conn, group=scope.group, now=now, verify=False,
                          asset_ids=ids if scope.service is not None or limited else None,
                          top=top)
        return [_action(i) for i in plan.items[:top]]
    query = plan_store.PlanQuery(asset_ids=None if ids is None else tuple(ids))
    page = plan_store.read_page(conn, state, query, limit=top, first_hosts=0, now=now)
    actions = []
    for v in page.items:
        if not v.pending:  # every host verified fixed: nothing left to do
            continue
        hosts = plan_store.read_hosts(conn, state, v.key, query, limit=v.pending, now=now)
        vulns = {x for h in hosts.hosts if h.status == "pending" for x in h.vulns}
        actions.append(PatchAction(
            package=v.package, fixed_version=v.fixed_version, ecosystem=v.ecosystem,
            vulns=len(vulns), hosts=v.pending, p1_hosts=v.hosts_by_priority.get("P1", 0),
            known_exploited=v.known_exploited, command=v.command, reboot=v.reboot))
    return actions


def executive_data(conn: Connection, scope: Scope | None = None, *,
                   now: datetime | None = None, weeks: int = DEFAULT_WEEKS,
                   top: int = TOP_ACTIONS, reach: Reach = None) -> ExecutiveData:
    """Gather every figure of the executive report of ``scope`` (within ``reach``)."""
    scope = scope or Scope()
    now = now or now_utc()
    ids = scope_ids(conn, scope, reach)
    # The dashboard's figures, from the per-asset summary: the page and the PDF agree.
    o = overview(conn, now=now, top=top, asset_ids=ids, weeks=weeks)
    by_priority = {k: o.by_priority.get(k, 0) for k in ("P1", "P2", "P3", "P4",
                                                        "unprioritised")}
    by_severity = {k: o.by_severity.get(k, 0) for k in SEVERITIES}
    f = findings
    # "= true", not "IS true": PostgreSQL answers only the former from ix_findings_kev.
    kev_where = and_(f.c.state == "open", f.c.known_exploited == true(),
                     in_scope(f.c.asset_id, ids))
    # One pass (from ix_findings_kev alone): every known-exploited CVE with its open
    # findings -- a catalogue of about a thousand CVEs at most -- counted and ranked.
    kev_counts = [(str(v), int(n)) for v, n in conn.execute(
        select(f.c.vuln_id, func.count().label("n")).where(kev_where)
        .group_by(f.c.vuln_id).order_by(func.count().desc(), f.c.vuln_id))]
    kev_cves, kev_top = len(kev_counts), kev_counts[:top]
    sla_open = sum(by_priority[k] for k in ("P1", "P2", "P3", "P4"))
    return ExecutiveData(
        scope=scope, generated_at=now, assets=o.assets_total,
        open_total=o.open_total, by_priority=by_priority,
        by_severity=by_severity, kev_findings=o.known_exploited, kev_cves=int(kev_cves),
        kev_assets=o.kev_assets, kev_top=kev_top,
        trend=[WeekPoint(datetime.fromisoformat(w["week"]).replace(tzinfo=UTC),
                         w["opened"], w["fixed"]) for w in o.trend],
        sla_open=sla_open, sla_overdue=o.overdue, sla_fixed=o.fixed,
        sla_within=o.fixed_within_sla, compliance=o.sla_compliance, mttr_days=o.mttr_days,
        actions=_top_actions(conn, scope, ids, now, top, reach is not None),
        coverage=o.coverage, limited=reach is not None)


def _technical_fields(r: Any) -> tuple[Any, ...]:
    """A row of :func:`_technical_stream`'s query as :class:`TechnicalFinding`'s fields, in
    their order."""
    # Unpacked by position: a Row's attributes by name cost half a microsecond each, a
    # third of the time of a million-row export.  The order is the query's.
    (vuln_id, package, ecosystem, installed_version, installed, fixed_version, severity,
     cvss_score, known_exploited, raw, asset, service, priority, reason, due_date) = r
    data = orjson.loads(raw)
    cvss = data.get("cvss") or {}
    exploit = data.get("exploit") or {}
    fix = data.get("fix") or {}
    evidence = data.get("evidence") or {}
    cve = data.get("cve") or (vuln_id if vuln_id.startswith("CVE-") else None)
    if cve is None:
        cve = next((a for a in data.get("aliases") or () if a.startswith("CVE-")), None)
    kev = bool(known_exploited)
    return (asset, service, priority, reason or "", aware(due_date), vuln_id,
            data.get("name") or vuln_id, data.get("summary") or "", package, ecosystem,
            installed_version, evidence.get("affected_range") or "", cve,
            cvss.get("score", cvss_score), cvss.get("vector"), severity or "Unknown",
            _exploit_text(exploit, kev), kev, fixed_version, fix.get("command"),
            data.get("workaround") or "",
            tuple((i["location"], i["installed_version"] or "", i["fixed_version"],
                   i["command"])
                  for i in installations(installed, installed_version, fixed_version)))


def _exploit_text(exploit: dict[str, Any], kev: bool) -> str:
    # The same one-line form as findings.model.Exploit.summary, rebuilt from the JSON.
    return exploit_summary(kev or bool(exploit.get("known_exploited")),
                           bool(exploit.get("kev_ransomware")), exploit.get("epss_score"),
                           exploit.get("epss_percentile"), len(exploit.get("references") or ()))


def technical_findings(conn: Connection, scope: Scope | None = None, *, reach: Reach = None
                       ) -> list[TechnicalFinding]:
    """Every open finding of ``scope`` (within ``reach``): most urgent first, then by
    asset and id."""
    return list(iter_technical_findings(conn, scope, reach=reach))


# Rows fetched per round trip by :func:`iter_technical_findings` (a server-side cursor on
# PostgreSQL): large enough that the round trips do not show, small enough to stay flat.
STREAM_BATCH = 2000


def iter_technical_findings(conn: Connection, scope: Scope | None = None, *,
                            reach: Reach = None) -> Iterator[TechnicalFinding]:
    """:func:`technical_findings` one at a time (:func:`_technical_stream`)."""
    for fields in _technical_stream(conn, scope, reach):
        yield TechnicalFinding(*fields)


def iter_technical_rows(conn: Connection, scope: Scope | None = None, *,
                        reach: Reach = None) -> Iterator[TechnicalRow]:
    """:func:`technical_findings` one at a time as :class:`TechnicalRow` tuples: what the
    streamed exports read."""
    make = TechnicalRow._make
    for fields in _technical_stream(conn, scope, reach):
        yield make(fields)


def _technical_stream(conn: Connection, scope: Scope | None, reach: Reach = None
                      ) -> Iterator[tuple[Any, ...]]:
    """Every open finding of ``scope`` as :class:`TechnicalFinding`'s fields: most urgent
    first, then by asset and id; one at a time.

    ``stream_results`` makes psycopg use a server-side cursor (else it would read the
    whole result into the client on execute); SQLite's cursor steps through the rows
    anyway, and sorts in little memory while it does (:func:`patchpilot.db.engine.low_memory`).
    The caller's connection stays busy until the iterator is exhausted or closed.
    """
    ids = scope_ids(conn, scope or Scope(), reach)
    f, fp = findings, finding_priority
    # The columns in the order _technical_fields unpacks them.
    stmt = (select(f.c.vuln_id, f.c.package, f.c.ecosystem, f.c.installed_version,
                   f.c.installations, f.c.fixed_version, f.c.severity, f.c.cvss_score,
                   f.c.known_exploited,
                   f.c.data, assets.c.name.label("asset"), asset_context.c.service,
                   fp.c.priority, fp.c.reason, fp.c.due_date)
            .join(assets, assets.c.id == f.c.asset_id)
            .outerjoin(fp, fp.c.finding_id == f.c.id)
            .outerjoin(asset_context, asset_context.c.asset_id == f.c.asset_id)
            .where(f.c.state == "open", in_scope(f.c.asset_id, ids))
            .order_by(func.coalesce(fp.c.priority, 9), assets.c.name, f.c.vuln_id,
                      f.c.package))
    with low_memory(conn):
        result = conn.execution_options(stream_results=True, yield_per=STREAM_BATCH
                                        ).execute(stmt)
        try:
            for r in result:
                yield _technical_fields(r)
        finally:
            result.close()


def open_findings(conn: Connection, scope: Scope | None = None, *,
                  reach: Reach = None) -> int:
    """How many open findings ``scope`` has (within ``reach``), from the per-asset summary
    (one indexed sum, not a count of the findings): the size a report request is judged
    by."""
    ids = scope_ids(conn, scope or Scope(), reach)
    return int(conn.execute(select(func.coalesce(func.sum(asset_summary.c.open_total), 0))
                            .where(in_scope(asset_summary.c.asset_id, ids))).scalar_one())
