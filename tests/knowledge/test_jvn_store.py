"""JVN loaded through ``db update --from`` on SQLite and PostgreSQL: the real NEC Aterm,
Planex and JACIC entries as advisories of ecosystem CPE (JVNDB ids aliases of their CVEs,
items limited to the CVEs their phrase names), the Japanese text per CVE, JVN's CVSS where
nothing better scores the CVE, unreadable phrases judged *undetermined*, and alerts
becoming ``jvn_alert`` events once."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, select

from patchpilot.db.tables import advisories, advisory_aliases, affected, finding_events, jvn_alerts
from patchpilot.findings.build import build_findings
from patchpilot.knowledge.cpe_names import CPE
from patchpilot.knowledge.jvn_text import jvn_text
from patchpilot.knowledge.matcher import match_packages
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package
from tests.conftest import SHARED_DATA

HND = SHARED_DATA / "jvn" / "hnd"
# The well-formed JVN files of the shared examples (the captured RSS data feed is not
# well-formed XML: see test_a_broken_file_fails_the_source_and_stores_nothing).
FILES = ("dataFeed_jvndb_detail_hnd.xml", "getVulnDetailInfo_hnd_JVNDB-2022-000097.xml",
         "getVulnOverviewList_hnd.xml", "getAlertList_hnd.xml")
ATERM = "nec:aterm_wx3600hp_firmware"


def _copy(tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "feeds" / "jvn"
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(HND / name, root)
    return root.parent


@pytest.fixture
def loaded(engine: Engine, tmp_path: Path) -> Engine:
    results = update_from(engine, [_copy(tmp_path, *FILES)])
    assert [(r.source, r.status, r.records, r.written) for r in results] == [
        ("jvn:feeds/jvn", "loaded", 11, 11)]  # 9 entries and 2 alerts, all new
    return engine


def _device(version: str, name: str = ATERM) -> Package:
    return Package(ecosystem=Ecosystem(CPE), name=name, version=version)


def test_entries_are_advisories_with_cve_aliases(loaded: Engine) -> None:
    with loaded.connect() as conn:
        ids = conn.execute(select(advisories.c.id).where(advisories.c.feed == "jvn")
                           .order_by(advisories.c.id)).scalars().all()
        assert ids == ["JVNDB-2017-009608", "JVNDB-2018-009328", "JVNDB-2021-002774",
                       "JVNDB-2022-000097", "JVNDB-2025-000001", "JVNDB-2025-000002",
                       "JVNDB-2025-000003", "JVNDB-2025-002884", "JVNDB-2025-002953"]
        pk = conn.execute(select(advisories.c.pk).where(
            advisories.c.id == "JVNDB-2025-000002")).scalar_one()
        assert sorted(conn.execute(select(advisory_aliases.c.alias).where(
            advisory_aliases.c.advisory_pk == pk)).scalars()) == [
            "CVE-2025-0354", "CVE-2025-0355", "CVE-2025-0356", "JVNDB-2025-000002"]
        rows = conn.execute(select(affected.c.ecosystem, affected.c.name, affected.c.status,
                                   affected.c.ranges, affected.c.fixed, affected.c.vulns)
                            .where(affected.c.advisory_pk == pk)
                            .order_by(affected.c.name)).all()
    assert len(rows) == 11
    assert tuple(rows[9]) == ("CPE", ATERM, "affected", '[[null,"1.5.3",null]]', "1.5.3",
                              "CVE-2025-0356")
    assert tuple(rows[3]) == ("CPE", "nec:aterm_wg2600hm4_firmware", "affected",
                              '[[null,"1.4.2",null]]', "1.4.2", "CVE-2025-0354 CVE-2025-0355")


def test_japanese_text_per_cve(loaded: Engine) -> None:
    with loaded.connect() as conn:
        text = jvn_text(conn, "CVE-2025-0356")
        assert jvn_text(conn, "CVE-2099-0001") is None
    assert text is not None
    assert (text.title, text.jvndb, text.url) == (
        "NEC Atermシリーズにおける複数の脆弱性（NV25-003）", ("JVNDB-2025-000002",),
        "https://jvndb.jvn.jp/ja/contents/2025/JVNDB-2025-000002.html")
    assert text.overview is not None and text.overview.startswith(
        "日本電気株式会社が提供するAtermシリーズには")
    assert text.solution is not None and text.solution.startswith("[アップデートする]")


def test_aterm_firmware_matched_by_range_and_scope(loaded: Engine) -> None:
    with loaded.connect() as conn:
        result = match_packages(conn, [_device("1.0.5"), _device("1.5.3")])
        findings = build_findings(conn, result.matches)
    # WX3600HP is named for CVE-2025-0356 only, before 1.5.3.
    assert [(m.vuln_id, m.version, m.affected_range, m.fixed, m.advisory_id)
            for m in result.matches] == [
        ("CVE-2025-0356", "1.0.5", "< 1.5.3", "1.5.3", "JVNDB-2025-000002")]
    assert result.undetermined == ()
    (finding,) = findings
    # No NVD or CVE 5 record scores the CVE here: JVN's CVSS 3.0 stands.
    assert (finding.cvss.score if finding.cvss else None, finding.cvss.source
            if finding.cvss else None, finding.severity) == (7.5, "jvndb.jvn.jp", "High")
    # Every id of the advisories about it: the JVNDB id, and the entry's other CVEs.
    assert finding.aliases == ("CVE-2025-0354", "CVE-2025-0355", "JVNDB-2025-000002")
    assert finding.fix.fixed_version == "1.5.3"
    assert "https://jvndb.jvn.jp/ja/contents/2025/JVNDB-2025-000002.html" in {
        r.url for r in finding.references}


def test_planex_last_affected(loaded: Engine) -> None:
    with loaded.connect() as conn:
        result = match_packages(conn, [_device("1.05", "planex:mzk-dp300n"),
                                       _device("1.06", "planex:mzk-dp300n")])
    assert [(m.vuln_id, m.version, m.affected_range, m.fixed) for m in result.matches] == [
        ("CVE-2025-21603", "1.05", "<= 1.05", None)]


def test_unreadable_phrase_is_undetermined(loaded: Engine) -> None:
    # 「v6 R4 およびそれ以前のバージョン」 cannot be read: the product is undetermined for each
    # of the entry's CVEs, never matched and never dropped.
    with loaded.connect() as conn:
        result = match_packages(conn, [_device("6.4", "jacic:electronic_bidding_core_system")])
    assert result.matches == ()
    assert [(u.package.version, u.advisory_ids, u.reason) for u in result.undetermined] == [
        ("6.4", ("JVNDB-2022-000097",),
         f"{cve}: JVNDB-2022-000097 names jacic:electronic_bidding_core_system without "
         "versions it can read, so 6.4 can be neither confirmed nor ruled out")
        for cve in ("CVE-2022-41993", "CVE-2022-46287", "CVE-2022-46288")]


def test_alerts_are_events_once(loaded: Engine, tmp_path: Path) -> None:
    with loaded.connect() as conn:
        assert conn.execute(select(jvn_alerts.c.id, jvn_alerts.c.cpes)
                            .order_by(jvn_alerts.c.id)).all() == [
            ("MYJVN-ALT-2025-0000", "cpe:/a:dendai.ac.jp:myjvn_api"),
            ("MYJVN-ALT-2025-0011", "cpe:/a:wordpress:wordpress")]
        events = conn.execute(select(finding_events.c.kind, finding_events.c.producer,
                                     finding_events.c.detail)
                              .order_by(finding_events.c.id)).all()
    assert [(k, p) for k, p, _ in events] == [("jvn_alert", "jvn"), ("jvn_alert", "jvn")]
    assert orjson.loads(events[1][2]) == {
        "id": "MYJVN-ALT-2025-0011",
        "title": "WordPress に関するソフトウェア更新情報 (2025年2月12日 公開)",
        "summary": None, "link": None, "cves": [], "cpes": ["cpe:/a:wordpress:wordpress"]}
    # Loading the same alerts again records nothing new.
    again = update_from(loaded, [tmp_path / "feeds"], force=True)
    assert [(r.status, r.written) for r in again] == [("loaded", 0)]
    with loaded.connect() as conn:
        assert len(conn.execute(select(finding_events.c.id)).all()) == 2


def test_a_broken_file_fails_the_source_and_stores_nothing(engine: Engine,
                                                           tmp_path: Path) -> None:
    results = update_from(engine, [_copy(tmp_path, "dataFeed_jvndb_detail_hnd.xml",
                                         "dataFeed_jvndb_rss_hnd.xml")])
    assert [(r.status, r.error) for r in results] == [
        ("failed", f"{tmp_path}/feeds/jvn/dataFeed_jvndb_rss_hnd.xml:116: invalid XML: "
                   "not well-formed (invalid token): line 116, column 9")]
    with engine.connect() as conn:
        assert conn.execute(select(advisories.c.id)).all() == []
