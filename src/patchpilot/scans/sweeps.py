"""Emergency sweeps: "is CVE-2024-3094 anywhere?", answered at once, then confirmed live.

A sweep is a tracked campaign in two stages (DESIGN.md, "The flow of data"):

1. **The first answer**, from what is already stored: the vulnerability (a CVE, or an
   advisory id such as GHSA/PYSEC/ALSA resolved to its CVEs) becomes the affected rows of
   its advisories, with the matcher's source-priority rule (the distribution's tracker
   beats data derived from it, so a backported fix counts).  One set-based query reads
   the ``asset_packages`` rows of those packages; each *distinct* (ecosystem, name,
   version) is judged once; an open finding an imported scanner report gave on the
   vulnerability counts too; every asset is then ``affected``, ``not_affected`` or
   ``unknown`` (no inventory yet, a partial inventory, or a version no rule can read).
   Windows hosts are judged by the matcher's stored ``msrc`` findings (kept current by
   the re-match every MSRC update starts): an open one on the vulnerability makes the
   host affected; a host whose product the documents no longer name (end of life) is
   ``unknown``, never "not affected".
2. **Confirmation**: every asset with an agent gets a ``sweep_refresh`` job and every SSH
   target an ``ssh_scan`` job, both with the sweep's deadline.  When a fresher inventory
   of the asset is matched (:func:`update_sweeps_for_asset`, called by the match job) its
   result becomes ``confirmed`` (affected) or ``not_affected``; :func:`close_sweeps`
   marks what is still pending at the deadline ``timed_out`` (``unreachable`` when its
   refresh job failed) and the sweep ``done`` when nothing is pending.

The sweep and one ``sweep_results`` row per asset are kept: the campaign stays on record.

A user limited to part of the estate (issue 18) sweeps that part: the sweep they start
covers -- and asks to confirm -- the assets of their ``reach`` only.  Reading any sweep,
they see the results and counts of those assets only (:func:`get_sweep`,
:func:`list_sweeps`, :func:`progress` with ``reach``).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, bindparam, func, insert, select, tuple_, union, update
from sqlalchemy.engine import Connection

from patchpilot.assets.groups import Reach, within
from patchpilot.clock import aware, iso, now_utc
from patchpilot.db.dialect import bulk_insert, stored_datetime
from patchpilot.db.tables import (
    advisories,
    advisory_aliases,
    advisory_vulns,
    affected,
    agents,
    asset_packages,
    assets,
    cve_records,
    findings,
    inventories,
    jobs,
    sweep_results,
    sweeps,
)
from patchpilot.errors import InvalidInput, VersionError
from patchpilot.findings.events import SWEEP_FINISHED, record_event
from patchpilot.findings.model import FIXED, MSRC, WINDOWS
from patchpilot.findings.owned import has_owner, owned_facts, set_aside_reason
from patchpilot.findings.windows import host_of_row

# The matcher's public contract (its rules and its judge), so a sweep and a scan never
# disagree.
from patchpilot.knowledge.cpe_names import CPE
from patchpilot.knowledge.matcher import ecosystems_with_advisories, judge, rules_for
from patchpilot.knowledge.names import normalize_name
from patchpilot.knowledge.versions import version_key
from patchpilot.knowledge.windows import knowledge_for, products_fixing, windows_products
from patchpilot.models import PackageOwner

# Initial answers (from stored inventories).
AFFECTED, NOT_AFFECTED, UNKNOWN = "affected", "not_affected", "unknown"
INITIAL = (AFFECTED, NOT_AFFECTED, UNKNOWN)
# Statuses while the sweep runs; every one but ``pending`` is final.  ``affected`` and
# ``unknown`` stay as the stored data said for assets nobody can refresh (an uploaded
# SBOM, a host with neither agent nor SSH target).
PENDING, CONFIRMED, UNREACHABLE, TIMED_OUT = "pending", "confirmed", "unreachable", "timed_out"
STATUSES = (PENDING, CONFIRMED, AFFECTED, NOT_AFFECTED, UNKNOWN, UNREACHABLE, TIMED_OUT)
RUNNING, DONE = "running", "done"
REFRESH_JOB, SSH_JOB = "sweep_refresh", "ssh_scan"
# Agents and workers take a sweep's jobs before routine work.
JOB_PRIORITY = 100

_CHUNK = 5000


class SweepError(InvalidInput):
    """A sweep that cannot be started: an unknown vulnerability, an unreadable range."""


@dataclass(frozen=True, slots=True)
class SweepQuery:
    """What a sweep looks for: a vulnerability id, or a package and a version range.

    With both, the explicit package and range decide and ``vuln`` only names the sweep
    (``patchpilot sweep CVE-2024-3094 --ecosystem Debian --package xz-utils --range
    '>=5.6.0,<5.6.2'`` when no advisory in the knowledge base names the packages yet).
    """

    vuln: str | None = None
    ecosystem: str | None = None
    package: str | None = None
    range: str | None = None

    @property
    def explicit(self) -> bool:
        """True when a package and range are given (they decide, not the advisories)."""
        return bool(self.ecosystem and self.package and self.range)

    def to_dict(self) -> dict[str, str]:
        """The query as stored in ``sweeps.query`` (only the fields given)."""
        return {k: v for k, v in (("vuln", self.vuln), ("ecosystem", self.ecosystem),
                                  ("package", self.package), ("range", self.range)) if v}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepQuery:
        """The query stored by :meth:`to_dict`."""
        return cls(**{k: data.get(k) for k in ("vuln", "ecosystem", "package", "range")})

    def label(self) -> str:
        """How a person names the sweep."""
        if self.explicit:
            what = f"{self.ecosystem}/{self.package} {self.range}"
            return f"{self.vuln} ({what})" if self.vuln else what
        return self.vuln or "?"


# One rule that can make a version affected: (vuln id, ranges JSON, versions JSON, advisory).
Rule = tuple[str, str, str | None, str]
Targets = dict[tuple[str, str], list[Rule]]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one distinct (ecosystem, name, version) is, for one sweep."""

    affected: bool
    vulns: tuple[str, ...] = ()
    fixed: str | None = None  # the lowest fix above the version, None: no fix published
    unreadable: str | None = None  # the version no rule can read (so: unknown)


