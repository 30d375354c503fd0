"""Imported findings' knowledge-base facts, brought up to date after a feed update.

An imported finding gets its KEV, EPSS and CVE-record facts when its report is imported
(:mod:`patchpilot.importers.convert`).  The matcher's findings follow the knowledge base
through the re-match after every feed update (``scans.rematch``); an imported finding has
no inventory to re-match, so without this it would keep the facts of its import day -- a
vulnerability CISA adds to KEV tomorrow would never raise a ``known_exploited_added``
event or a priority for a host known only from a Nessus or Qualys report.

:func:`refresh_imported` (``pipeline.after_feed_update`` runs it when KEV, EPSS or CVE
records changed) re-reads every unfixed imported finding of a CVE, a batch of findings per
transaction: their knowledge-base facts in a handful of set queries
(:func:`patchpilot.findings.build.vulnerability_facts`), their JSON recomputed by
:func:`patchpilot.importers.convert.refresh_stored` (what the report claimed stays), and
the changed rows written in one executemany with their events -- the events the re-match
writes for the matcher's findings (``findings.lifecycle``): ``known_exploited_added`` when
KEV newly lists the vulnerability (open or triaged findings), ``epss_crossed`` when the
score rose across a threshold (open findings; :func:`patchpilot.findings.events.epss_crossing`).
A second run over the same knowledge base changes nothing and writes nothing.  The
caller re-prioritises afterwards (``scoring.apply.reprioritise``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.engine import Connection

from patchpilot.clock import now_utc
from patchpilot.config import load_settings
from patchpilot.db.tables import findings
from patchpilot.findings.build import vulnerability_facts
from patchpilot.findings.events import (
    EPSS_CROSSED,
    KNOWN_EXPLOITED_ADDED,
    epss_crossing,
    event_row,
    write_events,
)
from patchpilot.findings.model import FIXED, OPEN
from patchpilot.importers.convert import refresh_stored

# Findings read, recomputed and written per transaction: short write transactions (the
# matcher's re-match batches alike), few enough CVEs for one set query each.
BATCH = 2000

# What a batch reads of each finding.
_COLUMNS = (findings.c.id, findings.c.asset_id, findings.c.vuln_id, findings.c.state,
            findings.c.producer, findings.c.known_exploited, findings.c.epss_score,
            findings.c.data)


@dataclass(slots=True)
class ImportedRefresh:
    """What :func:`refresh_imported` did."""

    findings: int = 0  # unfixed imported findings of a CVE read
    changed: int = 0  # whose facts changed (rewritten)
    known_exploited_added: int = 0  # events written
    epss_crossed: int = 0

    def to_dict(self) -> dict[str, int]:
        """JSON-ready (a job's result)."""
        return asdict(self)


def refresh_imported(engine: Engine, *, batch: int = BATCH,
                     now: datetime | None = None) -> ImportedRefresh:
    """Bring every unfixed imported finding's knowledge-base facts up to date, one
    transaction per ``batch`` findings (in id order, so a batch committed stays done if a
    later one fails; running again finishes the rest)."""
    out = ImportedRefresh()
    now = now or now_utc()
    thresholds: list[tuple[float, ...]] = []  # the EPSS thresholds, read when needed
    last = 0
    while True:
        with engine.begin() as conn:
            # FOR UPDATE (PostgreSQL): an import applying the same rows meanwhile waits,
            # rather than one of the two writes being lost.  SQLite has one writer anyway.
            rows = conn.execute(
                select(*_COLUMNS)
                .where(findings.c.id > last, findings.c.state != FIXED,
                       findings.c.producer.like("%importer:%"),
                       findings.c.vuln_id.like("CVE-%"))
                .order_by(findings.c.id).limit(batch).with_for_update()).all()
            if not rows:
                return out
            last = rows[-1].id
            refresh_rows(conn, rows, now, out, thresholds)
        if len(rows) < batch:
            return out


def refresh_rows(conn: Connection, rows: Sequence[Any], now: datetime,
                 out: ImportedRefresh, thresholds: list[tuple[float, ...]]) -> None:
    """:func:`refresh_imported` of one batch of ``findings`` rows (:data:`_COLUMNS`), in
    the caller's transaction; counts go to ``out``.  ``thresholds``: a one-slot cache of
    ``PATCHPILOT_EPSS_THRESHOLDS``, filled the first time a score rises."""
    # Only rows whose JSON is an importer's (field_sources): a key the matcher reports as
    # well carries the matcher's finding, which the re-match already refreshed.
    stored = [(r, d) for r in rows if "field_sources" in (d := orjson.loads(r.data))]
    out.findings += len(stored)
    if not stored:
        return
    facts = vulnerability_facts(conn, [r.vuln_id for r, _ in stored])
    changes: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for row, data in stored:
        fresh = refresh_stored(data, facts.get(row.vuln_id))
        if fresh == data:
            continue
        exploit, cvss = fresh["exploit"], fresh["cvss"]
        changes.append({"b_id": row.id, "data": orjson.dumps(fresh).decode(),
                        "known_exploited": exploit["known_exploited"],
                        "epss_score": exploit["epss_score"], "severity": fresh["severity"],
                        "cvss_score": cvss["score"] if cvss else None})
        # The events of findings.lifecycle's re-match, by the same rules.
        if exploit["known_exploited"] and not row.known_exploited:
            events.append(event_row(KNOWN_EXPLOITED_ADDED, now, finding_id=row.id,
                                    asset_id=row.asset_id, producer=row.producer))
            out.known_exploited_added += 1
        score = exploit["epss_score"]
        if (row.state == OPEN and score is not None and row.epss_score is not None
                and score > row.epss_score):
            if not thresholds:
                thresholds.append(load_settings().epss_thresholds)
            crossed = epss_crossing(row.epss_score, score, thresholds[0])
            if crossed is not None:
                events.append(event_row(EPSS_CROSSED, now, finding_id=row.id,
                                        asset_id=row.asset_id, producer=row.producer,
                                        detail=crossed))
                out.epss_crossed += 1
    if changes:
        conn.execute(update(findings).where(findings.c.id == bindparam("b_id")).values(
            {k: bindparam(k) for k in changes[0] if k != "b_id"}), changes)
        out.changed += len(changes)
    write_events(conn, events)
