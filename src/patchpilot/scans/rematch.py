"""Re-matching the estate after a knowledge-base update, each distinct package version once.

A feed update can make packages that nobody touched vulnerable (a new advisory) or clear
them (a withdrawn one).  The latest inventory of every asset is already stored as
``asset_packages`` rows; an estate has far fewer distinct (ecosystem, name, version)
triples than package instances (DESIGN.md, "Matching dedups work"), so:

1. the distinct triples are read with one ``SELECT DISTINCT`` and matched in one call of
   the matcher;
2. findings are built once per distinct match (one batch of enrichment queries), then
   specialised per set of installed binaries (the upgrade command and evidence name the
   binaries a host has, e.g. ``libssl3`` behind source ``openssl``);
3. each asset's findings are applied with the normal lifecycle as the ``matcher``'s
   report, marked ``new_from_feed``; the re-match is *complete* exactly when the stored
   inventory was, so a partial inventory never closes a finding.  A complete report
   closes only the matcher's findings: the host's own pending updates (producer
   ``host-updates``, which the ``asset_packages`` rows cannot reproduce) and imported
   reports are left as they are.

A re-match of a large estate is divided (``pipeline``: chunk jobs that any number of
workers share): each chunk re-matches the assets of one id range, ``lo`` to ``hi``, with the
same steps over the distinct triples of its own assets.  A :class:`RematchMemo` keeps the
matches and findings of the triples (and of the Windows decision keys) across the chunks
of one division that a worker process runs, so each process matches a triple once, not
each chunk: the per-triple economy, per process rather than per estate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import ColumnElement, Engine, and_, or_, select, true, tuple_
from sqlalchemy.engine import Connection

from patchpilot.clock import aware
from patchpilot.db.tables import (
    advisories,
    affected,
    asset_packages,
    assets,
    feed_state,
    findings,
    inventories,
)
from patchpilot.findings.build import build_findings, with_commands
from patchpilot.findings.installations import installations_of
from patchpilot.findings.lifecycle import LifecycleCounts, apply_findings_many
from patchpilot.findings.model import FIXED, MATCHER, MSRC, WINDOWS, Finding
from patchpilot.findings.owned import has_owner, judge_owned, owned_facts, owners_of
from patchpilot.findings.windows import FactsCache, windows_findings, windows_host
from patchpilot.inventory.model import WindowsInfo
from patchpilot.knowledge.matcher import Match, ecosystems_with_advisories, match_packages
from patchpilot.knowledge.windows import decision_key, knowledge_for, match_windows
from patchpilot.models import Ecosystem, Package, PackageOwner

log = logging.getLogger(__name__)

_CHUNK = 500
# Assets whose findings are applied per transaction: one commit each would cost more than
# the work on a 10,000-asset estate, and a transaction of all would hold SQLite's write
# lock (agents' uploads wait) for the whole re-match.
_ASSETS_PER_TRANSACTION = 200

Triple = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class AssetRange:
    """The assets with ids from ``lo`` to ``hi`` (inclusive; None: unbounded)."""

    lo: int | None = None
    hi: int | None = None

    def of(self, column: Any) -> ColumnElement[bool]:
        """The condition that ``column`` (an asset id) is in the range."""
        conds = ([column >= self.lo] if self.lo is not None else []) + (
            [column <= self.hi] if self.hi is not None else [])
        return and_(*conds) if conds else true()


EVERY_ASSET = AssetRange()

_FindingKey = tuple[str, str, str, str, str]


class RematchMemo:
    """The matches and findings of distinct triples and Windows decision keys, kept for the
    chunks of one divided re-match that run in this process (threads share it: a triple two
    threads match at once is matched twice, harmlessly).  The knowledge base is read when a
    triple is first met, as the undivided re-match reads it once at its start."""

    def __init__(self) -> None:
        self.matches: dict[Triple, list[Match]] = {}  # [] for a triple nothing affects
        self.finding_of: dict[_FindingKey, Finding] = {}
        # A triple's findings as the hosts with the same binaries behind it have them.
        self.variants: dict[tuple[Triple, str], list[Finding]] = {}
        self.decided: dict[tuple[object, ...], list[Finding]] = {}
        self.facts = FactsCache()  # each CVE's records read once for every host
        # FactsCache fills two dicts one after the other: one builder at a time.
        self.windows_lock = threading.Lock()


@dataclass(slots=True)
class RematchResult:
    """What a re-match did."""

    assets: int = 0  # assets whose findings were brought up to date
    distinct: int = 0  # distinct (ecosystem, name, version) triples matched (once each)
    matched: int = 0  # of those, triples with at least one vulnerability
    findings: int = 0  # findings applied, over all assets
    new: int = 0  # new findings (marked new_from_feed)
    reopened: int = 0
    fixed: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (a job's result)."""
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]

    def add(self, counts: LifecycleCounts, found: int) -> None:
        """Count one asset's application."""
        self.assets += 1
        self.findings += found
        self.new += counts.new
        self.reopened += counts.reopened
        self.fixed += counts.fixed


