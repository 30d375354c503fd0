"""Writing feed records into the knowledge base: set-based, one transaction per source.

Advisories are loaded incrementally: each carries a digest of its content, and only the
advisories whose digest changed (or that are new or gone) are deleted and re-inserted,
in bulk.  CVE records and EPSS scores are upserted; KEV, a complete catalogue each time,
is replaced whole.  An MSRC month replaces that month's vulnerabilities and fixes.  A JVN
source becomes advisories, ``cve_records`` rows of feed ``jvn`` and alerts
(:func:`write_jvn`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from patchpilot.clock import now_utc
from patchpilot.db.dialect import (
    bulk_insert,
    bulk_upsert,
    insert_rows,
    lock_for_writing,
    upsert,
)
from patchpilot.db.tables import (
    advisories,
    advisory_aliases,
    advisory_vulns,
    affected,
    cve_records,
    epss,
    finding_events,
    jvn_alerts,
    kev,
    msrc_fixes,
    msrc_products,
    msrc_vulns,
)
from patchpilot.knowledge import coverage
from patchpilot.knowledge.cpe_names import CPE, cpe_name, identify
from patchpilot.knowledge.feeds._cvrf import MsrcDocument
from patchpilot.knowledge.feeds._jvn import JvnAlert, JvnVuln, read_phrase
from patchpilot.models import (
    Advisory,
    AdvisoryId,
    AffectedStatus,
    CveRecord,
    CvssMetric,
    EpssScore,
    KevEntry,
    Reference,
)

CHUNK = 5000  # rows per statement batch; well under SQLite's 32,766 bound parameters


@dataclass(slots=True)
class WriteStats:
    """What one source's write did."""

    records: int = 0  # records in the input
    written: int = 0  # inserted or replaced
    removed: int = 0  # gone from the input (or withdrawn)


def chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """``seq`` in slices of at most ``size``."""
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


def _metric(m: CvssMetric) -> dict[str, Any]:
    return {"version": m.version, "vector": m.vector, "score": m.score,
            "severity": m.severity, "source": m.source}


def _refs(refs: Iterable[Reference]) -> list[dict[str, str]]:
    return [{"url": r.url, "type": r.type} for r in refs]


def advisory_record(adv: Advisory) -> dict[str, Any]:
    """The JSON kept per advisory (everything but the affected rows, which are indexed)."""
    return {
        "id": adv.id, "published": adv.published, "modified": adv.modified,
        "aliases": list(adv.aliases), "summary": adv.summary, "details": adv.details,
        "cvss": [_metric(m) for m in adv.cvss], "references": _refs(adv.references),
        "workaround": adv.workaround,
    }


_AFFECTED_COLUMNS = ("advisory_pk", "ecosystem", "name", "status", "ranges", "versions",
                     "fixed", "severity", "advisory_id", "feed", "priority", "vulns")
_ADVISORY_COLUMNS = ("pk", "id", "feed", "source", "priority", "modified", "digest", "record")


def _affected_rows(adv: Advisory) -> list[tuple[Any, ...]]:
    """(ecosystem, name, status, ranges, versions, fixed, severity) per affected package."""
    rows = []
    dumps = orjson.dumps
    # Distribution errata name every binary package of an update with one shared ranges
    # tuple (feeds share immutable values): serialise it once per advisory.
    last: Any = None
    ranges_json, fixed = "[]", None
    for pkg in adv.affected:
        if pkg.ranges is not last:
            last = pkg.ranges
            # A fourth element only where the start is excluded (NVD), so OSV rows stay as
            # they were (and keep their digests).
            ranges_json = dumps([
                [r.introduced, r.fixed, r.last_affected, True] if r.introduced_excluded
                else [r.introduced, r.fixed, r.last_affected] for r in last]).decode()
            fixes = [r.fixed for r in last if r.fixed]
            fixed = fixes[-1] if fixes else None
        rows.append((pkg.ecosystem, pkg.name, str(pkg.status), ranges_json,
                     dumps(pkg.versions).decode() if pkg.versions else None,
                     fixed, pkg.severity))
    return rows


