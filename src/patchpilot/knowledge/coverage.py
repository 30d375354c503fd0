"""Coverage: whether the knowledge base can judge an ecosystem's packages at all.

A scan that finds nothing in an ecosystem whose feed was never loaded is not a clean
result: there was nothing to judge the packages with.  "No findings" must therefore never
be shown alone where the knowledge base holds no -- or almost no -- advisories for an
ecosystem (or distribution release: ``Debian:12``, ``Alpine:3.18``) the packages are in;
it is said instead: "not covered: npm 978 packages (0 advisories loaded)".

The knowledge base's side is the ``knowledge_coverage`` table, one row per ecosystem with
its distinct advisories and ``affected`` rows, kept in the transaction of every advisory
write (``store.write_advisories``): the write's change -- the advisories it removes,
counted with one ``GROUP BY ecosystem`` over their rows before the delete, and those it
adds, counted from the rows it inserts -- is added to the counts (:func:`apply`), exact
and as cheap as the change, where recounting Debian's or npm's hundreds of thousands of
rows would cost a second each time.  :func:`refresh` recounts from scratch (what the
migration that made the table did).  A reader -- a scan, the overview, ``db status`` --
then reads a few rows instead of counting millions.  The packages' side is given by the
caller (a scan counts its inventory; the estate's counts are ``findings.coverage``'s);
:func:`judge` joins the two.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text
from sqlalchemy.engine import Connection

from patchpilot.db.tables import knowledge_coverage

MIN_ADVISORIES = 10
"""Below this many advisories loaded for an ecosystem, it is *not covered*.

Zero is the usual case (the feed was never loaded: npm, Maven, a Debian release whose
tracker data is absent).  "Almost zero" is the other: a handful of advisories that came
in with another feed (an advisory naming packages of several ecosystems) or from test
fixtures, against which a clean result means as little as against none.  Every real feed
of an ecosystem PatchPilot reads holds hundreds to tens of thousands of advisories (a
Debian or Alpine release, PyPI, npm, Go, crates.io, Maven, AlmaLinux), so ten separates
the two cases with a wide margin on both sides.  The count is always shown beside the
verdict, so a reader can judge a borderline case themselves.
"""

_CHUNK = 500  # ecosystems per IN list: far fewer exist, but keep statements bounded
_PKS_PER_QUERY = 5000  # advisories per IN list: well under both databases' parameter caps


@dataclass(frozen=True, slots=True)
class EcosystemCoverage:
    """Packages of one ecosystem and the advisories the knowledge base holds for it.

    ``assets`` is how many assets have such packages (1 for a single scan).
    """

    ecosystem: str
    packages: int
    advisories: int
    assets: int = 1

    @property
    def covered(self) -> bool:
        """Whether enough advisories are loaded for a clean result to mean something."""
        return self.advisories >= MIN_ADVISORIES

    def describe(self) -> str:
        """The one-line verdict: ``not covered: npm 978 packages (0 advisories loaded)``."""
        packages = f"{self.packages:,} package" + ("" if self.packages == 1 else "s")
        advisories = f"{self.advisories:,} advisor" + ("y" if self.advisories == 1 else "ies")
        verdict = "covered" if self.covered else "not covered"
        return f"{verdict}: {self.ecosystem} {packages} ({advisories} loaded)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the scan's JSON and SARIF, the API)."""
        return {"ecosystem": self.ecosystem, "packages": self.packages,
                "advisories": self.advisories, "assets": self.assets,
                "covered": self.covered}


def refresh(conn: Connection, ecosystems: Iterable[str] | None = None) -> None:
    """Recount the advisories of ``ecosystems`` (None: every one) from ``affected``, in the
    caller's transaction: an ecosystem left without rows loses its row."""
    count_sql = ("INSERT INTO knowledge_coverage (ecosystem, advisories, affected) "
                 "SELECT ecosystem, COUNT(DISTINCT advisory_pk), COUNT(*) FROM affected "
                 "{where} GROUP BY ecosystem")
    if ecosystems is None:
        conn.execute(delete(knowledge_coverage))
        conn.execute(text(count_sql.format(where="")))
        return
    wanted = sorted(set(ecosystems))
    stmt = text(count_sql.format(where="WHERE ecosystem IN :ecosystems")).bindparams(
        bindparam("ecosystems", expanding=True))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        conn.execute(delete(knowledge_coverage)
                     .where(knowledge_coverage.c.ecosystem.in_(chunk)))
        conn.execute(stmt, {"ecosystems": chunk})


@dataclass(slots=True)
class CountChange:
    """How one write changes the counts per ecosystem: advisories and affected rows (a
    negative number for what it removes)."""

    advisories: Counter[str] = field(default_factory=Counter)
    affected: Counter[str] = field(default_factory=Counter)

    def add_advisories(self, ecosystems: Iterable[Sequence[str]]) -> None:
        """Advisories coming in, given for each the ecosystem of each of its affected rows:
        one more advisory for each distinct ecosystem, one more row for each row."""
        rows: list[str] = []
        distinct: list[str] = []
        for per_row in ecosystems:
            rows += per_row
            # Nearly every advisory's rows are of one ecosystem (one distribution release).
            distinct += per_row[:1] if len(set(per_row)) == 1 else set(per_row)
        self.affected.update(Counter(rows))
        self.advisories.update(Counter(distinct))

    def add(self, other: CountChange) -> None:
        """Add another change to this one."""
        self.advisories.update(other.advisories)
        self.affected.update(other.affected)