def _changed_keys(conn: Connection, since: datetime) -> list[tuple[str, str]]:
    """The (ecosystem, name) keys of advisories of sources updated since ``since``."""
    sources = select(feed_state.c.source).where(feed_state.c.updated_at >= since)
    return [tuple(r) for r in conn.execute(  # type: ignore[misc]
        select(affected.c.ecosystem, affected.c.name).distinct()
        .join(advisories, advisories.c.pk == affected.c.advisory_pk)
        .where(advisories.c.source.in_(sources)))]


def _assets_with_keys(conn: Connection, keys: list[tuple[str, str]],
                      within: AssetRange = EVERY_ASSET) -> set[int]:
    out: set[int] = set()
    key_col = tuple_(asset_packages.c.ecosystem, asset_packages.c.name)
    for start in range(0, len(keys), _CHUNK):
        out.update(conn.execute(select(asset_packages.c.asset_id).distinct()
                                .where(key_col.in_(keys[start:start + _CHUNK]),
                                       within.of(asset_packages.c.asset_id))).scalars())
    return out


def assets_changed_since(conn: Connection, since: datetime) -> set[int]:
    """The assets a re-match ``changed_since`` concerns: those having a package that an
    advisory of a source updated since then names."""
    return _assets_with_keys(conn, _changed_keys(conn, aware(since)))  # type: ignore[arg-type]


def _distinct_triples(conn: Connection, only: set[int] | None,
                      within: AssetRange = EVERY_ASSET) -> list[Triple]:
    cols = (asset_packages.c.ecosystem, asset_packages.c.name, asset_packages.c.version)
    if only is None:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            select(*cols).distinct().where(within.of(asset_packages.c.asset_id)))]
    ids = sorted(only)
    out: set[Triple] = set()
    for start in range(0, len(ids), _CHUNK * 10):
        out.update(tuple(r) for r in conn.execute(  # type: ignore[misc]
            select(*cols).distinct().where(
                asset_packages.c.asset_id.in_(ids[start:start + _CHUNK * 10]))))
    return sorted(out)


def _installed(eco: str, name: str, version: str, installed_json: str) -> tuple[Package, ...]:
    """The installed packages behind one asset_packages row (binaries of a source, or
    copies of a language package with the OS package owning each, see
    ``owned.installed_entry``)."""
    out = []
    # See ``owned.installed_entry``: [name, version, arch], then the location of a
    # language package's copy, then the owning OS package's name and version.
    for bin_name, bin_version, arch, *rest in orjson.loads(installed_json):
        out.append(Package(Ecosystem(eco), bin_name, bin_version or version, arch=arch,
                           source_name=name if bin_name != name else None,
                           source_version=version if bin_version != version else None,
                           location=rest[0] if rest else None,
                           owner=PackageOwner(rest[1], rest[2]) if len(rest) > 2 else None))
    return tuple(out)


def _specialise(f: Finding, m: Match, packages: tuple[Package, ...]) -> Finding:
    """The finding of a distinct match as one host has it (its binaries, its
    installations and their commands); the lifecycle merges one key's versions."""
    return with_commands(replace(
        f, installations=installations_of(m.ecosystem, m.version, m.fixed, packages),
        evidence=replace(f.evidence, packages=tuple(sorted({p.name for p in packages})),
                         owners=owners_of(packages))))


_OwnedRow = tuple[int, Triple, tuple[Package, ...], list[Match]]


def _owned_findings(conn: Connection, rows: list[_OwnedRow],
                    finding_of: dict[tuple[str, str, str, str, str], Finding]
                    ) -> dict[int, list[Finding]]:
    """The findings of rows holding a language package an OS package owns, judged per
    asset as a scan judges them (``findings.owned``): the distribution's feed, else the
    owner's changelog, decides whether the upstream match stands."""
    facts = owned_facts(conn, [asset_id for asset_id, *_ in rows])
    loaded = ecosystems_with_advisories(conn, {d for d, _ in facts.values() if d})
    out: dict[int, list[Finding]] = defaultdict(list)
    for asset_id, (eco, name, version), packages, matches in rows:
        distribution, changelog = facts.get(asset_id, (None, {}))
        kept, _ = judge_owned(conn, [m._replace(packages=packages) for m in matches],
                              distribution, changelog, loaded=distribution in loaded)
        out[asset_id].extend(
            _specialise(finding_of[(m.vuln_id, eco, name, version, m.advisory_id)], m,
                        m.packages) for m in kept)
    return out