@dataclass(slots=True)
class PreparedAdvisory:
    """An advisory turned into rows, ready to write (picklable: built in worker processes)."""

    id: str
    modified: str | None
    digest: str
    record: str
    affected: list[tuple[Any, ...]]
    vuln_ids: tuple[str, ...]
    aliases: tuple[str, ...]
    # Per affected row, the vulnerabilities it is limited to (space-separated), or None for
    # all of the advisory's: JVN scopes an item to the CVEs its version text names.
    row_vulns: tuple[str | None, ...] = ()


def prepare_advisories(records: Iterable[Advisory]) -> tuple[list[PreparedAdvisory], int]:
    """Rows for every advisory that is not withdrawn (the last record of an id wins), and
    how many records there were."""
    out: dict[str, PreparedAdvisory | None] = {}
    count = 0
    for adv in records:
        count += 1
        out[adv.id] = None if adv.withdrawn else _prepare(adv)
    return [p for p in out.values() if p is not None], count


def _prepare(adv: Advisory) -> PreparedAdvisory:
    record = orjson.dumps(advisory_record(adv))
    rows = _affected_rows(adv)
    digest = hashlib.blake2b(record, digest_size=16)
    digest.update(orjson.dumps(rows))  # as one hash of record + rows, without the copy
    aliases = dict.fromkeys((adv.id, *adv.aliases))
    aliases.pop("", None)
    return PreparedAdvisory(adv.id, adv.modified, digest.hexdigest(), record.decode(), rows,
                            adv.vuln_ids(), tuple(aliases))


def _delete_advisories(conn: Connection, pks: list[int]) -> None:
    for part in chunks(pks):
        for child in (affected, advisory_vulns, advisory_aliases):
            conn.execute(delete(child).where(child.c.advisory_pk.in_(part)))
        conn.execute(delete(advisories).where(advisories.c.pk.in_(part)))


@dataclass(slots=True)
class AdvisoryRows:
    """Advisories as the rows of the four advisory tables, keyed from 0 (an advisory's
    key is its position in ``advisories``): the writer adds the first free key as it
    inserts.

    A reading worker builds them (:func:`advisory_rows`), so a first load of a source
    reaches the database without a step of Python per row in the writing process, which
    every source's write waits for.
    """

    advisories: list[tuple[Any, ...]]  # _ADVISORY_COLUMNS
    affected: list[tuple[Any, ...]]  # _AFFECTED_COLUMNS
    vulns: list[tuple[int, str]]
    aliases: list[tuple[int, str]]
    change: coverage.CountChange  # what the rows add to the counts per ecosystem

    def without(self, keys: set[int]) -> AdvisoryRows:
        """These rows but for the advisories of ``keys`` (the others keep their keys)."""
        gone: dict[int, list[str]] = {key: [] for key in keys}
        affected_rows = []
        for row in self.affected:
            if row[0] in gone:
                gone[row[0]].append(row[1])
            else:
                affected_rows.append(row)
        less = coverage.CountChange()
        less.add_advisories(gone.values())
        change = coverage.CountChange(self.change.advisories - less.advisories,
                                      self.change.affected - less.affected)
        return AdvisoryRows([row for row in self.advisories if row[0] not in gone],
                            affected_rows, [row for row in self.vulns if row[0] not in gone],
                            [row for row in self.aliases if row[0] not in gone], change)


def advisory_rows(prepared: Sequence[PreparedAdvisory], feed: str, source: str,
                  priority: int) -> AdvisoryRows:
    """The rows of ``prepared`` (distinct ids) for the source, keyed from 0."""
    adv_rows: list[tuple[Any, ...]] = []
    affected_rows: list[tuple[Any, ...]] = []
    vuln_rows: list[tuple[int, str]] = []
    alias_rows: list[tuple[int, str]] = []
    # List comprehensions, not generators: this loop runs once per advisory of a load.
    for pk, p in enumerate(prepared):
        adv_id = p.id
        adv_rows.append((pk, adv_id, feed, source, priority, p.modified, p.digest, p.record))
        vulns = " ".join(p.vuln_ids)
        if p.row_vulns:
            affected_rows += [(pk, *row, adv_id, feed, priority, scoped or vulns)
                              for row, scoped in zip(p.affected, p.row_vulns, strict=True)]
        else:
            affected_rows += [(pk, *row, adv_id, feed, priority, vulns) for row in p.affected]
        vuln_rows += [(pk, v) for v in p.vuln_ids]
        alias_rows += [(pk, a) for a in p.aliases]
    change = coverage.CountChange()
    change.add_advisories([row[0] for row in p.affected] for p in prepared)
    return AdvisoryRows(adv_rows, affected_rows, vuln_rows, alias_rows, change)


