"""Match installed packages against the knowledge base.

The estate has far fewer distinct ``(ecosystem, name, version)`` triples than package
instances, so each distinct triple is judged once and the verdict shared by every package
that has it.  The matcher reads only the ``affected`` rows whose search key
``(ecosystem, normalised name)`` a host has (one query per ecosystem), never the whole
knowledge base.

When several sources judge the same vulnerability in the same package, the source with
the highest priority decides (the distribution's own tracker over data derived from it):
that is how a fix the distribution backported into an older version, or a release it
marks as never affected, wins over an upstream range.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from patchpilot.db.tables import advisories, advisory_vulns, affected
from patchpilot.errors import VersionError
from patchpilot.knowledge.names import normalize_name
from patchpilot.knowledge.versions import VersionKey, version_key
from patchpilot.models import AffectedStatus, Package, VulnId

_NAMES_PER_QUERY = 5000


@dataclass(frozen=True, slots=True)
class Match:
    """One vulnerability found in one distinct package version of a host."""

    vuln_id: VulnId
    ecosystem: str
    name: str  # the name advisories use (the source package on Debian/Ubuntu)
    version: str  # the version judged
    packages: tuple[Package, ...]  # the installed packages behind this name and version
    advisory_pk: int
    advisory_id: str
    feed: str
    source: str
    affected_range: str  # human-readable, e.g. ">= 1.0, < 1.2.3"
    fixed: str | None  # the version that fixes it; None: no fix published (*unfixed*)
    distro_severity: str | None = None

    @property
    def unfixed(self) -> bool:
        """True when no fixed version exists yet."""
        return self.fixed is None


@dataclass(frozen=True, slots=True)
class Undetermined:
    """A package whose version could not be read, so it could not be judged."""

    package: Package
    reason: str
    advisory_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Everything the matcher found for a set of packages."""

    matches: tuple[Match, ...]
    undetermined: tuple[Undetermined, ...]
    packages: int  # package instances given
    distinct: int  # distinct (ecosystem, name, version) triples judged


_Bound = tuple[VersionKey | None, VersionKey | None, VersionKey | None]


@lru_cache(maxsize=131072)
def _parsed_ranges(ecosystem: str, ranges_json: str) -> tuple[tuple[_Bound, tuple], ...]:
    """The row's ranges with bounds parsed once per process (rows repeat across hosts)."""
    out = []
    for intro, fixed, last in orjson.loads(ranges_json):
        try:
            keys = (
                None if intro in (None, "", "0") else version_key(ecosystem, intro),
                version_key(ecosystem, fixed) if fixed else None,
                version_key(ecosystem, last) if last else None,
            )
        except VersionError:
            continue  # a bound no rule can read says nothing; never guess "affected"
        out.append((keys, (intro, fixed, last)))
    return tuple(out)


@lru_cache(maxsize=65536)
def _parsed_versions(ecosystem: str, versions_json: str) -> frozenset:
    keys = set()
    for v in orjson.loads(versions_json):
        keys.add(v)
        try:
            keys.add(version_key(ecosystem, v))
        except VersionError:
            pass
    return frozenset(keys)


def _range_text(intro: str | None, fixed: str | None, last: str | None) -> str:
    parts = []
    if intro not in (None, "", "0"):
        parts.append(f">= {intro}")
    if fixed:
        parts.append(f"< {fixed}")
    elif last:
        parts.append(f"<= {last}")
    return ", ".join(parts) if parts else "all versions"


def judge(ecosystem: str, version: str, key: VersionKey, ranges_json: str,
          versions_json: str | None) -> tuple[bool, str, str | None]:
    """Whether ``version`` is affected by one affected row: (affected, range text, fix)."""
    fixes_above: list[tuple[VersionKey, str]] = []
    for (ik, fk, lk), (intro, fixed, last) in _parsed_ranges(ecosystem, ranges_json):
        if fk is not None and key < fk:
            fixes_above.append((fk, fixed))
        if ik is not None and key < ik:
            continue
        if fk is not None:
            if key < fk:
                return True, _range_text(intro, fixed, last), fixed
            continue
        if lk is not None:
            if not key > lk:
                return True, _range_text(intro, fixed, last), None
            continue
        return True, _range_text(intro, fixed, last), None  # open-ended: no fix yet
    if versions_json:
        listed = _parsed_versions(ecosystem, versions_json)
        if version in listed or key in listed:
            fix = min(fixes_above)[1] if fixes_above else None
            return True, f"= {version} (listed)", fix
    return False, "", None