def removed_counts(conn: Connection, pks: Sequence[int]) -> CountChange:
    """The change that removing advisories ``pks`` makes (read before they are deleted):
    per ecosystem, minus their number and minus their rows."""
    change = CountChange()
    stmt = text("SELECT ecosystem, COUNT(DISTINCT advisory_pk), COUNT(*) FROM affected "
                "WHERE advisory_pk IN :pks GROUP BY ecosystem").bindparams(
        bindparam("pks", expanding=True))
    for start in range(0, len(pks), _PKS_PER_QUERY):
        # The chunks hold disjoint advisories: their distinct counts add up.
        for eco, n, rows in conn.execute(stmt, {"pks": list(pks[start:start + _PKS_PER_QUERY])}):
            change.advisories[str(eco)] -= int(n)
            change.affected[str(eco)] -= int(rows)
    return change


def apply(conn: Connection, change: CountChange) -> None:
    """Add ``change`` to the counts, in the caller's transaction (the write's own, after
    ``lock_for_writing``, so no other write interleaves): exact, and proportional to the
    change rather than to the knowledge base.  An ecosystem left with no row loses its
    row."""
    touched = sorted(e for e in {*change.advisories, *change.affected}
                     if change.advisories[e] or change.affected[e])
    kc = knowledge_coverage
    for start in range(0, len(touched), _CHUNK):
        chunk = touched[start:start + _CHUNK]
        now = {r.ecosystem: (r.advisories, r.affected) for r in conn.execute(
            select(kc).where(kc.c.ecosystem.in_(chunk)))}
        conn.execute(delete(kc).where(kc.c.ecosystem.in_(chunk)))
        rows = []
        for eco in chunk:
            advisories, affected = now.get(eco, (0, 0))
            advisories += change.advisories[eco]
            affected += change.affected[eco]
            if affected > 0:
                rows.append({"ecosystem": eco, "advisories": advisories,
                             "affected": affected})
        if rows:
            conn.execute(insert(kc), rows)


def advisories_loaded(conn: Connection, ecosystems: Iterable[str] | None = None
                      ) -> dict[str, int]:
    """Advisories the knowledge base holds per ecosystem (of ``ecosystems``, or all);
    an ecosystem it holds none for is absent."""
    kc = knowledge_coverage
    stmt = select(kc.c.ecosystem, kc.c.advisories)
    if ecosystems is None:
        return {str(e): int(n) for e, n in conn.execute(stmt)}
    wanted = sorted(set(ecosystems))
    out: dict[str, int] = {}
    for start in range(0, len(wanted), _CHUNK):
        out.update((str(e), int(n)) for e, n in conn.execute(
            stmt.where(kc.c.ecosystem.in_(wanted[start:start + _CHUNK]))))
    return out


def knowledge_coverage_rows(conn: Connection) -> list[dict[str, Any]]:
    """Every ecosystem the knowledge base holds advisories for, with its advisories,
    affected rows and verdict, by ecosystem (``db status``)."""
    kc = knowledge_coverage
    return [{"ecosystem": e, "advisories": int(n), "affected": int(rows),
             "covered": int(n) >= MIN_ADVISORIES}
            for e, n, rows in conn.execute(select(kc.c.ecosystem, kc.c.advisories,
                                                  kc.c.affected).order_by(kc.c.ecosystem))]


def judge(packages: Mapping[str, int], loaded: Mapping[str, int],
          assets: Mapping[str, int] | None = None) -> list[EcosystemCoverage]:
    """The coverage of each ecosystem in ``packages`` (its package count) against
    ``loaded`` (advisories per ecosystem): the ones not covered first, then by packages,
    most first, then by name."""
    out = [EcosystemCoverage(eco, int(n), int(loaded.get(eco, 0)),
                             int(assets.get(eco, 1)) if assets is not None else 1)
           for eco, n in packages.items() if n]
    return sorted(out, key=lambda c: (c.covered, -c.packages, c.ecosystem))


def packages_per_ecosystem(ecosystems: Iterable[str]) -> dict[str, int]:
    """How many packages of each ecosystem there are, given each package's ecosystem."""
    return dict(Counter(str(e) for e in ecosystems))


def inventory_coverage(conn: Connection, ecosystems: Iterable[str]
                       ) -> list[EcosystemCoverage]:
    """The coverage of one inventory, given each of its packages' ecosystem (one small
    indexed read)."""
    counts = packages_per_ecosystem(ecosystems)
    return judge(counts, advisories_loaded(conn, counts))


def not_covered(coverage: Iterable[EcosystemCoverage]) -> list[EcosystemCoverage]:
    """The ecosystems of ``coverage`` that are not covered."""
    return [c for c in coverage if not c.covered]