def _prepared(parts: Iterable[AdvisoryRows]) -> list[PreparedAdvisory]:
    """The advisories of ``parts`` as :class:`PreparedAdvisory` again (the last of an id
    wins in :func:`write_advisories`); each affected row keeps its vulnerabilities."""
    out: list[PreparedAdvisory] = []
    for part in parts:
        rows: dict[int, list[tuple[Any, ...]]] = {}
        vulns: dict[int, list[str]] = {}
        aliases: dict[int, list[str]] = {}
        for row in part.affected:
            rows.setdefault(row[0], []).append(row)
        for pk, vuln in part.vulns:
            vulns.setdefault(pk, []).append(vuln)
        for pk, alias in part.aliases:
            aliases.setdefault(pk, []).append(alias)
        for pk, adv_id, _, _, _, modified, digest, record in part.advisories:
            own = rows.get(pk, [])
            out.append(PreparedAdvisory(adv_id, modified, digest, record,
                                        [row[1:8] for row in own], tuple(vulns.get(pk, ())),
                                        tuple(aliases.get(pk, ())),
                                        tuple(row[11] for row in own)))
    return out


def _insert(conn: Connection, rows: AdvisoryRows, first_pk: int) -> None:
    """Insert ``rows`` with their keys moved up by ``first_pk``."""
    bulk_insert(conn, advisories, _ADVISORY_COLUMNS, rows.advisories, key_offset=first_pk)
    bulk_insert(conn, affected, _AFFECTED_COLUMNS, rows.affected, key_offset=first_pk)
    bulk_insert(conn, advisory_vulns, ("advisory_pk", "vuln_id"), rows.vulns,
                key_offset=first_pk)
    bulk_insert(conn, advisory_aliases, ("advisory_pk", "alias"), rows.aliases,
                key_offset=first_pk)


def _next_pk(conn: Connection) -> int:
    return (conn.execute(select(func.max(advisories.c.pk))).scalar() or 0) + 1


def write_advisories(conn: Connection, feed: str, source: str, priority: int,
                     prepared: Iterable[PreparedAdvisory]) -> WriteStats:
    """Make the source's advisories in the database equal ``prepared`` (inside ``conn``'s
    transaction), touching only those that changed."""
    stats = WriteStats()
    incoming: dict[str, PreparedAdvisory] = {p.id: p for p in prepared}
    stats.records = len(incoming)
    lock_for_writing(conn, advisories)
    existing = {row.id: (row.pk, row.digest) for row in conn.execute(
        select(advisories.c.id, advisories.c.pk, advisories.c.digest)
        .where(advisories.c.source == source))}
    stale = [pk for adv_id, (pk, digest) in existing.items()
             if adv_id not in incoming or incoming[adv_id].digest != digest]
    fresh = [p for adv_id, p in incoming.items()
             if adv_id not in existing or existing[adv_id][1] != p.digest]
    stats.removed = sum(1 for adv_id in existing if adv_id not in incoming)
    # The advisory counts per ecosystem (knowledge.coverage) change by what goes and what
    # comes: counted before the delete and from the rows to insert, then applied.
    change = coverage.removed_counts(conn, stale)
    _delete_advisories(conn, stale)
    stats.written = len(fresh)
    if fresh:
        rows = advisory_rows(fresh, feed, source, priority)
        change.add(rows.change)
        _insert(conn, rows, _next_pk(conn))
    coverage.apply(conn, change)
    return stats


