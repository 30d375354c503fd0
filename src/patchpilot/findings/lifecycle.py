"""The life of a finding: new, open, fixed, reopened -- per producer.

Findings are keyed by (asset, vulnerability, ecosystem, package), whoever reports them:
one finding shows every source that reports it.  Its ``producer`` column holds every
producer that reports it (``matcher``, ``host-updates``, ``importer:<format>``), sorted
and joined with ``,`` -- almost always one -- and its JSON lists them as ``sources``.

* A report of producer P that shows the key: a new finding (open, or the state of the
  triage decision that covers it), a fixed one reopened, an open or triaged one seen
  again (the decision stands); P is added to its producers, and the finding's fields are
  the latest report's.
* A *complete* report of P that no longer shows it: P is removed from its producers; the
  finding is fixed when no producer reports it any more.  So a complete inventory closes
  only the matcher's and the host updates' findings, and a re-import only its
  importer's; an incomplete report closes nothing.
* A fixed finding reported again starts over with the producers that report it now.
* A finding carries every affected installation of its package (``installations``: one
  finding for ten pips); a report naming the key several times (one per installed
  version) is merged into one.  Fewer installations than before, some still affected:
  the finding stays as it is, with an ``installations_changed`` event saying which were
  fixed; it is fixed only when none is left.

Every change writes its events (``new``, ``reopened``, ``fixed``,
``known_exploited_added``, ``installations_changed``, ``epss_crossed``;
``findings.events``) in the same transaction, with one insert per transaction.  Every
write is set-based (bulk inserts, executemany updates), never a round trip per row.
Triage lives in ``findings.triage``, ingest in ``findings.ingest``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.engine import Connection

from patchpilot.clock import now_utc
from patchpilot.config import load_settings
from patchpilot.db.dialect import insert_rows, reserve_ids
from patchpilot.db.tables import findings
from patchpilot.findings.events import (
    EPSS_CROSSED,
    FIXED_EVENT,
    INSTALLATIONS_CHANGED,
    KNOWN_EXPLOITED_ADDED,
    NEW,
    REOPENED,
    epss_crossing,
    event_row,
    write_events,
)
from patchpilot.findings.installations import merge_findings
from patchpilot.findings.model import (
    FIXED,
    HOST_UPDATES,
    MATCHER,
    OPEN,
    STATES,
    TRIAGED,
    Finding,
)
from patchpilot.findings.summary import refresh as refresh_summary
from patchpilot.findings.triage import active_decisions_many, decision_for

__all__ = ["FIXED", "HOST_UPDATES", "MATCHER", "OPEN", "STATES", "TRIAGED", "LifecycleCounts",
           "Reports", "apply_asset_findings", "apply_findings", "apply_findings_many",
           "apply_findings_many_in",
           "producers_of"]

# What one application brings: each producer's report (its findings on the asset).
Reports = Mapping[str, Sequence[Finding]]
Key = tuple[str, str, str]


@dataclass(slots=True)
class LifecycleCounts:
    """What one application of findings changed (its events say which findings)."""

    new: int = 0
    still_open: int = 0
    reopened: int = 0
    fixed: int = 0
    triaged: int = 0  # new or reopened findings that a triage decision covered


def producers_of(column: str) -> tuple[str, ...]:
    """The producers stored in a ``findings.producer`` value."""
    return tuple(column.split(","))


def _column(producers: Sequence[str]) -> str:
    return ",".join(sorted(set(producers)))


def _reports(found: Sequence[Finding] | Reports, producer: str) -> Reports:
    """``found`` as producer → findings: a plain list is ``producer``'s report."""
    if isinstance(found, Mapping):
        return found
    return {producer: found}


def apply_findings(engine: Engine, asset_id: int, found: Sequence[Finding] | Reports, *,
                   complete: bool, from_feed_update: bool = False,
                   producer: str = MATCHER) -> LifecycleCounts:
    """Bring the asset's stored findings in line with what a scan found (one transaction).

    ``found`` is ``producer``'s report, or a mapping of several producers' reports (a
    scan's ``ScanResult.reports``: the matcher's and the host updates').  New → open (or
    the covering triage decision); fixed and found again → reopened; open or triaged and
    found → last seen now; open or triaged and not found in a *complete* report of every
    producer that reported it → fixed.  ``from_feed_update`` marks new findings as coming
    from a knowledge-base update rather than a change on the host.
    """
    now = now_utc()
    with engine.begin() as conn:
        counts = apply_asset_findings(conn, asset_id, found, complete=complete,
                                      from_feed_update=from_feed_update, now=now,
                                      producer=producer)
        refresh_summary(conn, [asset_id], now=now)
        return counts