@dataclass(slots=True)
class AssetResult:
    """One asset's answer in a sweep."""

    asset_id: int
    name: str
    initial: str
    status: str
    packages: list[dict[str, Any]] = field(default_factory=list)  # the affected ones
    reason: str | None = None
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"asset_id": self.asset_id, "name": self.name, "initial": self.initial,
                "status": self.status, "packages": self.packages, "reason": self.reason,
                "updated_at": iso(self.updated_at)}


@dataclass(slots=True)
class Sweep:
    """A sweep with its counts (and, when asked for, its per-asset results)."""

    id: int
    query: SweepQuery
    vulns: tuple[str, ...]
    created_by: str
    created_at: datetime
    deadline: datetime
    state: str
    initial: dict[str, int]
    status: dict[str, int]
    jobs: int = 0
    results: list[AssetResult] = field(default_factory=list)

    def progress(self) -> dict[str, Any]:
        """The counts (what a live view redraws)."""
        return {"sweep_id": self.id, "state": self.state, "initial": self.initial,
                "status": self.status}

    def to_dict(self, *, results: bool = True) -> dict[str, Any]:
        """JSON-ready; with the per-asset results unless ``results`` is False."""
        out: dict[str, Any] = {
            "id": self.id, "query": self.query.to_dict(), "label": self.query.label(),
            "vulns": list(self.vulns), "created_by": self.created_by,
            "created_at": iso(self.created_at), "deadline": iso(self.deadline),
            "state": self.state, "initial": self.initial, "status": self.status,
            "jobs": self.jobs}
        if results:
            out["results"] = [r.to_dict() for r in self.results]
        return out


# ---------------------------------------------------------------------------------------
# The query: a vulnerability or a range, as the affected rows that decide
# ---------------------------------------------------------------------------------------

_BOUND = re.compile(r"^(>=|<=|==|=|<|>)?\s*(\S+)$")


def parse_range(text: str) -> tuple[str, str | None]:
    """A range such as ``<5.6.2`` or ``>=5.6.0,<5.6.2`` (``||`` between alternatives) as
    the knowledge base's ranges JSON and explicitly listed versions JSON (``=5.6.1``)."""
    ranges: list[list[str | None]] = []
    listed: list[str] = []
    for alternative in text.split("||"):
        intro = fixed = last = None
        parts = [p.strip() for p in alternative.split(",") if p.strip()]
        if not parts:
            raise SweepError(f"range {text!r}: an empty alternative")
        for part in parts:
            m = _BOUND.match(part)
            if m is None:
                raise SweepError(f"range {text!r}: cannot read {part!r}")
            op, version = m.group(1) or "=", m.group(2)
            if op == ">=":
                intro = version
            elif op == "<":
                fixed = version
            elif op == "<=":
                last = version
            elif op in ("=", "=="):
                if len(parts) > 1:
                    raise SweepError(f"range {text!r}: '={version}' cannot be combined "
                                     "with other bounds in one alternative")
                listed.append(version)
            else:
                # ">x" has no counterpart in OSV ranges (introduced is inclusive).
                raise SweepError(f"range {text!r}: '>' is not supported; use '>=' with "
                                 "the first affected version")
        if intro or fixed or last:
            ranges.append([intro, fixed, last])
    return (orjson.dumps(ranges).decode(),
            orjson.dumps(listed).decode() if listed else None)


def _ecosystems(conn: Connection, ecosystem: str) -> list[str]:
    """``Debian`` means every Debian release the estate runs; ``Debian:12`` only that."""
    if ":" in ecosystem:
        return [ecosystem]
    found = conn.execute(select(assets.c.ecosystem).distinct().where(
        assets.c.ecosystem.like(f"{ecosystem}:%"))).scalars().all()
    return [ecosystem, *sorted(e for e in found if e)]


def resolve_vulns(conn: Connection, vuln: str) -> tuple[str, ...]:
    """The canonical vulnerability ids ``vuln`` stands for.

    A canonical id (a CVE, or a GHSA/advisory id without one) is itself; an alias or
    advisory id (GHSA, PYSEC, ALSA, DSA, …) is every vulnerability its advisories are
    about (an ALSA fixing ten CVEs stands for the ten).
    """
    vuln = vuln.strip()
    if vuln.lower().startswith("cve-"):
        vuln = vuln.upper()
    if conn.execute(select(advisory_vulns.c.vuln_id)
                    .where(advisory_vulns.c.vuln_id == vuln).limit(1)).first():
        return (vuln,)
    pks = union(select(advisories.c.pk).where(advisories.c.id == vuln),
                select(advisory_aliases.c.advisory_pk).where(advisory_aliases.c.alias == vuln))
    found = conn.execute(select(advisory_vulns.c.vuln_id).distinct().where(
        advisory_vulns.c.advisory_pk.in_(pks.scalar_subquery()))).scalars().all()
    return tuple(sorted(found))