def write_advisory_rows(conn: Connection, feed: str, source: str, priority: int,
                        parts: Sequence[AdvisoryRows]) -> WriteStats:
    """:func:`write_advisories` for advisories already made rows (by reading workers).

    When the database holds nothing of the source yet (its first load, and every load of
    an empty knowledge base), the rows go in as they are, each part with its keys moved
    up past the stored ones; of an id that comes twice, the last part's advisory (the
    last file's, as in a sequential read) is the one kept.  Otherwise the advisories are
    compared with the stored ones by digest, as :func:`write_advisories` does.
    """
    lock_for_writing(conn, advisories)
    stored = conn.execute(select(advisories.c.pk).where(advisories.c.source == source)
                          .limit(1)).first()
    if stored is not None:
        return write_advisories(conn, feed, source, priority, _prepared(parts))
    # Keys are positions in a part as the worker built it: a part that loses an advisory
    # to a later one keeps a gap, never a key taken twice.
    spans = [len(part.advisories) for part in parts]
    last = {row[1]: (n, row[0]) for n, part in enumerate(parts) for row in part.advisories}
    if len(last) < sum(spans):
        losers: dict[int, set[int]] = {}
        for n, part in enumerate(parts):
            for key, adv_id, *_ in part.advisories:
                if last[adv_id] != (n, key):
                    losers.setdefault(n, set()).add(key)
        parts = [part.without(losers[n]) if n in losers else part
                 for n, part in enumerate(parts)]
    change = coverage.CountChange()
    first_pk = _next_pk(conn)
    for part, span in zip(parts, spans, strict=True):
        _insert(conn, part, first_pk)
        first_pk += span
        change.add(part.change)
    coverage.apply(conn, change)
    return WriteStats(records=len(last), written=len(last))


def cve_record_json(rec: CveRecord) -> dict[str, Any]:
    """The JSON kept per CVE record."""
    return {"title": rec.title, "description": rec.description,
            "cvss": [_metric(m) for m in rec.cvss], "references": _refs(rec.references),
            "cwes": list(rec.cwes), "workaround": rec.workaround}


def write_cve_records(conn: Connection, feed: str, source: str,
                      records: Iterable[CveRecord]) -> WriteStats:
    """Upsert CVE records (the newest of each id wins within the input)."""
    stats = WriteStats()
    latest: dict[str, CveRecord] = {}
    for rec in records:
        stats.records += 1
        seen = latest.get(rec.id)
        if seen is None or (rec.modified or "") >= (seen.modified or ""):
            latest[rec.id] = rec
    rows = [{"id": r.id, "feed": feed, "source": source, "modified": r.modified,
             "published": r.published, "status": r.status,
             "record": orjson.dumps(cve_record_json(r)).decode()} for r in latest.values()]
    upsert(conn, cve_records, rows, ("id", "feed"))
    stats.written = len(rows)
    return stats


def cpe_advisories(records: Iterable[CveRecord]) -> list[PreparedAdvisory]:
    """One advisory per CVE whose record names affected CPE products (the newest record of
    an id wins, as in :func:`write_cve_records`), ready for :func:`write_advisories`.

    NVD and CVE 5 records carry what they say about devices' firmware and programs named
    by CPE (``CveRecord.affected``); as advisories they reach the matcher and sweeps like
    any other source's.  A rejected record withdraws its advisory.
    """
    latest: dict[str, CveRecord] = {}
    for rec in records:
        seen = latest.get(rec.id)
        if seen is None or (rec.modified or "") >= (seen.modified or ""):
            latest[rec.id] = rec
    return prepare_advisories(
        Advisory(id=AdvisoryId(rec.id), source=rec.source, modified=rec.modified,
                 published=rec.published, summary=rec.title, details=rec.description,
                 cvss=rec.cvss, affected=rec.affected, references=rec.references,
                 workaround=rec.workaround, withdrawn=rec.status == "Rejected")
        for rec in latest.values() if rec.affected)[0]


def write_kev(conn: Connection, records: Iterable[KevEntry]) -> WriteStats:
    """Replace the KEV catalogue (each release of it is complete)."""
    rows = {e.cve: {"cve": e.cve, "date_added": e.date_added, "due_date": e.due_date,
                    "ransomware": e.ransomware, "vendor": e.vendor, "product": e.product,
                    "name": e.name, "required_action": e.required_action} for e in records}
    before = conn.execute(select(kev.c.cve)).scalars().all()
    conn.execute(delete(kev))
    for part in chunks(list(rows.values())):
        conn.execute(insert(kev), list(part))
    return WriteStats(records=len(rows), written=len(rows),
                      removed=len(set(before) - set(rows)))