def apply_asset_findings(conn: Connection, asset_id: int, found: Sequence[Finding] | Reports,
                         *, complete: bool, from_feed_update: bool = False,
                         now: datetime | None = None,
                         producer: str = MATCHER) -> LifecycleCounts:
    """:func:`apply_findings` in the caller's transaction, without the summary refresh.

    For ``pipeline.process_inventory``, which applies, settles sweeps and prioritises in
    one transaction and then refreshes the asset's summary row once, from the end state.
    """
    events: list[dict[str, Any]] = []
    counts = _apply(conn, asset_id, _reports(found, producer), complete, from_feed_update,
                    now or now_utc(), None, events)
    write_events(conn, events)
    return counts


def apply_findings_many(engine: Engine, batch: Sequence[tuple[int, Sequence[Finding], bool]],
                        *, from_feed_update: bool = False,
                        values_cache: dict[Any, dict[str, Any]] | None = None,
                        producer: str = MATCHER, summary: bool = True
                        ) -> list[LifecycleCounts]:
    """:func:`apply_findings` of one producer for many (asset, findings, complete) in one
    transaction.

    For a re-match of the whole estate: one commit per batch instead of per asset, and
    with ``values_cache`` a Finding object shared by many assets (the same package
    version on many hosts) is serialised once (keyed by ``id``, so the caller keeps the
    findings alive while the cache lives).  The batch's events are one insert.  With
    ``summary`` false the assets' summary rows are left to the caller, which refreshes
    them once after more work (``pipeline.after_feed_update``: after re-prioritising).
    """
    now = now_utc()
    events: list[dict[str, Any]] = []
    with engine.begin() as conn:
        counts = _apply_assets(conn, [(asset_id, {producer: found}, complete)
                                      for asset_id, found, complete in batch],
                               from_feed_update, now, values_cache, events)
        write_events(conn, events)
        if summary:
            refresh_summary(conn, [asset_id for asset_id, _, _ in batch], now=now)
        return counts


def apply_findings_many_in(conn: Connection,
                           batch: Sequence[tuple[int, Sequence[Finding], bool]], *,
                           producer: str, now: datetime | None = None,
                           values_cache: dict[Any, dict[str, Any]] | None = None
                           ) -> list[LifecycleCounts]:
    """:func:`apply_findings_many` in the caller's transaction, without the summary
    refresh: for an import, which creates assets, applies, keeps the report's asset facts
    and prioritises in one transaction (``values_cache`` as there: a Finding shared by
    many assets is serialised once)."""
    now = now or now_utc()
    events: list[dict[str, Any]] = []
    counts = _apply_assets(conn, [(asset_id, {producer: found}, complete)
                                  for asset_id, found, complete in batch],
                           False, now, values_cache, events)
    write_events(conn, events)
    return counts


def _row_values(f: Finding, sources: Sequence[str]) -> dict[str, Any]:
    data = f.to_dict()
    data["sources"] = list(sources)
    return {"installed_version": f.evidence.installed_version,
            "installations": (orjson.dumps([i.to_row() for i in f.installations]).decode()
                              if f.installations else None),
            "fixed_version": f.fix.fixed_version, "severity": f.severity,
            "cvss_score": f.cvss.score if f.cvss else None,
            # KEV or the vendor's "Exploited: Yes": both are exploitation evidence, and the
            # priority (scoring.apply) reads this column.
            "known_exploited": f.exploit.exploited,
            "epss_score": f.exploit.epss_score, "advisory_id": f.evidence.advisory_id,
            "producer": _column(sources), "data": orjson.dumps(data).decode()}


def _precedence(producer: str) -> tuple[int, str]:
    # Where two producers report a key in one application, the finding's fields are the
    # matcher's (the advisory's affected range and fixed version), then by name.
    return (producer != MATCHER, producer)


def _apply(conn: Connection, asset_id: int, reports: Reports, complete: bool,
           from_feed_update: bool, now: datetime,
           values_cache: dict[Any, dict[str, Any]] | None,
           events: list[dict[str, Any]]) -> LifecycleCounts:
    return _apply_assets(conn, [(asset_id, reports, complete)], from_feed_update, now,
                         values_cache, events)[0]


_EXISTING = (findings.c.id, findings.c.asset_id, findings.c.vuln_id, findings.c.ecosystem,
             findings.c.package, findings.c.state, findings.c.times_reopened,
             findings.c.known_exploited, findings.c.producer, findings.c.installations,
             findings.c.epss_score)
# How many assets one read of their stored findings names.
_ASSETS_PER_READ = 2000


def _existing(conn: Connection, asset_ids: Sequence[int]) -> dict[int, dict[Key, Any]]:
    out: dict[int, dict[Key, Any]] = {a: {} for a in asset_ids}
    if len(asset_ids) == 1:
        rows: Any = conn.execute(select(*_EXISTING).where(findings.c.asset_id == asset_ids[0]))
        out[asset_ids[0]] = {(r.vuln_id, r.ecosystem, r.package): r for r in rows}
        return out
    for start in range(0, len(asset_ids), _ASSETS_PER_READ):
        chunk = list(asset_ids[start:start + _ASSETS_PER_READ])
        for r in conn.execute(select(*_EXISTING).where(findings.c.asset_id.in_(chunk))):
            out[r.asset_id][(r.vuln_id, r.ecosystem, r.package)] = r
    return out


