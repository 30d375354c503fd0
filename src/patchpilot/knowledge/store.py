"""Writing feed records into the knowledge base: set-based, one transaction per source.

Advisories are loaded incrementally: each carries a digest of its content, and only the
advisories whose digest changed (or that are new or gone) are deleted and re-inserted,
in bulk.  CVE records and EPSS scores are upserted; KEV, a complete catalogue each time,
is replaced whole.  An MSRC month replaces that month's vulnerabilities and fixes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from patchpilot.db.dialect import bulk_insert, bulk_upsert, lock_for_writing, upsert
from patchpilot.db.tables import (
    advisories,
    advisory_aliases,
    advisory_vulns,
    affected,
    cve_records,
    epss,
    kev,
    msrc_fixes,
    msrc_products,
    msrc_vulns,
)
from patchpilot.knowledge import coverage
from patchpilot.knowledge.feeds._cvrf import MsrcDocument
from patchpilot.models import (
    Advisory,
    AdvisoryId,
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
    for pkg in adv.affected:
        # A fourth element only where the start is excluded (NVD), so OSV rows stay as
        # they were (and keep their digests).
        ranges = [[r.introduced, r.fixed, r.last_affected, True] if r.introduced_excluded
                  else [r.introduced, r.fixed, r.last_affected] for r in pkg.ranges]
        fixes = [r.fixed for r in pkg.ranges if r.fixed]
        rows.append((pkg.ecosystem, pkg.name, str(pkg.status), dumps(ranges).decode(),
                     dumps(list(pkg.versions)).decode() if pkg.versions else None,
                     fixes[-1] if fixes else None, pkg.severity))
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
    digest = hashlib.blake2b(record + orjson.dumps(rows), digest_size=16).hexdigest()
    aliases = tuple(dict.fromkeys(a for a in (adv.id, *adv.aliases) if a))
    return PreparedAdvisory(adv.id, adv.modified, digest, record.decode(), rows, adv.vuln_ids(),
                     aliases)


def _delete_advisories(conn: Connection, pks: list[int]) -> None:
    for part in chunks(pks):
        for child in (affected, advisory_vulns, advisory_aliases):
            conn.execute(delete(child).where(child.c.advisory_pk.in_(part)))
        conn.execute(delete(advisories).where(advisories.c.pk.in_(part)))


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
    for p in fresh:
        change.add_advisory(row[0] for row in p.affected)
    _delete_advisories(conn, stale)
    stats.written = len(fresh)
    if not fresh:
        coverage.apply(conn, change)
        return stats
    next_pk = (conn.execute(select(func.max(advisories.c.pk))).scalar() or 0) + 1
    adv_rows: list[tuple[Any, ...]] = []
    affected_rows: list[tuple[Any, ...]] = []
    vuln_rows: list[tuple[int, str]] = []
    alias_rows: list[tuple[int, str]] = []
    for pk, p in enumerate(fresh, next_pk):
        adv_rows.append((pk, p.id, feed, source, priority, p.modified, p.digest, p.record))
        vulns = " ".join(p.vuln_ids)
        affected_rows.extend((pk, *row, p.id, feed, priority, vulns) for row in p.affected)
        vuln_rows.extend((pk, v) for v in p.vuln_ids)
        alias_rows.extend((pk, a) for a in p.aliases)
    bulk_insert(conn, advisories, _ADVISORY_COLUMNS, adv_rows)
    bulk_insert(conn, affected, _AFFECTED_COLUMNS, affected_rows)
    bulk_insert(conn, advisory_vulns, ("advisory_pk", "vuln_id"), vuln_rows)
    bulk_insert(conn, advisory_aliases, ("advisory_pk", "alias"), alias_rows)
    coverage.apply(conn, change)
    return stats


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