def write_epss(conn: Connection, records: Iterable[EpssScore]) -> WriteStats:
    """Upsert EPSS scores (per-year files each hold a part of the catalogue)."""
    rows = {s.cve: (s.cve, s.score, s.percentile, s.date) for s in records}
    bulk_upsert(conn, epss, ("cve", "score", "percentile", "date"), list(rows.values()),
                ("cve",))
    return WriteStats(records=len(rows), written=len(rows))


_MSRC_PRODUCT_COLUMNS = ("product_id", "name", "family", "version", "edition", "arch",
                         "branch", "month")
_MSRC_VULN_COLUMNS = ("month", "cve", "title", "severity", "exploited", "publicly_disclosed",
                      "exploitability", "description", "faq", "workaround")
_MSRC_FIX_COLUMNS = ("month", "cve", "product_id", "fix", "kb", "supersedes", "fixed_build",
                     "restart", "url", "subtype", "cvss_score", "cvss_vector", "severity",
                     "impact")


def msrc_rows(doc: MsrcDocument) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]],
                                          list[tuple[Any, ...]]]:
    """(product, vulnerability, fix) rows of one document.

    One fix row per (CVE, product, Vendor Fix), carrying the product's CVSS, severity and
    impact; an affected product with no Vendor Fix still gets one row (``fix`` "") so the
    knowledge base says it is affected and unfixed.
    """
    month = doc.month
    products = [(p.product_id, p.name, p.family, p.version, p.edition, p.arch, p.branch,
                 month) for p in doc.products.values()]
    vulns: dict[str, tuple[Any, ...]] = {}
    fixes: dict[tuple[str, str, str], tuple[Any, ...]] = {}
    for v in doc.vulnerabilities:
        vulns[v.cve] = (month, v.cve, v.title, v.worst_severity(), v.exploited,
                        v.publicly_disclosed, v.exploitability, v.description, v.faq,
                        v.workaround)
        score = {pid: s for s in v.scores for pid in s.product_ids}
        fixed: set[str] = set()
        for f in v.fixes:
            for pid in f.product_ids:
                fixed.add(pid)
                s = score.get(pid)
                fixes[(v.cve, pid, f.fix)] = (
                    month, v.cve, pid, f.fix, f.kb, " ".join(f.supersedes) or None,
                    f.fixed_build, f.restart, f.url, f.subtype,
                    s.base if s else None, s.vector if s else None,
                    v.severity.get(pid), v.impact.get(pid))
        for pid in dict.fromkeys((*v.affected, *v.severity, *score)):
            if pid not in fixed:
                s = score.get(pid)
                fixes[(v.cve, pid, "")] = (
                    month, v.cve, pid, "", None, None, None, None, None, None,
                    s.base if s else None, s.vector if s else None,
                    v.severity.get(pid), v.impact.get(pid))
    return products, list(vulns.values()), list(fixes.values())


def write_msrc(conn: Connection, documents: Iterable[MsrcDocument]) -> WriteStats:
    """Replace each document's month (its vulnerabilities and fixes) and upsert its products.

    Runs inside the caller's transaction: a failure anywhere leaves every month as it was.
    """
    stats = WriteStats()
    for doc in documents:
        products, vulns, fixes = msrc_rows(doc)
        before = set(conn.execute(select(msrc_vulns.c.cve)
                                  .where(msrc_vulns.c.month == doc.month)).scalars())
        stats.removed += len(before - {row[1] for row in vulns})
        conn.execute(delete(msrc_vulns).where(msrc_vulns.c.month == doc.month))
        conn.execute(delete(msrc_fixes).where(msrc_fixes.c.month == doc.month))
        bulk_upsert(conn, msrc_products, _MSRC_PRODUCT_COLUMNS, products, ("product_id",))
        for part in chunks(vulns):
            bulk_insert(conn, msrc_vulns, _MSRC_VULN_COLUMNS, part)
        for part in chunks(fixes):
            bulk_insert(conn, msrc_fixes, _MSRC_FIX_COLUMNS, part)
        stats.records += len(vulns)
        stats.written += len(vulns)
    return stats