def resolve(conn: Connection, query: SweepQuery) -> tuple[tuple[str, ...], Targets]:
    """The vulnerabilities of ``query`` and, per (ecosystem, name), the rules that decide.

    For a vulnerability, the matcher's rule applies: per (vulnerability, ecosystem,
    name) only the rows of the highest-priority source count, and a "not affected" there
    silences every lower source.  Raises :class:`SweepError` when there is nothing to
    look for.
    """
    if query.explicit:
        assert query.ecosystem and query.package and query.range  # for mypy
        ranges, listed = parse_range(query.range)
        label = query.vuln or f"{query.package} {query.range}"
        targets: Targets = {}
        for eco in _ecosystems(conn, query.ecosystem):
            targets[(eco, normalize_name(eco, query.package))] = [
                (label, ranges, listed, "query")]
        return ((query.vuln,) if query.vuln else ()), targets
    if not query.vuln:
        raise SweepError("a sweep needs a vulnerability id, or an ecosystem, a package "
                         "and a range")
    vulns = resolve_vulns(conn, query.vuln)
    if not vulns and query.vuln.strip().lower().startswith("cve-") and products_fixing(
            conn, [query.vuln.strip().upper()]):
        # Only Microsoft's documents name it: Windows hosts answer (_add_windows).
        return (query.vuln.strip().upper(),), {}
    if not vulns:
        reported = query.vuln.strip()
        reported = reported.upper() if reported.lower().startswith("cve-") else reported
        if conn.execute(select(findings.c.id).where(findings.c.vuln_id == reported)
                        .limit(1)).first():
            # No advisory names its packages, but an imported scanner report named it
            # (a Nessus plugin's CVE): the reports answer (_add_reported).
            return (reported,), {}
        known = conn.execute(select(cve_records.c.id).where(
            cve_records.c.id == query.vuln.strip().upper()).limit(1)).first()
        if known:
            raise SweepError(
                f"{query.vuln}: no advisory in the knowledge base names the packages it "
                "affects (only its CVE record is loaded); sweep by package instead, e.g. "
                f"`patchpilot sweep {query.vuln} --ecosystem Debian --package xz-utils "
                "--range '>=5.6.0,<5.6.2'`")
        raise SweepError(f"{query.vuln}: unknown to the knowledge base (not a CVE, alias "
                         "or advisory id of any loaded feed); run `patchpilot db update`")
    keys = conn.execute(
        select(affected.c.ecosystem, affected.c.name).distinct()
        .join(advisory_vulns, advisory_vulns.c.advisory_pk == affected.c.advisory_pk)
        .where(advisory_vulns.c.vuln_id.in_(vulns))).all()
    if keys and all(eco == CPE for eco, _ in keys) and conn.execute(
            select(asset_packages.c.asset_id).where(
                asset_packages.c.ecosystem == CPE,
                asset_packages.c.name.in_(sorted({n for _, n in keys}))).limit(1)).first() \
            is None:
        # Only NVD / CVE 5 CPE names speak about it (tukaani:xz), and no device or program
        # of the estate is named so: hosts' packages (Debian's xz-utils) are never named
        # by CPE, so "nobody affected" would be a false all-clear.
        raise SweepError(
            f"{query.vuln}: only CPE-named products ({', '.join(sorted(n for _, n in keys))})"
            " are known to be affected and no asset runs them; hosts' packages are not "
            "named by CPE: sweep by package instead, e.g. "
            f"`patchpilot sweep {query.vuln} --ecosystem Debian --package <name> "
            "--range '<fixed version'`")
    by_eco: dict[str, set[str]] = defaultdict(set)
    for eco, name in keys:
        by_eco[eco].add(name)
    wanted = set(vulns)
    targets = {}
    # Every source that speaks about these packages decides (rules_for applies the
    # priority rule); of its verdicts the sweep keeps this vulnerability's.
    for key, deciding in rules_for(conn, by_eco).items():
        rules: list[Rule] = [(str(vuln), r.ranges, r.versions, r.advisory_id)
                             for vuln, live in deciding if vuln in wanted for r in live]
        if rules:
            targets[key] = rules
    return vulns, targets


def _verdict(eco: str, version: str, rules: Sequence[Rule]) -> Verdict:
    try:
        key = version_key(eco, version)
    except VersionError as exc:
        return Verdict(False, unreadable=str(exc))
    vulns: list[str] = []
    fixes: list[str] = []
    unjudged: str | None = None
    for vuln, ranges, listed, _advisory in rules:
        try:
            hit, _, fixed = judge(eco, version, key, ranges, listed)
        except VersionError as exc:  # firmware of another train than the range
            unjudged = unjudged or str(exc)
            continue
        if hit and vuln not in vulns:
            vulns.append(vuln)
            if fixed:
                fixes.append(fixed)
    if not vulns:
        return Verdict(False, unreadable=unjudged)
    fix = None
    if fixes:
        # The fix that covers every matched vulnerability: the highest one.
        try:
            fix = max(fixes, key=lambda v: version_key(eco, v))
        except VersionError:
            fix = fixes[0]
    return Verdict(True, tuple(vulns), fix)