def _candidate_rows(conn: Connection, ecosystem: str, names: Sequence[str]) -> list:
    stmt = (select(affected.c.name, affected.c.status, affected.c.ranges, affected.c.versions,
                   affected.c.severity, affected.c.advisory_pk, advisories.c.id,
                   advisories.c.feed, advisories.c.source, advisories.c.priority)
            .join(advisories, advisories.c.pk == affected.c.advisory_pk)
            .where(affected.c.ecosystem == ecosystem)
            .where(affected.c.name.in_(bindparam("names", expanding=True))))
    rows: list = []
    for start in range(0, len(names), _NAMES_PER_QUERY):
        rows.extend(conn.execute(stmt, {"names": list(names[start:start + _NAMES_PER_QUERY])}))
    return rows


def _vuln_ids(conn: Connection, pks: Iterable[int]) -> dict[int, tuple[VulnId, ...]]:
    pks = sorted(set(pks))
    found: dict[int, list[VulnId]] = defaultdict(list)
    stmt = (select(advisory_vulns.c.advisory_pk, advisory_vulns.c.vuln_id)
            .where(advisory_vulns.c.advisory_pk.in_(bindparam("pks", expanding=True))))
    for start in range(0, len(pks), _NAMES_PER_QUERY):
        for pk, vuln in conn.execute(stmt, {"pks": pks[start:start + _NAMES_PER_QUERY]}):
            found[pk].append(VulnId(vuln))
    return {pk: tuple(v) for pk, v in found.items()}


def match_packages(conn: Connection, packages: Iterable[Package]) -> MatchResult:
    """Judge every package against the knowledge base."""
    packages = list(packages)
    # (ecosystem, name, version) -> packages sharing it.
    triples: dict[tuple[str, str, str], list[Package]] = defaultdict(list)
    for pkg in packages:
        name = normalize_name(pkg.ecosystem, pkg.match_name)
        triples[(pkg.ecosystem, name, pkg.match_version)].append(pkg)
    by_ecosystem: dict[str, set[str]] = defaultdict(set)
    for eco, name, _ in triples:
        by_ecosystem[eco].add(name)

    rows_by_key: dict[tuple[str, str], list] = defaultdict(list)
    for eco, names in by_ecosystem.items():
        for row in _candidate_rows(conn, eco, sorted(names)):
            rows_by_key[(eco, row.name)].append(row)
    vulns_of = _vuln_ids(conn, (r.advisory_pk for rows in rows_by_key.values() for r in rows))

    matches: list[Match] = []
    undetermined: list[Undetermined] = []
    for (eco, name, version), pkgs in triples.items():
        rows = rows_by_key.get((eco, name), ())
        try:
            key = version_key(eco, version)
        except VersionError as exc:
            ids = tuple(sorted({r.id for r in rows}))
            undetermined.extend(Undetermined(p, str(exc), ids) for p in pkgs)
            continue
        if not rows:
            continue
        # vuln -> the verdicts of the highest-priority source that speaks about it here.
        best: dict[VulnId, tuple[int, list]] = {}
        for row in rows:
            for vuln in vulns_of.get(row.advisory_pk, ()):
                seen = best.get(vuln)
                if seen is None or row.priority > seen[0]:
                    best[vuln] = (row.priority, [row])
                elif row.priority == seen[0]:
                    seen[1].append(row)
        for vuln, (_, deciding) in best.items():
            for row in deciding:
                if row.status != AffectedStatus.AFFECTED:
                    continue
                hit, range_text, fixed = judge(eco, version, key, row.ranges, row.versions)
                if hit:
                    matches.append(Match(
                        vuln_id=vuln, ecosystem=eco, name=name, version=version,
                        packages=tuple(pkgs), advisory_pk=row.advisory_pk,
                        advisory_id=row.id, feed=row.feed, source=row.source,
                        affected_range=range_text, fixed=fixed,
                        distro_severity=row.severity))
                    break
    return MatchResult(tuple(matches), tuple(undetermined), len(packages), len(triples))