# --------------------------------------------------------------------------- JVN

JVN_ALERT = "jvn_alert"
"""The finding event a new MyJVN alert becomes (listed in ``findings.events.KINDS``)."""


def jvn_affected(vuln: JvnVuln) -> tuple[list[tuple[Any, ...]], list[str | None]]:
    """The ``affected`` rows of one JVN entry and, per row, the CVEs it is limited to.

    Each item is named by its CPE 2.2 URI (``cpe:/o:nec:aterm_wx3600hp_firmware`` ->
    ecosystem ``CPE``, name ``nec:aterm_wx3600hp_firmware``), or failing that by JVN's vendor
    and product through ``cpe_names.identify``; an item neither names is left out.  Its
    version phrases (:func:`~patchpilot.knowledge.feeds._jvn.read_phrase`) are grouped by
    the CVEs they are limited to; per group, the readable ones make one ``affected`` row
    (ranges and listed versions), and an unreadable phrase -- or an item with no phrase at
    all, as RSS overviews are -- makes one row of status ``undetermined``: the matcher lists
    the product as *undetermined* for those CVEs unless a readable row of the same source
    finds it affected, never guesses it affected.
    """
    cves = set(vuln.cves)
    rows: list[tuple[Any, ...]] = []
    scopes: list[str | None] = []
    dumps = orjson.dumps
    for item in vuln.affected:
        parsed = cpe_name(item.cpe) if item.cpe else None
        name = (f"{parsed[0]}:{parsed[1]}" if parsed is not None
                else identify(item.vendor, item.product))
        if name is None:
            continue
        groups: dict[tuple[str, ...], tuple[list[Any], list[str], bool]] = {}
        phrases = item.phrases
        cpe_version = parsed[2] if parsed is not None else None
        if not phrases and cpe_version:
            groups[()] = ([], [cpe_version], False)
        for phrase in phrases:
            reading = read_phrase(phrase)
            scope = tuple(c for c in reading.scope if c in cves)
            ranges, versions, unreadable = groups.get(scope, ([], [], False))
            ranges.extend([r.introduced, r.fixed, r.last_affected] for r in reading.ranges)
            versions.extend(reading.versions)
            groups[scope] = (ranges, versions, unreadable or not reading.readable)
        if not groups:
            groups[()] = ([], [], True)
        for scope, (ranges, versions, unreadable) in groups.items():
            scoped = " ".join(scope) if scope else None
            if ranges or versions:
                fixes = [r[1] for r in ranges if r[1]]
                rows.append((CPE, name, str(AffectedStatus.AFFECTED), dumps(ranges).decode(),
                             dumps(versions).decode() if versions else None,
                             fixes[-1] if fixes else None, None))
                scopes.append(scoped)
            if unreadable:
                rows.append((CPE, name, str(AffectedStatus.UNDETERMINED), "[]", None, None,
                             None))
                scopes.append(scoped)
    return rows, scopes


def _jvn_advisory(vuln: JvnVuln) -> PreparedAdvisory:
    # No Japanese text and no CVSS on the advisory: the text is per CVE in cve_records
    # (shown to Japanese readers), and JVN's score stands only where no better source
    # scores the CVE (findings.build), which an advisory's own metric would override.
    refs = (Reference(vuln.url, "advisory"), *vuln.references)
    adv = Advisory(id=AdvisoryId(vuln.id), source="jvn", modified=vuln.modified,
                   published=vuln.published, aliases=vuln.cves,
                   references=tuple({r.url: r for r in refs}.values()))
    record = orjson.dumps(advisory_record(adv))
    rows, scopes = jvn_affected(vuln)
    digest = hashlib.blake2b(record + orjson.dumps(rows) + orjson.dumps(scopes),
                             digest_size=16).hexdigest()
    return PreparedAdvisory(adv.id, adv.modified, digest, record.decode(), rows,
                            adv.vuln_ids(), (adv.id, *vuln.cves), tuple(scopes))


