"""Imported findings follow the knowledge base after a feed update (``importers.kb_refresh``,
run by ``pipeline.after_feed_update``): a CVE that CISA adds to KEV, or whose EPSS score
rises across a threshold, gives an imported finding the same events and priority a
matched one gets -- without the report being imported again.

Real reports from ../shared/data/reports: Tenable's ``nessus_with_cwe`` (one host, PHP
5.1.6 on tcp/80: fifteen CVEs, CVE-2006-1015 … CVE-2007-5424, the scanner saying "no
exploit available") and a Tenable CSV export (two hosts; its CVE-2004-2761 item says an
exploit is available).  KEV rows are written with ``knowledge.store.write_kev``, EPSS
scores loaded from score files as FIRST publishes them; on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, insert, select, update

from patchpilot import pipeline, queue
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import asset_context, finding_events, finding_priority, findings
from patchpilot.findings.triage import record_decision
from patchpilot.importers.apply import import_file
from patchpilot.importers.kb_refresh import refresh_imported
from patchpilot.knowledge.store import write_kev
from patchpilot.knowledge.update import SourceResult, update_from
from patchpilot.models import KevEntry, VulnId
from patchpilot.scoring.apply import reprioritise_engine

NESSUS = "tenable/nessus__nessus_with_cwe-.nessus"
TENABLE_CSV = "tenable/nessus__nessus_many_vuln.csv"
PHP = "CVE-2006-1015"  # an item of the .nessus report (High, CVSS v2 7.5 from the report)
WEAK_HASH = "CVE-2004-2761"  # the CSV's item whose scanner reports an exploit
KEV_LOADED = SourceResult(source="kev", feed="kev", status="loaded", records=1, written=1)


def _import(engine: Engine, shared_data: Path, report: str) -> None:
    import_file(engine, shared_data / "reports" / report)


def _kev(engine: Engine, *cves: str) -> None:
    with engine.begin() as conn:
        write_kev(conn, [KevEntry(cve=VulnId(c), date_added="2024-05-01",
                                  due_date="2024-05-22", name="PHP buffer overflow")
                         for c in cves])


def _epss(engine: Engine, folder: Path, day: str, scores: dict[str, float]) -> list[Any]:
    """Load an EPSS score file of ``day`` (FIRST's CSV layout); the update's results."""
    path = folder / day / "epss" / f"epss_scores-{day}.csv"
    path.parent.mkdir(parents=True)
    path.write_text(f"#model_version:v2023.03.01,score_date:{day}T00:00:00+0000\n"
                    "cve,epss,percentile\n"
                    + "".join(f"{cve},{score:.9f},0.5\n" for cve, score in scores.items()))
    results = update_from(engine, [path.parent.parent])
    assert {r.status for r in results} == {"loaded"}
    return results


def _row(engine: Engine, vuln: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(findings).where(findings.c.vuln_id == vuln)).one()


def _data(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {v: orjson.loads(d) for v, d in conn.execute(
            select(findings.c.vuln_id, findings.c.data))}


def _events(engine: Engine, kind: str) -> list[tuple[int, int, str, Any]]:
    with engine.connect() as conn:
        return [(r.finding_id, r.asset_id, r.producer,
                 orjson.loads(r.detail) if r.detail else None)
                for r in conn.execute(select(finding_events).where(finding_events.c.kind == kind)
                                      .order_by(finding_events.c.id))]


def _priority(engine: Engine, finding_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(finding_priority.c.priority).where(
            finding_priority.c.finding_id == finding_id)).scalar_one())


def test_kev_addition_reaches_an_imported_finding_once(engine: Engine,
                                                       shared_data: Path) -> None:
    _import(engine, shared_data, NESSUS)
    php = _row(engine, PHP)
    # The host is tier 2 in the CMDB: High on tier 2 is P2; the shipped configuration
    # makes a known-exploited finding P1 on tiers 1 and 2 (kev_top_tiers).
    with engine.begin() as conn:
        conn.execute(insert(asset_context).values(
            asset_id=php.asset_id, criticality=2, source="cmdb-import",
            updated_at=datetime(2024, 5, 1, tzinfo=UTC)))
    reprioritise_engine(engine)
    assert _priority(engine, php.id) == 2
    before = _data(engine)

    _kev(engine, PHP)
    follow = pipeline.after_feed_update(engine, [KEV_LOADED])

    assert follow.imported is not None
    assert follow.imported.to_dict() == {"findings": 15, "changed": 1,
                                         "known_exploited_added": 1, "epss_crossed": 0}
    assert follow.rematch is not None and follow.rematch.assets == 0  # no inventory
    assert _events(engine, "known_exploited_added") == [
        (php.id, php.asset_id, "importer:tenable", None)]
    row = _row(engine, PHP)
    assert (row.known_exploited, row.severity, row.cvss_score) == (True, "High", 7.5)
    assert _priority(engine, php.id) == 1
    assert _events(engine, "priority_changed")[-1] == (
        php.id, php.asset_id, None, {"from": 2, "to": 1})
    data = _data(engine)
    assert data[PHP]["exploit"] == {
        "known_exploited": True, "kev_date_added": "2024-05-01", "kev_due_date": "2024-05-22",
        "kev_ransomware": False, "epss_score": None, "epss_percentile": None,
        "references": [], "vendor_exploited": False, "summary": "KEV"}
    # The scanner's "no exploit available" stays its claim; KEV now stands beside it.  The
    # KEV entry's name is no title here: the report gave one.
    assert data[PHP]["exploit_reported"] is False
    assert data[PHP]["field_sources"] == {**before[PHP]["field_sources"],
                                          "exploit": "report + knowledge base"}
    assert data[PHP]["name"] == before[PHP]["name"] == "PHP 5.x < 5.2 Multiple Vulnerabilities"
    assert {k: v for k, v in data[PHP].items() if k not in ("exploit", "field_sources")} == {
        k: v for k, v in before[PHP].items() if k not in ("exploit", "field_sources")}
    assert {v: d for v, d in data.items() if v != PHP} == {
        v: d for v, d in before.items() if v != PHP}

    # The same knowledge base again: nothing changes, nothing is written.
    again = pipeline.after_feed_update(engine, [KEV_LOADED])
    assert again.imported is not None and again.imported.changed == 0
    assert again.reprioritised is None  # neither a re-match nor a changed fact
    assert len(_events(engine, "known_exploited_added")) == 1
    assert _data(engine) == data


def test_refreshed_finding_is_what_an_import_now_would_give(engine: Engine, shared_data: Path,
                                                            tmp_path: Path) -> None:
    """The refresh follows convert.py's rules: the refreshed JSON of every finding of both
    reports equals that of a fresh import into a database that already had the facts."""
    _import(engine, shared_data, NESSUS)
    _import(engine, shared_data, TENABLE_CSV)
    scores = {PHP: 0.02145, WEAK_HASH: 0.00871, "CVE-2013-2566": 0.00655}
    _kev(engine, PHP, WEAK_HASH)
    pipeline.after_feed_update(engine, [KEV_LOADED, *_epss(engine, tmp_path / "a",
                                                           "2024-05-02", scores)])

    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgrade_schema(fresh)
    try:
        _kev(fresh, PHP, WEAK_HASH)
        _epss(fresh, tmp_path / "b", "2024-05-02", scores)
        _import(fresh, shared_data, NESSUS)
        _import(fresh, shared_data, TENABLE_CSV)
        assert _data(engine) == _data(fresh)
    finally:
        fresh.dispose()
    # The scanner's own exploit claim stands beside KEV and EPSS.
    weak = _data(engine)[WEAK_HASH]
    assert (weak["exploit_reported"], weak["field_sources"]["exploit"]) == (
        True, "report + knowledge base")
    assert weak["exploit"]["known_exploited"] is True
    assert weak["exploit"]["epss_score"] == 0.00871
    assert _row(engine, WEAK_HASH).epss_score == 0.00871


def test_report_claim_outlives_the_kev_entry(engine: Engine, shared_data: Path) -> None:
    _import(engine, shared_data, TENABLE_CSV)
    assert _data(engine)[WEAK_HASH]["field_sources"]["exploit"] == "report"
    _kev(engine, WEAK_HASH)
    pipeline.after_feed_update(engine, [KEV_LOADED])
    assert _row(engine, WEAK_HASH).known_exploited is True
    # CISA withdraws the entry (a new catalogue without it): KEV's evidence goes, the
    # scanner's claim stays, and nothing announces an addition.
    _kev(engine, "CVE-2021-44228")
    pipeline.after_feed_update(engine, [KEV_LOADED])
    row = _row(engine, WEAK_HASH)
    data = orjson.loads(row.data)
    assert (row.known_exploited, data["exploit"]["known_exploited"]) == (False, False)
    assert (data["exploit_reported"], data["field_sources"]["exploit"]) == (True, "report")
    assert len(_events(engine, "known_exploited_added")) == 1


def test_fixed_imported_finding_is_untouched(engine: Engine, shared_data: Path) -> None:
    _import(engine, shared_data, NESSUS)
    php = _row(engine, PHP)
    with engine.begin() as conn:  # the host was patched: a later report closed it
        conn.execute(update(findings).where(findings.c.id == php.id).values(state="fixed"))
    fixed = _row(engine, PHP)
    _kev(engine, PHP)
    follow = pipeline.after_feed_update(engine, [KEV_LOADED])
    assert follow.imported is not None
    assert (follow.imported.findings, follow.imported.changed) == (14, 0)
    assert _row(engine, PHP) == fixed
    assert _events(engine, "known_exploited_added") == []


def test_epss_crossing_once_for_open_imported_findings(
        engine: Engine, shared_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_EPSS_THRESHOLDS", "0.01,0.2,0.5")
    _import(engine, shared_data, NESSUS)
    php, accepted = _row(engine, PHP), _row(engine, "CVE-2006-1549")
    with engine.begin() as conn:
        record_decision(conn, "ana", vuln_id="CVE-2006-1549", package=None, scope="asset",
                        asset_id=accepted.asset_id, decision="risk_accepted",
                        reason="PHP is behind the WAF")
    assert _priority(engine, php.id) == 3  # High on an asset without CMDB context (tier 3)
    # Yesterday's scores are the findings' first: no crossing.
    first = pipeline.after_feed_update(engine, _epss(engine, tmp_path, "2024-05-01", {
        PHP: 0.005, "CVE-2006-1549": 0.005, "CVE-2006-2660": 0.009}))
    assert first.imported is not None and first.imported.changed == 3
    assert _events(engine, "epss_crossed") == []
    assert _row(engine, PHP).epss_score == 0.005
    # Today: PHP rose across 0.01 and 0.2 (the highest one counts); the accepted finding
    # rose across 0.01 (not open: no event); CVE-2006-2660 rose across nothing.
    today = {PHP: 0.35867, "CVE-2006-1549": 0.02349, "CVE-2006-2660": 0.00931}
    follow = pipeline.after_feed_update(engine, _epss(engine, tmp_path, "2024-05-02", today))
    assert follow.imported is not None
    assert (follow.imported.changed, follow.imported.epss_crossed) == (3, 1)
    crossed = [(php.id, php.asset_id, "importer:tenable",
                {"from": 0.005, "to": 0.35867, "threshold": 0.2})]
    assert _events(engine, "epss_crossed") == crossed
    assert _row(engine, PHP).epss_score == 0.35867
    # EPSS above 0.1 raises one step (shipped configuration): P3 -> P2.
    assert _priority(engine, php.id) == 2
    # The same scores again: nothing crossed, nothing written.
    again = refresh_imported(engine)
    assert (again.findings, again.changed, again.epss_crossed) == (15, 0, 0)
    assert _events(engine, "epss_crossed") == crossed


def test_batches_cover_every_finding(engine: Engine, shared_data: Path) -> None:
    """One transaction per batch: a batch smaller than the estate still reaches all."""
    _import(engine, shared_data, NESSUS)
    _kev(engine, PHP, "CVE-2007-5424")
    done = refresh_imported(engine, batch=4)
    assert done.to_dict() == {"findings": 15, "changed": 2, "known_exploited_added": 2,
                              "epss_crossed": 0}
    assert sorted(e[0] for e in _events(engine, "known_exploited_added")) == sorted(
        [_row(engine, PHP).id, _row(engine, "CVE-2007-5424").id])


def test_queued_rematch_job_refreshes_imported_findings(engine: Engine,
                                                        shared_data: Path) -> None:
    """``patchpilot db update`` without ``--rematch`` queues the re-match: its job
    refreshes the imported findings too, and queues the re-prioritisation."""
    _import(engine, shared_data, NESSUS)
    _kev(engine, PHP)
    follow = pipeline.after_feed_update(engine, [KEV_LOADED], inline=False)
    assert follow.job_id is not None and follow.imported is None
    job = queue.lease(engine, "w1", kinds=(pipeline.REMATCH,))
    assert job is not None and job.id == follow.job_id
    result = pipeline.run_rematch(engine, job)
    assert result["imported"] == {"findings": 15, "changed": 1, "known_exploited_added": 1,
                                  "epss_crossed": 0}
    assert result["prioritise_job"] is not None
    assert [e[0] for e in _events(engine, "known_exploited_added")] == [_row(engine, PHP).id]