@dataclass(slots=True)
class _Judged:
    """Per asset: the affected packages and why an asset would be unknown."""

    affected: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    unreadable: dict[int, str] = field(default_factory=dict)
    # Assets the stored data cannot answer for, and why (an end-of-life Windows).
    unjudged: dict[int, str] = field(default_factory=dict)
    distinct: int = 0


def _judge_rows(conn: Connection, rows: Iterable[tuple[Any, ...]],
                targets: Targets) -> _Judged:
    """Judge asset_packages rows, each distinct (ecosystem, name, version) once; copies of
    a language package an OS package owns as a scan judges them (``findings.owned``)."""
    out = _Judged()
    cache: dict[tuple[str, str, str], Verdict] = {}
    # An affected package as it was installed (hosts built alike repeat the very same row):
    # its one dict, shared by every asset that has it -- nothing changes these dicts.
    packages: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    owned: list[tuple[int, str, str, str, Verdict, list[list[Any]]]] = []
    for asset_id, eco, name, version, installed in rows:
        triple = (eco, name, version)
        verdict = cache.get(triple)
        if verdict is None:
            verdict = cache[triple] = _verdict(eco, version, targets[(eco, name)])
        if verdict.affected:
            package = packages.get((*triple, installed))
            if package is None:
                if has_owner(installed):
                    owned.append((asset_id, eco, name, version, verdict,
                                  orjson.loads(installed)))
                    continue
                package = packages[(*triple, installed)] = {
                    "ecosystem": eco, "package": name, "version": version,
                    "fixed": verdict.fixed, "vulns": list(verdict.vulns),
                    "installed": sorted({i[0] for i in orjson.loads(installed)})}
            out.affected[asset_id].append(package)
        elif verdict.unreadable:
            out.unreadable.setdefault(asset_id, f"{name} {version}: {verdict.unreadable}")
    out.distinct = len(cache)
    if owned:
        _judge_owned_rows(conn, owned, out)
    return out


def _judge_owned_rows(conn: Connection,
                      owned: list[tuple[int, str, str, str, Verdict, list[list[Any]]]],
                      out: _Judged) -> None:
    """Affected rows holding OS-owned copies: each vulnerability counts only on a copy
    nobody owns, or on one the distribution's feed and the owner's changelog leave to the
    upstream advisory."""
    facts = owned_facts(conn, [row[0] for row in owned])
    loaded = ecosystems_with_advisories(conn, {d for d, _ in facts.values() if d})
    for asset_id, eco, name, version, verdict, copies in owned:
        distribution, changelog = facts.get(asset_id, (None, {}))
        kept: set[str] = set()
        vulns = []
        for vuln in verdict.vulns:
            hit = {c[0] for c in copies if set_aside_reason(
                PackageOwner(c[4], c[5]) if len(c) > 4 else None, vuln,
                distribution in loaded, changelog) is None}
            if hit:
                vulns.append(vuln)
                kept |= hit
        if vulns:
            out.affected[asset_id].append({
                "ecosystem": eco, "package": name, "version": version,
                "fixed": verdict.fixed, "vulns": vulns, "installed": sorted(kept)})


def _package_rows(conn: Connection, targets: Targets,
                  asset_ids: Sequence[int] | None = None) -> list[tuple[Any, ...]]:
    """The asset_packages rows of the targets' packages (one set query per chunk)."""
    keys = sorted(targets)
    cols = (asset_packages.c.asset_id, asset_packages.c.ecosystem, asset_packages.c.name,
            asset_packages.c.version, asset_packages.c.installed)
    rows: list[tuple[Any, ...]] = []
    key_col = tuple_(asset_packages.c.ecosystem, asset_packages.c.name)
    for start in range(0, len(keys), 500):
        stmt = select(*cols).where(key_col.in_(keys[start:start + 500]))
        if asset_ids is not None:
            stmt = stmt.where(asset_packages.c.asset_id.in_(asset_ids))
        rows += conn.execute(stmt).all()
    return rows


def _add_reported(conn: Connection, vulns: Sequence[str], judged: _Judged) -> None:
    """Add what imported scanner reports say: an open finding of an importer on one of
    ``vulns`` makes its asset affected (a Nessus host with no inventory, an image only
    Trivy scanned) -- the report is the stored evidence there is."""
    if not vulns:
        return
    rows = conn.execute(
        select(findings.c.asset_id, findings.c.ecosystem, findings.c.package,
               findings.c.installed_version, findings.c.fixed_version, findings.c.vuln_id,
               findings.c.producer)
        .where(findings.c.vuln_id.in_(list(vulns)), findings.c.state != FIXED,
               findings.c.producer.like("%importer:%"))
        .order_by(findings.c.asset_id, findings.c.id)).all()
    for r in rows:
        known = judged.affected[r.asset_id]
        if any(p["ecosystem"] == r.ecosystem and p["package"] == r.package for p in known):
            continue  # the inventory already says so
        known.append({"ecosystem": r.ecosystem, "package": r.package,
                      "version": r.installed_version or "", "fixed": r.fixed_version,
                      "vulns": [r.vuln_id], "installed": [],
                      "reported_by": [p for p in r.producer.split(",")
                                      if p.startswith("importer:")]})