def _rows_of(conn: Connection, keys: list[tuple[str, str]], within: AssetRange
             ) -> Iterator[Any]:
    """The ``asset_packages`` rows (asset id, ecosystem, name, version, installed) of
    ``within`` that may hold a matched key (``keys``, sorted): all of a bounded range's --
    a chunk reads its own assets' rows by ``ix_asset_packages_asset`` rather than every
    asset's rows of the keys, the caller skipping the unmatched ones -- else those of the
    keys, a few hundred keys a statement."""
    cols = (asset_packages.c.asset_id, asset_packages.c.ecosystem, asset_packages.c.name,
            asset_packages.c.version, asset_packages.c.installed)
    if within.lo is not None and within.hi is not None:
        if keys:
            yield from conn.execute(select(*cols).where(within.of(asset_packages.c.asset_id)))
        return
    key_col = tuple_(asset_packages.c.ecosystem, asset_packages.c.name)
    for start in range(0, len(keys), _CHUNK):
        yield from conn.execute(select(*cols).where(key_col.in_(keys[start:start + _CHUNK]),
                                                    within.of(asset_packages.c.asset_id)))


def rematch_all(engine: Engine, *, changed_since: datetime | None = None,
                summary: bool = True, within: AssetRange = EVERY_ASSET,
                memo: RematchMemo | None = None) -> RematchResult:
    """Re-match the latest inventory of every asset against the current knowledge base.

    With ``changed_since``, only assets having a package that an advisory of a source
    updated since then names are re-matched (a cheaper follow-up of a small update; an
    advisory *removed* from a source leaves no key behind, so a full re-match — the
    default — is the one that also closes findings of withdrawn advisories).

    With ``summary`` false the re-matched assets' summary rows are not refreshed here: the
    caller re-prioritises next, which refreshes them once from the end state (a refresh
    here would count findings that have no priority yet, and be redone at once).

    ``within`` limits it to the assets of one id range (a chunk of a divided re-match);
    the chunks of a division add up to the whole.  ``memo`` carries what earlier chunks
    matched (``distinct`` then counts only the triples this call matched).
    """
    memo = memo or RematchMemo()
    started = time.perf_counter()
    out = RematchResult()
    with engine.connect() as conn:
        only = (_assets_with_keys(conn, _changed_keys(conn, aware(changed_since)), within)  # type: ignore[arg-type]
                if changed_since is not None else None)
        complete = {a: bool(c) for a, c in conn.execute(
            select(assets.c.id, inventories.c.complete)
            .join(inventories, inventories.c.id == assets.c.last_inventory_id)
            .where(within.of(assets.c.id)))}
        if only is not None:
            complete = {a: c for a, c in complete.items() if a in only}
        # 1. Every distinct triple, matched once (those no earlier chunk matched).
        triples = _distinct_triples(conn, only, within)
        todo = [t for t in triples if t not in memo.matches]
        out.distinct = len(todo)
        result = match_packages(conn, [Package(Ecosystem(e), n, v) for e, n, v in todo])
        fresh: dict[Triple, list[Match]] = defaultdict(list)
        for m in result.matches:
            fresh[(m.ecosystem, m.name, m.version)].append(m)
        # 2. Findings built once per distinct match.
        # (Per version: each host's versions of a package are merged by the lifecycle.)
        built = build_findings(conn, result.matches, merge=False)
        memo.finding_of.update(((f.vuln_id, f.ecosystem, f.package,
                                 f.evidence.installed_version, f.evidence.advisory_id), f)
                               for f in built)
        memo.matches.update(fresh)
        for t in todo:
            memo.matches.setdefault(t, [])
        finding_of = memo.finding_of
        by_triple = {t: memo.matches[t] for t in triples if memo.matches.get(t)}
        out.matched = len(by_triple)
        # 3. Which assets have which matched triples (only the rows that matched).
        keys = sorted({(e, n) for e, n, _ in by_triple})
        per_asset: dict[int, list[Finding]] = defaultdict(list)
        variants = memo.variants
        owned_rows: list[_OwnedRow] = []
        for asset_id, eco, name, version, installed in _rows_of(conn, keys, within):
            if asset_id not in complete:
                continue
            triple = (eco, name, version)
            matches = by_triple.get(triple)
            if not matches:
                continue
            variant = variants.get((triple, installed))
            if variant is None and has_owner(installed):
                # A copy an OS package owns: judged per asset (its owners' changelogs).
                owned_rows.append((asset_id, triple,
                                   _installed(eco, name, version, installed), matches))
                continue
            if variant is None:
                # Hosts with the same binaries behind a triple share its findings.
                packages = _installed(eco, name, version, installed)
                variant = variants[(triple, installed)] = [
                    _specialise(finding_of[(m.vuln_id, eco, name, version,
                                            m.advisory_id)], m, packages)
                    for m in matches]
            per_asset[asset_id].extend(variant)
        if owned_rows:
            for asset_id, found in _owned_findings(conn, owned_rows, finding_of).items():
                per_asset[asset_id].extend(found)
        # Assets where the matcher has something to close (ix_findings_producer).
        p = findings.c.producer
        live = set(conn.execute(select(findings.c.asset_id).distinct().where(
            findings.c.state != FIXED, within.of(findings.c.asset_id),
            or_(p == MATCHER, p.like(f"{MATCHER},%"), p.like(f"%,{MATCHER}"),
                p.like(f"%,{MATCHER},%")))).scalars())
    # Shared Finding objects are serialised once for all the assets that have them.
    values_cache: dict[Any, dict[str, Any]] = {}
    batch: list[tuple[int, list[Finding], bool]] = []
    for asset_id, is_complete in complete.items():
        if asset_id not in per_asset and asset_id not in live:
            continue  # nothing found, nothing to close: no transaction at all
        batch.append((asset_id, per_asset.get(asset_id, []), is_complete))
        if len(batch) >= _ASSETS_PER_TRANSACTION:
            _flush(engine, batch, values_cache, out, summary)
    _flush(engine, batch, values_cache, out, summary)
    if only is None:
        # Windows hosts against the MSRC documents (an MSRC update re-matches everything).
        _rematch_windows(engine, out, summary, within, memo)
    out.seconds = time.perf_counter() - started
    return out