def _apply_assets(conn: Connection, batch: Sequence[tuple[int, Reports, bool]],
                  from_feed_update: bool, now: datetime,
                  values_cache: dict[Any, dict[str, Any]] | None,
                  events: list[dict[str, Any]]) -> list[LifecycleCounts]:
    """The lifecycle of several assets' reports with one read of their stored findings,
    one read of the triage decisions and one insert, update and close for them all."""
    stored = _existing(conn, [asset_id for asset_id, _, _ in batch])
    # Each asset's keys reported, with its finding (the first producer's by precedence)
    # and every producer of this application that reports it.
    reported_of: list[dict[Key, tuple[Finding, list[str]]]] = []
    for _asset_id, reports, _complete in batch:
        reported: dict[Key, tuple[Finding, list[str]]] = {}
        for producer in sorted(reports, key=_precedence):
            for f in merge_findings(reports[producer]):
                key = (f.vuln_id, f.ecosystem, f.package)
                hit = reported.get(key)
                if hit is None:
                    reported[key] = (f, [producer])
                elif producer not in hit[1]:
                    hit[1].append(producer)
        reported_of.append(reported)
    decisions_of = active_decisions_many(
        conn, [a for (a, _, _), r in zip(batch, reported_of, strict=True) if r], now)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    reopens: list[dict[str, Any]] = []
    thresholds: tuple[float, ...] | None = None  # PATCHPILOT_EPSS_THRESHOLDS, when needed
    all_counts: list[LifecycleCounts] = []
    for (asset_id, _reports, _complete), reported in zip(batch, reported_of, strict=True):
        counts = LifecycleCounts()
        all_counts.append(counts)
        existing = stored[asset_id]
        decisions = decisions_of.get(asset_id, {})
        for key, (f, producers) in reported.items():
            row = existing.get(key)
            sources = sorted(producers)
            if row is not None and row.state != FIXED:
                sources = sorted({*producers_of(row.producer), *producers})
            if values_cache is not None and len(sources) == 1:
                # Keyed by the object: the caller keeps the shared findings alive.
                values = values_cache.get((id(f), sources[0]))
                if values is None:
                    values = values_cache[(id(f), sources[0])] = _row_values(f, sources)
            else:
                values = _row_values(f, sources)
            if row is None:
                decision = decision_for(decisions, f) if decisions else None
                counts.new += 1
                counts.triaged += decision is not None
                inserts.append({"asset_id": asset_id, "vuln_id": f.vuln_id,
                                "ecosystem": f.ecosystem, "package": f.package,
                                "state": decision or OPEN, "first_seen": now,
                                "last_seen": now, "times_reopened": 0,
                                "new_from_feed": from_feed_update, **values})
                continue
            if row.state == FIXED:
                decision = decision_for(decisions, f) if decisions else None
                counts.reopened += 1
                counts.triaged += decision is not None
                reopens.append({"b_id": row.id, "state": decision or OPEN, "last_seen": now,
                                "reopened_at": now, "times_reopened": row.times_reopened + 1,
                                "fixed_at": None, **values})
                events.append(event_row(REOPENED, now, finding_id=row.id, asset_id=asset_id,
                                        producer=values["producer"],
                                        detail={"state": decision} if decision else None))
            else:
                counts.still_open += 1  # open or triaged: the decision stands
                updates.append({"b_id": row.id, "last_seen": now, **values})
                changed = _installations_changed(row.installations, values["installations"])
                if changed is not None:
                    events.append(event_row(INSTALLATIONS_CHANGED, now, finding_id=row.id,
                                            asset_id=asset_id, producer=values["producer"],
                                            detail=changed))
                if values["known_exploited"] and not row.known_exploited:
                    events.append(event_row(KNOWN_EXPLOITED_ADDED, now, finding_id=row.id,
                                            asset_id=asset_id, producer=values["producer"]))
                if (row.state == OPEN and values["epss_score"] is not None
                        and row.epss_score is not None
                        and values["epss_score"] > row.epss_score):
                    # Read once per application, and only when a score rose at all.
                    if thresholds is None:
                        thresholds = load_settings().epss_thresholds
                    crossed = epss_crossing(row.epss_score, values["epss_score"], thresholds)
                    if crossed is not None:
                        events.append(event_row(EPSS_CROSSED, now, finding_id=row.id,
                                                asset_id=asset_id,
                                                producer=values["producer"], detail=crossed))
    if inserts:
        _insert_findings(conn, inserts)
        events.extend(event_row(NEW, now, finding_id=r["id"], asset_id=r["asset_id"],
                                producer=r["producer"],
                                detail={"state": r["state"]} if r["state"] != OPEN else None)
                      for r in inserts)
    for rows in (updates, reopens):
        if rows:
            stmt = (update(findings).where(findings.c.id == bindparam("b_id"))
                    .values({k: bindparam(k) for k in rows[0] if k != "b_id"}))
            conn.execute(stmt, rows)
    gone: list[int] = []
    shrunk: dict[int, list[str]] = {}
    for (asset_id, reports, complete), reported, counts in zip(batch, reported_of, all_counts,
                                                                strict=True):
        if complete:
            counts.fixed = _close(asset_id, stored[asset_id], reported, set(reports), now,
                                  events, gone, shrunk)
    _write_closed(conn, gone, shrunk, now)
    return all_counts