def _newest(records: Iterable[JvnVuln]) -> dict[str, JvnVuln]:
    """One entry per JVNDB id: a detail document over an RSS overview, then the newest."""
    out: dict[str, JvnVuln] = {}
    for v in records:
        seen = out.get(v.id)
        if seen is None or (v.detail, v.modified or "") >= (seen.detail, seen.modified or ""):
            out[v.id] = v
    return out


def jvn_text_rows(vulns: Iterable[JvnVuln], source: str) -> list[dict[str, Any]]:
    """``cve_records`` rows of feed ``jvn``: per CVE (the JVNDB id for an entry without
    one), JVN's Japanese title, overview, impact and solution, its CVSS, and every JVNDB
    id naming it; the newest entry's text when several do."""
    by_vuln: dict[str, list[JvnVuln]] = {}
    for v in vulns:
        for vuln_id in v.cves or (v.id,):
            by_vuln.setdefault(vuln_id, []).append(v)
    rows = []
    for vuln_id, entries in by_vuln.items():
        entries.sort(key=lambda e: (e.modified or "", e.detail))
        v = entries[-1]
        record = {"title": v.title, "description": v.overview, "impact": v.impact,
                  "solution": v.solution, "cvss": [_metric(m) for m in v.cvss],
                  "references": [{"url": v.url, "type": "advisory"}], "cwes": list(v.cwes),
                  "workaround": None, "lang": "ja", "url": v.url,
                  "jvndb": sorted({e.id for e in entries})}
        rows.append({"id": vuln_id, "feed": "jvn", "source": source, "modified": v.modified,
                     "published": v.published, "status": None,
                     "record": orjson.dumps(record).decode()})
    return rows


def write_jvn(conn: Connection, feed: str, source: str, priority: int,
              records: Iterable[JvnVuln | JvnAlert]) -> WriteStats:
    """Make the JVN source's advisories, Japanese texts and alerts equal ``records``.

    Entries become advisories (:func:`jvn_affected`) and ``cve_records`` rows of feed
    ``jvn`` (:func:`jvn_text_rows`); alerts are upserted into ``jvn_alerts``, and each one
    not seen before is also a ``jvn_alert`` finding event (detail: id, title, summary, link,
    cves, cpes) in this transaction, for playbooks.
    """
    vulns: list[JvnVuln] = []
    alerts: dict[str, JvnAlert] = {}
    for rec in records:
        if isinstance(rec, JvnAlert):
            alerts[rec.id] = rec
        else:
            vulns.append(rec)
    entries = _newest(vulns)
    stats = write_advisories(conn, feed, source, priority,
                             [_jvn_advisory(v) for v in entries.values()])
    texts = jvn_text_rows(entries.values(), source)
    conn.execute(delete(cve_records).where(cve_records.c.feed == "jvn",
                                           cve_records.c.source == source))
    # Straight through the driver (tuples, executemany): a yearly feed has ~20,000.
    columns = ("id", "feed", "source", "modified", "published", "status", "record")
    for part in chunks(texts):
        bulk_upsert(conn, cve_records, columns, [tuple(r[c] for c in columns) for r in part],
                    ("id", "feed"))
    if alerts:
        known = set(conn.execute(select(jvn_alerts.c.id)
                                 .where(jvn_alerts.c.id.in_(list(alerts)))).scalars())
        upsert(conn, jvn_alerts, [
            {"id": a.id, "title": a.title, "summary": a.summary, "link": a.link,
             "published": a.published, "updated": a.updated, "cves": " ".join(a.cves),
             "cpes": " ".join(a.cpes), "source": source} for a in alerts.values()], ("id",))
        at = now_utc()
        fresh = [a for a in alerts.values() if a.id not in known]
        if fresh:
            insert_rows(conn, finding_events, [
                {"at": at, "finding_id": None, "asset_id": None, "kind": JVN_ALERT,
                 "producer": feed, "actor": None,
                 "detail": orjson.dumps({"id": a.id, "title": a.title, "summary": a.summary,
                                         "link": a.link, "cves": list(a.cves),
                                         "cpes": list(a.cpes)}).decode()}
                for a in fresh])
        stats.records += len(alerts)
        stats.written += len(fresh)
    return stats