def _add_windows(conn: Connection, vulns: Sequence[str], judged: _Judged,
                 asset_ids: Sequence[int] | None = None) -> None:
    """What the Windows hosts say about ``vulns``, where Microsoft's documents name them.

    The matcher's open ``msrc`` findings are the answer (one query), as a scan gives it;
    a Windows host without one is not affected when its product is among those the
    documents name -- unless its product is no longer named at all (end of life), which
    makes it unknown with the reason.  Hosts are read by their OS row, one query; their
    products are worked out once per distinct product key.
    """
    fixing = products_fixing(conn, vulns)
    if not fixing:
        return
    stmt = (select(findings.c.asset_id, findings.c.package, findings.c.installed_version,
                   findings.c.fixed_version, findings.c.vuln_id)
            .where(findings.c.vuln_id.in_(sorted(fixing)), findings.c.state != FIXED,
                   findings.c.ecosystem == WINDOWS, findings.c.producer.like(f"%{MSRC}%"))
            .order_by(findings.c.asset_id, findings.c.package, findings.c.vuln_id))
    if asset_ids is not None:
        stmt = stmt.where(findings.c.asset_id.in_(list(asset_ids)))
    hits: dict[tuple[int, str], dict[str, Any]] = {}
    for r in conn.execute(stmt):
        hit = hits.get((r.asset_id, r.package))
        if hit is None:
            hit = hits[(r.asset_id, r.package)] = {
                "ecosystem": WINDOWS, "package": r.package, "version": r.installed_version
                or "", "fixed": r.fixed_version, "vulns": [], "installed": []}
            judged.affected[r.asset_id].append(hit)
        hit["vulns"].append(r.vuln_id)
    rows = select(asset_packages.c.asset_id, asset_packages.c.name).where(
        asset_packages.c.ecosystem == WINDOWS)
    if asset_ids is not None:
        rows = rows.where(asset_packages.c.asset_id.in_(list(asset_ids)))
    knowledge = knowledge_for(conn)
    end_of_life: dict[str, str | None] = {}
    for asset_id, name in conn.execute(rows):
        if asset_id in judged.affected:
            continue
        if name not in end_of_life:
            named, why = windows_products(knowledge, host_of_row(name))
            end_of_life[name] = why if not named else None
        why = end_of_life[name]
        if why:
            judged.unjudged.setdefault(asset_id, why)


def _affected_answers(judged: _Judged) -> dict[int, tuple[list[dict[str, Any]], str]]:
    """Per affected asset: its packages in order and the stored detail text.  Assets with
    the very same packages (the shared dicts of :func:`_judge_rows`) share both."""
    out: dict[int, tuple[list[dict[str, Any]], str]] = {}
    seen: dict[tuple[int, ...], tuple[list[dict[str, Any]], str]] = {}
    for asset_id, hits in judged.affected.items():
        if not hits:
            continue
        same = tuple(map(id, hits))  # the dicts live as long as ``judged``
        answer = seen.get(same)
        if answer is None:
            ordered = _in_order(hits)
            answer = seen[same] = (ordered, _detail(ordered, None))
        out[asset_id] = answer
    return out