def _insert_findings(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert new findings and give each row its ``id`` (for its events).

    Set-based without RETURNING (SQLAlchemy's INSERT … RETURNING of many wide rows costs
    several times the insert): PostgreSQL takes the keys from the sequence first and
    COPYs; SQLite inserts through the driver and reads the keys back by the findings'
    unique key (asset, vulnerability, ecosystem, package).
    """
    ids = reserve_ids(conn, findings, len(rows))
    if ids is not None:
        for row, i in zip(rows, ids, strict=True):
            row["id"] = i
        insert_rows(conn, findings, rows)
        return
    insert_rows(conn, findings, rows)
    by_key = {(r["asset_id"], r["vuln_id"], r["ecosystem"], r["package"]): r for r in rows}
    asset_ids = sorted({r["asset_id"] for r in rows})
    for start in range(0, len(asset_ids), _ASSETS_PER_READ):
        chunk = asset_ids[start:start + _ASSETS_PER_READ]
        for i, a, v, e, p in conn.execute(
                select(findings.c.id, findings.c.asset_id, findings.c.vuln_id,
                       findings.c.ecosystem, findings.c.package)
                .where(findings.c.asset_id.in_(chunk), findings.c.state != FIXED,
                       findings.c.last_seen == rows[0]["last_seen"])):
            made = by_key.get((a, v, e, p))
            if made is not None:
                made["id"] = i


def _pairs(column: str) -> list[tuple[str | None, str]]:
    return [(r[0], r[1]) for r in orjson.loads(column)]


def _installations_changed(before: str | None, after: str | None
                           ) -> dict[str, list[list[str | None]]] | None:
    """The (location, version) pairs fixed and added between two ``installations``
    values, or None when they are the same (or either is unknown: a row written before
    installations were stored)."""
    if before is None or after is None or before == after:
        return None
    old, new = _pairs(before), _pairs(after)
    fixed = [list(p) for p in old if p not in new]
    added = [list(p) for p in new if p not in old]
    if not fixed and not added:
        return None
    return {"fixed": fixed, "added": added}


def _close(asset_id: int, existing: dict[Key, Any], reported: dict[Key, Any],
           producers: set[str], now: datetime, events: list[dict[str, Any]],
           gone: list[int], shrunk: dict[int, list[str]]) -> int:
    """Take ``producers`` (whose reports were complete) off what they no longer report;
    what nobody reports any more goes to ``gone`` (fixed), what others still report to
    ``shrunk`` (:func:`_write_closed` writes both).  How many were fixed."""
    fixed = 0
    for key, r in existing.items():
        if key in reported or r.state == FIXED:
            continue
        had = producers_of(r.producer)
        left = [p for p in had if p not in producers]
        if not left:
            gone.append(r.id)
            fixed += 1
            events.append(event_row(FIXED_EVENT, now, finding_id=r.id, asset_id=asset_id,
                                    producer=r.producer))
        elif len(left) < len(had):
            shrunk[r.id] = left
    return fixed


def _write_closed(conn: Connection, gone: list[int], shrunk: dict[int, list[str]],
                  now: datetime) -> None:
    for start in range(0, len(gone), 5000):
        conn.execute(update(findings).where(findings.c.id.in_(gone[start:start + 5000]))
                     .values(state=FIXED, fixed_at=now))
    if shrunk:
        # Rare (two producers on one key): the JSON's sources are rewritten from the row.
        rows = []
        for fid, data in conn.execute(select(findings.c.id, findings.c.data)
                                      .where(findings.c.id.in_(list(shrunk)))):
            d = orjson.loads(data)
            d["sources"] = shrunk[fid]
            rows.append({"b_id": fid, "producer": _column(shrunk[fid]),
                         "data": orjson.dumps(d).decode()})
        conn.execute(update(findings).where(findings.c.id == bindparam("b_id"))
                     .values(producer=bindparam("producer"), data=bindparam("data")), rows)
