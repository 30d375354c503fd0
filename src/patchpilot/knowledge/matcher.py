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

import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import orjson
from sqlalchemy.engine import Connection

from patchpilot.errors import VersionError
from patchpilot.knowledge.cpe_names import CPE
from patchpilot.knowledge.names import normalize_name
from patchpilot.knowledge.versions import TRAINS, VersionKey, comparable, version_key
from patchpilot.models import AffectedStatus, Package, VulnId

_NAMES_PER_QUERY = 5000


class Match(NamedTuple):
    """One vulnerability found in one distinct package version of a host.

    A NamedTuple rather than a frozen dataclass: a host can have thousands of matches and
    a tuple is built at C speed.
    """

    vuln_id: VulnId
    ecosystem: str
    name: str  # the name advisories use (the source package on Debian/Ubuntu)
    version: str  # the version judged
    packages: tuple[Package, ...]  # the installed packages behind this name and version
    advisory_pk: int
    advisory_id: str
    feed: str
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


_Bound = tuple[VersionKey | None, VersionKey | None, VersionKey | None, bool]
_Range = tuple[_Bound, str | None, str]  # parsed bounds, the fix, the range as text


def _range_text(intro: str | None, fixed: str | None, last: str | None,
                after: bool = False) -> str:
    parts = []
    if intro not in (None, "", "0"):
        parts.append(f"> {intro}" if after else f">= {intro}")
    if fixed:
        parts.append(f"< {fixed}")
    elif last:
        parts.append(f"<= {last}")
    return ", ".join(parts) if parts else "all versions"


@lru_cache(maxsize=131072)
def _parsed_ranges(ecosystem: str, ranges_json: str) -> tuple[_Range, ...]:
    """The row's ranges with bounds parsed once per process (rows repeat across hosts).

    A range is ``[introduced, fixed, last_affected]``, with a fourth element true when the
    start is excluded (NVD's ``versionStartExcluding``: ``introduced < v``).
    """
    out = []
    for intro, fixed, last, *rest in orjson.loads(ranges_json):
        after = bool(rest and rest[0])
        try:
            keys = (
                None if intro in (None, "", "0") else version_key(ecosystem, intro),
                version_key(ecosystem, fixed) if fixed else None,
                version_key(ecosystem, last) if last else None,
                after,
            )
        except VersionError:
            continue  # a bound no rule can read says nothing; never guess "affected"
        out.append((keys, fixed, _range_text(intro, fixed, last, after)))
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


def judge(ecosystem: str, version: str, key: VersionKey, ranges_json: str,
          versions_json: str | None) -> tuple[bool, str, str | None]:
    """Whether ``version`` is affected by one affected row: (affected, range text, fix).

    Raises :class:`VersionError` when the answer depends on a bound ``version`` cannot be
    compared with (firmware of another train, :func:`~patchpilot.knowledge.versions.
    comparable`): the version is then *undetermined*, never guessed either way.
    """
    trains = key.tier == TRAINS
    fixes_above: list[tuple[VersionKey, str]] = []
    foreign: list[str] = []  # firmware ranges of another train: not judged
    for (ik, fk, lk, after), fixed, text in _parsed_ranges(ecosystem, ranges_json):
        if trains and not all(comparable(key, b) for b in (ik, fk, lk) if b is not None):
            foreign.append(text)
            continue
        if fk is not None and key < fk:
            fixes_above.append((fk, fixed))  # type: ignore[arg-type]
        if ik is not None and (key < ik or (after and key == ik)):
            continue
        if fk is not None:
            if key < fk:
                return True, text, fixed
            continue
        if lk is not None:
            if not key > lk:
                return True, text, None
            continue
        return True, text, None  # open-ended: no fix yet
    if versions_json:
        listed = _parsed_versions(ecosystem, versions_json)
        if version in listed or key in listed:
            fix = min(fixes_above)[1] if fixes_above else None
            return True, f"= {version} (listed)", fix
    if foreign:
        # No other range or listed version says affected: undetermined, not "clean".
        raise VersionError(ecosystem, version, "another firmware train than the range "
                           f"{foreign[0]!r} (letters differ at the same place)")
    return False, "", None


class Rule(NamedTuple):
    """One ``affected`` row of the knowledge base: what one source says about one package.

    Built from the driver's plain tuples at C speed (a host reads thousands of rows, and
    SQLAlchemy's Row objects would cost more than the query itself); ``ranges`` and
    ``versions`` stay JSON text, parsed once per process by :func:`judge`'s caches.
    """

    name: str  # normalised package name, the search key with the ecosystem
    status: str  # affected, not_affected, ...
    ranges: str  # JSON [[introduced, fixed, last_affected], ...]
    versions: str | None  # JSON list of versions named one by one
    severity: str | None  # the distribution's own rating, where it gives one
    advisory_pk: int
    advisory_id: str
    feed: str
    priority: int  # the source's priority: the highest one that speaks decides
    vulns: str  # the vulnerability ids it is about, space-separated

