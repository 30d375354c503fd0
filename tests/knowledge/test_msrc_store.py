"""MSRC months loaded through ``db update --from`` into msrc_* on SQLite and PostgreSQL:
exact rows from the real March 2026 document, a month replaced on reload, a bad document
storing nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import Engine, func, select

from patchpilot.db.tables import feed_state, msrc_fixes, msrc_products, msrc_vulns
from patchpilot.knowledge.update import update_from
from tests.conftest import SHARED_DATA

MSRC = SHARED_DATA / "msrc"


def _copy(tmp_path: Path, *months: str) -> Path:
    root = tmp_path / "feeds" / "msrc"
    root.mkdir(parents=True, exist_ok=True)
    for month in months:
        shutil.copy(MSRC / f"cvrfDocument-{month}.xml", root)
    return root.parent


def _count(engine: Engine, table, month: str) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)
                            .where(table.c.month == month)).scalar_one()


def test_march_windows_server_2022(engine: Engine, tmp_path: Path) -> None:
    results = update_from(engine, [_copy(tmp_path, "2026-Mar")])
    assert [(r.source, r.status, r.records) for r in results] == [
        ("msrc:feeds/msrc/cvrfDocument-2026-Mar.xml", "loaded", 424)]
    with engine.connect() as conn:
        product = conn.execute(select(msrc_products).where(
            msrc_products.c.product_id == "11923")).one()
        assert tuple(product) == ("11923", "Windows Server 2022", "Windows Server", "2022",
                                  None, "x64", "Windows", "2026-Mar")
        vuln = conn.execute(select(msrc_vulns).where(msrc_vulns.c.cve == "CVE-2026-24294")
                            ).one()
        assert (vuln.month, vuln.title, vuln.severity, vuln.exploited,
                vuln.publicly_disclosed, vuln.exploitability, vuln.workaround) == (
            "2026-Mar", "Windows SMB Server Elevation of Privilege Vulnerability",
            "Important", False, False, "Exploitation More Likely", None)
        fixes = conn.execute(select(msrc_fixes).where(
            msrc_fixes.c.cve == "CVE-2026-24294", msrc_fixes.c.product_id == "11923")
            .order_by(msrc_fixes.c.fix.desc())).all()
        assert [tuple(f) for f in fixes] == [
            ("2026-Mar", "CVE-2026-24294", "11923", "5078766", "KB5078766", "KB5075906",
             "10.0.20348.4893", True,
             "https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB5078766",
             "Security Update", 7.8,
             "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C", "Important",
             "Elevation of Privilege"),
            ("2026-Mar", "CVE-2026-24294", "11923", "5078737", "KB5078737", "KB5075943",
             "10.0.20348.4830", False, None, "Security Hotpatch Update", 7.8,
             "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C", "Important",
             "Elevation of Privilege"),
        ]
        # The March cumulative update for Windows Server 2022 fixes 40 CVEs.
        assert conn.execute(select(func.count(msrc_fixes.c.cve.distinct())).where(
            msrc_fixes.c.kb == "KB5078766", msrc_fixes.c.product_id == "11923")
            ).scalar_one() == 40
    assert (_count(engine, msrc_vulns, "2026-Mar"), _count(engine, msrc_fixes, "2026-Mar")) \
        == (424, 2352)


def test_exploited_and_supersedence_chain_over_months(engine: Engine, tmp_path: Path) -> None:
    update_from(engine, [_copy(tmp_path, "2026-Feb", "2026-Mar")])
    with engine.connect() as conn:
        vuln = conn.execute(select(msrc_vulns.c.exploited, msrc_vulns.c.exploitability)
                            .where(msrc_vulns.c.cve == "CVE-2026-21519")).one()
        assert tuple(vuln) == (True, "Exploitation Detected")
        feb = conn.execute(select(msrc_fixes.c.kb, msrc_fixes.c.supersedes,
                                  msrc_fixes.c.fixed_build).where(
            msrc_fixes.c.cve == "CVE-2026-21519", msrc_fixes.c.product_id == "11923",
            msrc_fixes.c.subtype == "Security Update")).one()
        # March's KB5078766 supersedes February's KB5075906, which supersedes KB5073457.
        assert tuple(feb) == ("KB5075906", "KB5073457", "10.0.20348.4773")
        assert sorted(conn.execute(select(msrc_vulns.c.month, func.count()).group_by(
            msrc_vulns.c.month)).all()) == [("2026-Feb", 141), ("2026-Mar", 424)]


def test_reload_replaces_the_month_only(engine: Engine, tmp_path: Path) -> None:
    root = _copy(tmp_path, "2026-Feb", "2026-Mar")
    update_from(engine, [root])
    # A re-published March with one CVE fewer: reloading replaces March's rows exactly.
    mar = root / "msrc" / "cvrfDocument-2026-Mar.xml"
    data = mar.read_bytes()
    start = data.rindex(b"<vuln:Vulnerability ", 0,
                        data.index(b"<vuln:CVE>CVE-2026-24294</vuln:CVE>"))
    end = data.index(b"</vuln:Vulnerability>", start) + len(b"</vuln:Vulnerability>")
    mar.write_bytes(data[:start] + data[end:])
    [feb_result, mar_result] = update_from(engine, [root])
    assert (feb_result.status, mar_result.status) == ("unchanged", "loaded")
    assert (mar_result.records, mar_result.removed) == (423, 1)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(msrc_fixes).where(
            msrc_fixes.c.cve == "CVE-2026-24294", msrc_fixes.c.month == "2026-Mar")
            ).scalar_one() == 0
    assert _count(engine, msrc_vulns, "2026-Mar") == 423
    assert (_count(engine, msrc_vulns, "2026-Feb"), _count(engine, msrc_fixes, "2026-Feb")) \
        == (141, 1135)


def test_malformed_document_stores_nothing_and_keeps_the_month(engine: Engine,
                                                               tmp_path: Path) -> None:
    root = _copy(tmp_path, "2026-Mar")
    update_from(engine, [root])
    mar = root / "msrc" / "cvrfDocument-2026-Mar.xml"
    data = mar.read_bytes()
    # The last vulnerability's score is broken: everything before it was read fine.
    cut = data.rindex(b"<vuln:BaseScore>")
    end = data.index(b"</vuln:BaseScore>", cut)
    mar.write_bytes(data[:cut] + b"<vuln:BaseScore>n/a" + data[end:])
    jan = root / "msrc" / "cvrfDocument-2026-Jan.xml"
    jan.write_bytes((MSRC / "cvrfDocument-2026-Jan.xml").read_bytes()[:2_000_000])
    results = {r.source: r for r in update_from(engine, [root])}
    jan_result = results["msrc:feeds/msrc/cvrfDocument-2026-Jan.xml"]
    mar_result = results["msrc:feeds/msrc/cvrfDocument-2026-Mar.xml"]
    assert jan_result.status == "failed" and jan_result.error is not None
    assert jan_result.error.startswith(f"{jan}:") and "invalid XML" in jan_result.error
    assert mar_result.status == "failed"
    assert mar_result.error == (f"{mar}: vuln:Vulnerability #424 (CVE-2026-32187): "
                                "vuln:ScoreSet[0]/vuln:BaseScore 'n/a' is not a number")
    assert _count(engine, msrc_vulns, "2026-Jan") == 0
    assert (_count(engine, msrc_vulns, "2026-Mar"), _count(engine, msrc_fixes, "2026-Mar")) \
        == (424, 2352)
    with engine.connect() as conn:
        assert conn.execute(select(feed_state.c.source).where(
            feed_state.c.feed == "msrc")).scalars().all() == [
            "msrc:feeds/msrc/cvrfDocument-2026-Mar.xml"]