def _in_order(hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An asset's affected packages as a result lists them: by ecosystem, then name."""
    return sorted(hits, key=lambda p: (p["ecosystem"], p["package"]))


def _classify(judged: _Judged, asset_id: int, has_inventory: bool, complete: bool
              ) -> tuple[str, list[dict[str, Any]], str | None]:
    """(answer, affected packages, reason) for one asset."""
    hits = judged.affected.get(asset_id)
    if hits:
        return AFFECTED, _in_order(hits), None
    if not has_inventory:
        return UNKNOWN, [], "no inventory yet"
    if asset_id in judged.unreadable:
        return UNKNOWN, [], f"version not readable: {judged.unreadable[asset_id]}"
    if asset_id in judged.unjudged:
        return UNKNOWN, [], judged.unjudged[asset_id]
    if not complete:
        # A partial inventory cannot prove a package absent.
        return UNKNOWN, [], "latest inventory is partial"
    return NOT_AFFECTED, [], None


# ---------------------------------------------------------------------------------------
# Starting a sweep: the first answer, stored, and the refresh jobs
# ---------------------------------------------------------------------------------------


def start_sweep(engine: Engine, query: SweepQuery, *, created_by: str,
                deadline_minutes: int = 60, now: datetime | None = None,
                reach: Reach = None) -> Sweep:
    """Answer ``query`` from the stored inventories, record the sweep, ask for refreshes.

    One transaction: the sweep, one result per asset and the refresh jobs exist together
    or not at all.  Returns the sweep with every asset's first answer.  ``reach``: the
    assets of the user starting it, limited to part of the estate -- the sweep covers
    (and asks agents and SSH targets to confirm) those only; None: every asset.
    """
    if deadline_minutes < 1:
        raise SweepError("the deadline must be at least one minute")
    now = now or now_utc()
    deadline = now + timedelta(minutes=deadline_minutes)
    with engine.begin() as conn:
        vulns, targets = resolve(conn, query)
        judged = (_judge_rows(conn, _package_rows(conn, targets), targets) if targets
                  else _Judged())
        _add_reported(conn, vulns, judged)
        _add_windows(conn, vulns, judged)
        covered = (select(assets.c.id, assets.c.name, assets.c.ssh_target,
                          assets.c.last_inventory_id, inventories.c.complete)
                   .outerjoin(inventories, inventories.c.id == assets.c.last_inventory_id))
        if reach is not None:
            covered = covered.where(within(assets.c.id, reach))
        estate = conn.execute(covered.order_by(assets.c.id)).all()
        agent_of = dict(conn.execute(
            select(agents.c.asset_id, agents.c.id).where(
                agents.c.asset_id.is_not(None), agents.c.revoked_at.is_(None))
            .order_by(agents.c.id)).all())
        sweep_id = int(conn.execute(insert(sweeps).values(
            query=orjson.dumps(query.to_dict()).decode(), created_by=created_by,
            created_at=now, deadline=deadline, state=RUNNING,
            summary="{}").returning(sweeps.c.id)).scalar_one())
        results: list[AssetResult] = []
        rows: list[tuple[Any, ...]] = []
        job_rows: list[dict[str, Any]] = []
        stamp = stored_datetime(conn, sweep_results.c.updated_at, now)
        answers = _affected_answers(judged)
        details: dict[str | None, str] = {}  # the other answers' texts, by reason
        for asset_id, name, ssh_target, inventory_id, complete in estate:
            answer = answers.get(asset_id)
            if answer is not None:
                initial, reason = AFFECTED, None
                packages, detail = answer
            else:
                initial, packages, reason = _classify(judged, asset_id,
                                                      inventory_id is not None, bool(complete))
                known = details.get(reason)
                if known is None:  # no packages: the reason decides the text
                    known = details[reason] = _detail(packages, reason)
                detail = known
            agent_id = agent_of.get(asset_id)
            status = PENDING if agent_id is not None or ssh_target else initial
            results.append(AssetResult(asset_id, name, initial, status, packages, reason, now))
            rows.append((sweep_id, asset_id, initial, status, detail, stamp))
            if agent_id is not None:
                job_rows.append(_job(REFRESH_JOB, {"sweep_id": sweep_id}, now, deadline,
                                     asset_id=asset_id, agent_id=agent_id))
            elif ssh_target:
                # The ssh_scan handler (scans.scheduler) reads the target from the payload.
                job_rows.append(_job(SSH_JOB, {"sweep_id": sweep_id, "asset_id": asset_id,
                                               "target": ssh_target}, now, deadline,
                                     asset_id=asset_id))
        # COPY on PostgreSQL: 100,000 results in a fraction of executemany's 1.7 s (the
        # first answer's largest part on a large estate); the driver's own on SQLite.
        bulk_insert(conn, sweep_results, RESULT_COLUMNS, rows)
        for start in range(0, len(job_rows), _CHUNK):
            conn.execute(insert(jobs), job_rows[start:start + _CHUNK])
        initial_counts = _counts((r.initial for r in results), INITIAL)
        status_counts = _counts((r.status for r in results), STATUSES)
        state = DONE if not status_counts[PENDING] else RUNNING
        conn.execute(update(sweeps).where(sweeps.c.id == sweep_id).values(
            state=state, summary=_summary(vulns, initial_counts, status_counts, len(job_rows))))
        if state == DONE:  # nothing to confirm: finished as it started
            _finished(conn, sweep_id, vulns, status_counts, now)
    return Sweep(sweep_id, query, vulns, created_by, now, deadline, state, initial_counts,
                 status_counts, len(job_rows), results)


RESULT_COLUMNS = ("sweep_id", "asset_id", "initial", "status", "detail", "updated_at")


def _job(kind: str, payload: dict[str, Any], now: datetime, deadline: datetime, *,
         asset_id: int, agent_id: int | None = None) -> dict[str, Any]:
    return {"kind": kind, "payload": orjson.dumps(payload).decode(), "state": "queued",
            "agent_id": agent_id, "asset_id": asset_id, "group_id": None,
            "priority": JOB_PRIORITY, "run_after": now, "deadline": deadline, "attempts": 0,
            "max_attempts": 3, "created_at": now}


def _detail(packages: list[dict[str, Any]], reason: str | None) -> str:
    return orjson.dumps({"packages": packages, "reason": reason}).decode()


def _counts(values: Iterable[str], names: Sequence[str]) -> dict[str, int]:
    seen = Counter(values)
    return {n: seen.get(n, 0) for n in names}


def _summary(vulns: Sequence[str], initial: dict[str, int], status: dict[str, int],
             jobs_: int) -> str:
    return orjson.dumps({"vulns": list(vulns), "initial": initial, "status": status,
                         "jobs": jobs_}).decode()


# ---------------------------------------------------------------------------------------
# Following a sweep: refreshed inventories, deadlines
# ---------------------------------------------------------------------------------------


def _recount(conn: Connection, sweep_id: int, now: datetime) -> bool:
    """Store the sweep's counts again (done when nothing is pending); True when done."""
    row = conn.execute(select(sweeps.c.summary).where(sweeps.c.id == sweep_id)).one()
    summary = orjson.loads(row.summary or "{}")
    rows = conn.execute(select(sweep_results.c.initial, sweep_results.c.status)
                        .where(sweep_results.c.sweep_id == sweep_id)).all()
    status = _counts((r.status for r in rows), STATUSES)
    initial = _counts((r.initial for r in rows), INITIAL)
    done = status[PENDING] == 0
    vulns = summary.get("vulns", ())
    conn.execute(update(sweeps).where(sweeps.c.id == sweep_id).values(
        state=DONE if done else RUNNING,
        summary=_summary(vulns, initial, status, summary.get("jobs", 0))))
    if done:
        # Callers recount running sweeps only: this is the moment it finished.
        _finished(conn, sweep_id, vulns, status, now)
        # Nobody needs the answers any more: agents and workers skip the leftovers.
        _cancel_jobs(conn, sweep_id, now)
    return done


def _finished(conn: Connection, sweep_id: int, vulns: Sequence[str],
              status: dict[str, int], now: datetime) -> None:
    """The ``sweep_finished`` event, in the transaction that marks the sweep done."""
    record_event(conn, SWEEP_FINISHED, at=now,
                 detail={"sweep_id": sweep_id, "vulns": list(vulns), "counts": status})


def _sweep_jobs(conn: Connection, sweep_id: int, created_at: datetime,
                asset_ids: Sequence[int] | None = None) -> list[Any]:
    """The refresh jobs of a sweep (their payload names it)."""
    stmt = select(jobs.c.id, jobs.c.asset_id, jobs.c.state, jobs.c.payload).where(
        jobs.c.kind.in_((REFRESH_JOB, SSH_JOB)), jobs.c.created_at >= created_at)
    out: list[Any] = []
    ids = list(asset_ids) if asset_ids is not None else [None]
    for start in range(0, len(ids), _CHUNK):
        chunk = stmt if asset_ids is None else stmt.where(
            jobs.c.asset_id.in_(ids[start:start + _CHUNK]))
        out.extend(r for r in conn.execute(chunk)
                   if orjson.loads(r.payload).get("sweep_id") == sweep_id)
    return out


def _cancel_jobs(conn: Connection, sweep_id: int, now: datetime) -> None:
    row = conn.execute(select(sweeps.c.created_at).where(sweeps.c.id == sweep_id)).one()
    queued = [j.id for j in _sweep_jobs(conn, sweep_id, row.created_at) if j.state == "queued"]
    for start in range(0, len(queued), _CHUNK):
        conn.execute(update(jobs).where(jobs.c.id.in_(queued[start:start + _CHUNK]))
                     .values(state="cancelled", finished_at=now,
                             error="the sweep it was for is done"))


def update_sweeps_for_asset(conn: Connection, asset_id: int) -> int:
    """Settle the asset's pending results in running sweeps from its latest inventory.

    Called by the match job once an inventory is matched.  Only an inventory received
    after the sweep started counts (that is what "confirmed" means); the asset's
    ``asset_packages`` are judged against the sweep's query again.  Returns how many
    sweep results changed.
    """
    pending = conn.execute(
        select(sweeps.c.id, sweeps.c.query, sweeps.c.created_at)
        .join(sweep_results, sweep_results.c.sweep_id == sweeps.c.id)
        .where(sweep_results.c.asset_id == asset_id, sweep_results.c.status == PENDING,
               sweeps.c.state == RUNNING)).all()
    if not pending:
        return 0
    inv = conn.execute(
        select(inventories.c.received_at, inventories.c.complete)
        .join(assets, assets.c.last_inventory_id == inventories.c.id)
        .where(assets.c.id == asset_id)).first()
    if inv is None:
        return 0
    received = aware(inv.received_at)
    assert received is not None
    now = now_utc()
    changed = 0
    for sweep in pending:
        started = aware(sweep.created_at)
        assert started is not None
        if received < started:
            continue  # matched an inventory older than the sweep: still not confirmed
        try:
            vulns, targets = resolve(conn, SweepQuery.from_dict(orjson.loads(sweep.query)))
        except SweepError:
            # The knowledge base lost the vulnerability: nothing is affected.
            vulns, targets = (), {}
        judged = (_judge_rows(conn, _package_rows(conn, targets, [asset_id]), targets)
                  if targets else _Judged())
        _add_windows(conn, vulns, judged, [asset_id])
        answer, packages, reason = _classify(judged, asset_id, True, bool(inv.complete))
        status = CONFIRMED if answer == AFFECTED else answer
        conn.execute(update(sweep_results).where(
            sweep_results.c.sweep_id == sweep.id, sweep_results.c.asset_id == asset_id)
            .values(status=status, detail=_detail(packages, reason), updated_at=now))
        _recount(conn, sweep.id, now)
        changed += 1
    return changed


def close_sweeps(engine: Engine, now: datetime | None = None, *,
                 sweep_id: int | None = None) -> int:
    """Settle what can no longer be confirmed; how many results changed.

    A pending asset whose refresh job failed for good is ``unreachable``; at the
    deadline every other pending asset is ``timed_out``.  A sweep with nothing pending
    is ``done``.  Run periodically (the worker's idle loop) and by whoever follows a
    sweep (the events stream, ``patchpilot sweep --wait``): reads only, unless
    something is due.
    """
    now = now or now_utc()
    changed = 0
    with engine.begin() as conn:
        stmt = select(sweeps.c.id, sweeps.c.created_at, sweeps.c.deadline).where(
            sweeps.c.state == RUNNING)
        if sweep_id is not None:
            stmt = stmt.where(sweeps.c.id == sweep_id)
        for sweep in conn.execute(stmt).all():
            pending = conn.execute(select(sweep_results.c.asset_id).where(
                sweep_results.c.sweep_id == sweep.id,
                sweep_results.c.status == PENDING)).scalars().all()
            deadline = aware(sweep.deadline)
            assert deadline is not None
            failed = {j.asset_id for j in _sweep_jobs(conn, sweep.id, sweep.created_at,
                                                      pending) if j.state == "failed"}
            past = now >= deadline
            moves = [{"b_sweep": sweep.id, "b_asset": a,
                      "status": UNREACHABLE if a in failed else TIMED_OUT}
                     for a in pending if a in failed or past]
            if moves:
                conn.execute(update(sweep_results).where(
                    sweep_results.c.sweep_id == bindparam("b_sweep"),
                    sweep_results.c.asset_id == bindparam("b_asset"),
                    sweep_results.c.status == PENDING)
                    .values(status=bindparam("status"), updated_at=now), moves)
                changed += len(moves)
            if moves or not pending:
                _recount(conn, sweep.id, now)
    return changed


# ---------------------------------------------------------------------------------------
# Reading sweeps
# ---------------------------------------------------------------------------------------


def _from_row(row: Any) -> Sweep:
    summary = orjson.loads(row.summary or "{}")
    return Sweep(row.id, SweepQuery.from_dict(orjson.loads(row.query)),
                 tuple(summary.get("vulns", ())), row.created_by, aware(row.created_at),  # type: ignore[arg-type]
                 aware(row.deadline), row.state,  # type: ignore[arg-type]
                 summary.get("initial") or _counts((), INITIAL),
                 summary.get("status") or _counts((), STATUSES), summary.get("jobs", 0))


def get_sweep(conn: Connection, sweep_id: int, *, results: bool = True,
              reach: Reach = None) -> Sweep | None:
    """One sweep (with every asset's result unless ``results`` is False), or None; with
    ``reach``, the results and counts of those assets only."""
    row = conn.execute(select(sweeps).where(sweeps.c.id == sweep_id)).first()
    if row is None:
        return None
    sweep = _from_row(row)
    if reach is not None:
        _narrow_counts(conn, [sweep], reach)
    if results:
        stmt = (select(sweep_results, assets.c.name)
                .join(assets, assets.c.id == sweep_results.c.asset_id)
                .where(sweep_results.c.sweep_id == sweep_id))
        if reach is not None:
            stmt = stmt.where(within(sweep_results.c.asset_id, reach))
        for r in conn.execute(stmt.order_by(sweep_results.c.asset_id)):
            detail = orjson.loads(r.detail or "{}")
            sweep.results.append(AssetResult(r.asset_id, r.name, r.initial, r.status,
                                             detail.get("packages", []), detail.get("reason"),
                                             aware(r.updated_at)))
    return sweep


def list_sweeps(conn: Connection, *, limit: int = 100, offset: int = 0,
                reach: Reach = None) -> list[Sweep]:
    """Sweeps, newest first, with their counts (of the assets of ``reach`` only, unless
    None)."""
    found = [_from_row(r) for r in conn.execute(
        select(sweeps).order_by(sweeps.c.id.desc()).limit(limit).offset(offset))]
    if reach is not None:
        _narrow_counts(conn, found, reach)
    return found


def _narrow_counts(conn: Connection, found: list[Sweep], reach: frozenset[int]) -> None:
    """Each sweep's counts and refresh jobs as those of the assets of ``reach``: one
    ``GROUP BY`` over their results, one read of their jobs."""
    if not found:
        return
    r = sweep_results
    counted: dict[int, tuple[Counter[str], Counter[str]]] = {
        s.id: (Counter(), Counter()) for s in found}
    for sweep_id, initial, status, n in conn.execute(
            select(r.c.sweep_id, r.c.initial, r.c.status, func.count())
            .where(r.c.sweep_id.in_(list(counted)), within(r.c.asset_id, reach))
            .group_by(r.c.sweep_id, r.c.initial, r.c.status)):
        counted[sweep_id][0][initial] += int(n)
        counted[sweep_id][1][status] += int(n)
    asked: Counter[int] = Counter()
    if reach:
        for payload, in conn.execute(select(jobs.c.payload).where(
                jobs.c.kind.in_((REFRESH_JOB, SSH_JOB)),
                jobs.c.created_at >= min(s.created_at for s in found),
                within(jobs.c.asset_id, reach))):
            asked[orjson.loads(payload).get("sweep_id")] += 1
    for s in found:
        initial, status = counted[s.id]
        s.initial = {n: initial.get(n, 0) for n in INITIAL}
        s.status = {n: status.get(n, 0) for n in STATUSES}
        s.jobs = asked.get(s.id, 0)


def progress(engine: Engine, sweep_id: int, reach: Reach = None) -> dict[str, Any] | None:
    """The sweep's counts and state (what the live view sends; of the assets of
    ``reach`` only, unless None), or None."""
    with engine.connect() as conn:
        sweep = get_sweep(conn, sweep_id, results=False, reach=reach)
    return sweep.progress() if sweep is not None else None