def rematch_windows(engine: Engine, *, summary: bool = True) -> RematchResult:
    """Re-match only the stored Windows inventories (what :func:`rematch_all` does for
    them after its packages)."""
    started = time.perf_counter()
    out = RematchResult()
    _rematch_windows(engine, out, summary)
    out.seconds = time.perf_counter() - started
    return out


def _windows_part(document: str, inventory_id: int) -> WindowsInfo | None:
    """The ``windows`` part of a stored inventory (only it is validated: a re-match reads
    thousands); None when there is none or it cannot be read (logged)."""
    try:
        raw = orjson.loads(document).get("windows")
        return WindowsInfo.model_validate(raw) if raw is not None else None
    except (orjson.JSONDecodeError, AttributeError, ValidationError) as exc:
        log.warning("inventory %d: its windows part cannot be read, not re-matched: %s",
                    inventory_id, exc)
        return None


def _rematch_windows(engine: Engine, out: RematchResult, summary: bool,
                     within: AssetRange = EVERY_ASSET, memo: RematchMemo | None = None
                     ) -> None:
    """Re-match the stored Windows inventories (of ``within``) against the MSRC knowledge,
    as the ``msrc`` producer's report.  Each distinct decision key (product, build, UBR and
    the installed KBs any fix names: :func:`knowledge.windows.decision_key`) is matched and
    its findings built once, whatever number of hosts (of the range) share it."""
    batch: list[tuple[int, list[Finding], bool]] = []
    memo = memo or RematchMemo()
    decided = memo.decided
    with engine.connect() as conn:
        knowledge = knowledge_for(conn)
        rows = conn.execute(
            select(assets.c.id, inventories.c.id, inventories.c.complete,
                   inventories.c.document)
            .join(inventories, inventories.c.id == assets.c.last_inventory_id)
            .where(assets.c.ecosystem == WINDOWS, within.of(assets.c.id))).all()
        for asset_id, inventory_id, complete, document in rows:
            info = _windows_part(document, inventory_id)
            if info is None:
                continue
            host = windows_host(info)
            key = decision_key(knowledge, host)
            found = decided.get(key)
            if found is None:
                with memo.windows_lock:
                    found = decided[key] = windows_findings(
                        conn, match_windows(conn, host, knowledge), memo.facts)
            batch.append((asset_id, found, bool(complete)))
    values_cache: dict[Any, dict[str, Any]] = {}
    for start in range(0, len(batch), _ASSETS_PER_TRANSACTION):
        part = batch[start:start + _ASSETS_PER_TRANSACTION]
        for (_, found, _), counts in zip(part, apply_findings_many(
                engine, part, from_feed_update=True, values_cache=values_cache,
                producer=MSRC, summary=summary), strict=True):
            out.add(counts, len(found))


def _flush(engine: Engine, batch: list[tuple[int, list[Finding], bool]],
           values_cache: dict[Any, dict[str, Any]], out: RematchResult,
           summary: bool = True) -> None:
    """Apply a batch of assets' findings in one transaction (and empty the batch)."""
    if not batch:
        return
    for (_, found, _), counts in zip(batch, apply_findings_many(
            engine, batch, from_feed_update=True, values_cache=values_cache,
            producer=MATCHER, summary=summary), strict=True):
        out.add(counts, len(found))
    batch.clear()