_ROW_SQL = ("SELECT name, status, ranges, versions, severity, advisory_pk, advisory_id, feed, "
            "priority, vulns FROM affected WHERE ecosystem = {mark} AND name IN ({marks})")


def _candidate_rows(conn: Connection, ecosystem: str, names: Sequence[str]) -> list[Rule]:
    """The affected rows of ``names`` in ``ecosystem`` (one index range scan per chunk)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.cursor()
    rows: list[Rule] = []
    make = Rule._make
    try:
        for start in range(0, len(names), _NAMES_PER_QUERY):
            chunk = list(names[start:start + _NAMES_PER_QUERY])
            cursor.execute(_ROW_SQL.format(mark=mark, marks=", ".join([mark] * len(chunk))),
                           [ecosystem, *chunk])
            rows.extend(map(make, cursor.fetchall()))
    finally:
        cursor.close()
    return rows


Deciding = list[tuple[VulnId, list[Rule]]]
"""Per vulnerability, the live ``affected`` rules of the source that decides about it."""


def rules_for(conn: Connection, names: Mapping[str, Iterable[str]]
              ) -> dict[tuple[str, str], Deciding]:
    """The deciding rules of every package named: ``{ecosystem: normalised names}`` →
    ``{(ecosystem, name): [(vulnerability, rules), ...]}``.

    This is the matcher's public contract, shared by scans and sweeps so the two never
    disagree: every source that speaks about a package is read (the priority rule needs
    them all, not only one vulnerability's advisories), then per vulnerability only the
    highest-priority source's rows remain, and of those the ones that say *affected*.
    Packages no rule speaks about are absent.
    """
    rows_by_key: dict[tuple[str, str], list[Rule]] = defaultdict(list)
    for eco, wanted in names.items():
        for row in _candidate_rows(conn, eco, sorted(set(wanted))):
            rows_by_key[(eco, row.name)].append(row)
    return {key: _deciding(rows) for key, rows in rows_by_key.items()}


def advisory_ids_of(conn: Connection, names: Mapping[str, Iterable[str]]
                    ) -> dict[tuple[str, str], tuple[str, ...]]:
    """Every advisory that speaks about each package named, whatever it says (the
    evidence shown for a package whose version could not be judged)."""
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for eco, wanted in names.items():
        for row in _candidate_rows(conn, eco, sorted(set(wanted))):
            ids[(eco, row.name)].add(row.advisory_id)
    return {key: tuple(sorted(found)) for key, found in ids.items()}


def ecosystems_with_advisories(conn: Connection, ecosystems: Iterable[str]) -> set[str]:
    """Which of ``ecosystems`` the knowledge base holds any ``affected`` row for (one
    index probe each): whether a distribution's own feed is loaded for a release."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    found: set[str] = set()
    cursor = conn.connection.cursor()
    try:
        for eco in sorted(set(ecosystems)):
            cursor.execute(f"SELECT 1 FROM affected WHERE ecosystem = {mark} LIMIT 1", [eco])
            if cursor.fetchone() is not None:
                found.add(eco)
    finally:
        cursor.close()
    return found


@lru_cache(maxsize=262144)
def _key_name(ecosystem: str, name: str) -> str:
    return normalize_name(ecosystem, name)


def _deciding(rows: list[Rule]) -> Deciding:
    """Per vulnerability, the rows of the highest-priority source that speaks about it.

    Only those rows decide: the distribution's tracker (priority 100) saying "fixed in
    the backport" or "not affected" silences derived data (priority 10) that disagrees.
    """
    best: dict[str, tuple[int, list[Rule]]] = {}
    for row in rows:
        priority = row.priority
        for vuln in row.vulns.split():
            seen = best.get(vuln)
            if seen is None or priority > seen[0]:
                best[vuln] = (priority, [row])
            elif priority == seen[0]:
                seen[1].append(row)
    out = []
    for vuln, (_, rows_) in best.items():
        live = [r for r in rows_ if r.status == _AFFECTED]
        if live:
            out.append((VulnId(vuln), live))
    return out


_AFFECTED = str(AffectedStatus.AFFECTED)
_UNDETERMINED = str(AffectedStatus.UNDETERMINED)


def _unreadable_ranges(conn: Connection, triples: list[tuple[str, str, str, list[Package]]],
                       matches: list[Match]) -> Iterator[Undetermined]:
    """Devices (ecosystem ``CPE``) a source names without saying which versions: JVN's
    version phrase that cannot be read (「v6 R4 およびそれ以前」) is stored as an ``affected``
    row of status ``undetermined``.  When that source decides about the vulnerability
    (highest priority) and none of its readable rows found the version affected, the
    product is *undetermined* for it -- listed with the advisory as evidence, never
    guessed affected nor silently dropped.  (Distributions' "undetermined" triage rows
    keep their meaning elsewhere: they silence derived data and report nothing.)
    """
    hit = {(m.ecosystem, m.name, m.version, m.vuln_id) for m in matches}
    names = sorted({name for _, name, _, _ in triples})
    by_name: dict[str, list[Rule]] = defaultdict(list)
    for row in _candidate_rows(conn, CPE, names):
        by_name[row.name].append(row)
    for eco, name, version, pkgs in triples:
        best: dict[str, tuple[int, list[Rule]]] = {}
        for row in by_name.get(name, ()):
            for vuln in row.vulns.split():
                seen = best.get(vuln)
                if seen is None or row.priority > seen[0]:
                    best[vuln] = (row.priority, [row])
                elif row.priority == seen[0]:
                    seen[1].append(row)
        for vuln, (_, rows) in sorted(best.items()):
            unread = sorted({r.advisory_id for r in rows if r.status == _UNDETERMINED})
            if not unread or (eco, name, version, vuln) in hit:
                continue
            reason = (f"{vuln}: {', '.join(unread)} names {name} without versions it can "
                      f"read, so {version} can be neither confirmed nor ruled out")
            for pkg in pkgs:
                yield Undetermined(pkg, reason, tuple(unread))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for an allocation-heavy stretch.

    A match allocates tens of thousands of tuples, none in reference cycles; in a
    long-running process with a large heap (a server, a loaded knowledge base) each
    automatic collection would walk that whole heap and double the match time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def match_packages(conn: Connection, packages: Iterable[Package]) -> MatchResult:
    """Judge every package against the knowledge base."""
    with gc_paused():
        return _match(conn, list(packages))


def _match(conn: Connection, packages: list[Package]) -> MatchResult:
    # (ecosystem, name, version) -> packages sharing it.
    triples: dict[tuple[str, str, str], list[Package]] = defaultdict(list)
    for pkg in packages:
        triples[(pkg.ecosystem, _key_name(pkg.ecosystem, pkg.match_name),
                 pkg.match_version)].append(pkg)
    by_ecosystem: dict[str, set[str]] = defaultdict(set)
    for eco, name, _ in triples:
        by_ecosystem[eco].add(name)
    deciding = rules_for(conn, by_ecosystem)

    matches: list[Match] = []
    unreadable: list[tuple[str, str, str, list[Package]]] = []
    for (eco, name, version), pkgs in triples.items():
        try:
            key = version_key(eco, version)
        except VersionError as exc:
            unreadable.append((eco, name, str(exc), pkgs))
            continue
        installed = tuple(pkgs)
        foreign: str | None = None
        for vuln, rows in deciding.get((eco, name), ()):
            unjudged = None
            for row in rows:
                try:
                    hit, range_text, fixed = judge(eco, version, key, row.ranges,
                                                   row.versions)
                except VersionError as exc:
                    # Firmware of another train than a range: unless another row says
                    # affected, this vulnerability is undetermined; the others are judged.
                    unjudged = str(exc)
                    continue
                if hit:
                    matches.append(Match(vuln, eco, name, version, installed, row.advisory_pk,
                                         row.advisory_id, row.feed, range_text, fixed,
                                         row.severity))
                    break
            else:
                foreign = foreign or unjudged
        if foreign is not None:
            unreadable.append((eco, name, foreign, pkgs))
    undetermined: list[Undetermined] = []
    cpe_triples = [(eco, name, version, pkgs) for (eco, name, version), pkgs in triples.items()
                   if eco == CPE]
    if cpe_triples:
        undetermined.extend(_unreadable_ranges(conn, cpe_triples, matches))
    # Rare: the evidence of versions no rule can read is every advisory about the package,
    # read again in one query per ecosystem rather than kept for every package above.
    if unreadable:
        wanted: dict[str, set[str]] = defaultdict(set)
        for eco, name, _, _ in unreadable:
            wanted[eco].add(name)
        evidence = advisory_ids_of(conn, wanted)
        for eco, name, reason, pkgs in unreadable:
            ids = evidence.get((eco, name), ())
            undetermined.extend(Undetermined(p, reason, ids) for p in pkgs)
    return MatchResult(tuple(matches), tuple(undetermined), len(packages), len(triples))
