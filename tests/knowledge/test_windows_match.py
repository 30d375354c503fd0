"""Windows hosts matched against the real MSRC months (December 2025 to March 2026) on
SQLite and PostgreSQL: the hosts are the real ``systeminfo`` files of
../shared/data/windows/systeminfo, given a UBR and KBs where a scenario needs one.

Expected values were read from the CVRF XML: in cvrfDocument-2026-Mar.xml the Vendor Fix
"5078766" lists product 11923 (Windows Server 2022) for 40 CVEs, FixedBuild
10.0.20348.4893, Supercedence 5075906; February's KB5075906 (10.0.20348.4773) supersedes
January's KB5073457 (10.0.20348.4648), which supersedes December's KB5071547.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine

from patchpilot.findings.windows import windows_host
from patchpilot.inventory.windows import inventory_of, read_windows_bytes
from patchpilot.knowledge.update import update_from
from patchpilot.knowledge.windows import MsrcKnowledge, WindowsHost, match_windows
from tests.conftest import SHARED_DATA

MSRC = SHARED_DATA / "msrc"
SYSTEMINFO = SHARED_DATA / "windows" / "systeminfo"
MONTHS = ("2025-Dec", "2026-Jan", "2026-Feb", "2026-Mar")


def load(engine: Engine, tmp_path: Path, months: tuple[str, ...] = MONTHS) -> None:
    """Load the MSRC months through ``db update --from`` (as test_msrc_store does)."""
    root = tmp_path / "feeds" / "msrc"
    root.mkdir(parents=True, exist_ok=True)
    for month in months:
        shutil.copy(MSRC / f"cvrfDocument-{month}.xml", root)
    assert {r.status for r in update_from(engine, [root.parent])} == {"loaded"}


def host(name: str, **changes: object) -> WindowsHost:
    """The host of a real systeminfo file, with ``changes`` (ubr, kbs, …)."""
    info = inventory_of(read_windows_bytes((SYSTEMINFO / name).read_bytes(), name)).windows
    assert info is not None
    return WindowsHost(**{**{f: getattr(windows_host(info), f)
                             for f in WindowsHost.__dataclass_fields__}, **changes})


def test_server_2022_missing_march(engine: Engine, tmp_path: Path) -> None:
    load(engine, tmp_path)
    # February's cumulative update installed (UBR 4773): only March's CVEs are open.
    srv = host("srv_2022_systeminfo.txt", ubr=4773, kbs=frozenset({"KB5075906"}))
    with engine.connect() as conn:
        result = match_windows(conn, srv, MsrcKnowledge())
    assert [(p.product_id, p.name, p.package) for p in result.products] == [
        ("11923", "Windows Server 2022", "Windows Server 2022")]
    assert len(result.matches) == 40
    assert {(m.kb, m.install_kb, m.fixed_build, m.month, m.restart, m.decided_by,
             m.installed) for m in result.matches} == {
        ("KB5078766", "KB5078766", "10.0.20348.4893", "2026-Mar", True, "build",
         "10.0.20348.4773")}
    smb = next(m for m in result.matches if m.cve == "CVE-2026-24294")
    assert (smb.chain, smb.cvss_score, smb.severity, smb.impact, smb.affected_range) == (
        ("KB5078766",), 7.8, "Important", "Elevation of Privilege", "< 10.0.20348.4893")
    assert (result.end_of_life, result.undetermined) == ((), ())
    # The March update installed, by build or by KB: nothing open.
    with engine.connect() as conn:
        assert match_windows(conn, host("srv_2022_systeminfo.txt", ubr=4893)).matches == ()
        assert match_windows(conn, host("srv_2022_systeminfo.txt",
                                        kbs=frozenset({"KB5078766"}))).matches == ()


def test_supersedence_closes_older_cves(engine: Engine, tmp_path: Path) -> None:
    load(engine, tmp_path)
    with engine.connect() as conn:
        # The file as saved (no UBR, three 2021 KBs): every loaded CVE of the product is
        # open, decided by KB.
        bare = match_windows(conn, host("srv_2022_systeminfo.txt"))
        assert (len(bare.matches), {m.decided_by for m in bare.matches}) == (176, {"kb"})
        jan = next(m for m in bare.matches if m.cve == "CVE-2026-20805")
        assert (jan.kb, jan.fixed_build, jan.chain, jan.install_kb, jan.installed) == (
            "KB5073457", "10.0.20348.4648", ("KB5073457", "KB5075906", "KB5078766"),
            "KB5078766", "10.0.20348")
        # January's KB itself closes the CVE; February's, which supersedes it, too.
        for kb in ("KB5073457", "KB5075906"):
            result = match_windows(conn, host("srv_2022_systeminfo.txt",
                                              kbs=frozenset({kb})))
            assert "CVE-2026-20805" not in {m.cve for m in result.matches}
            assert {m.month for m in result.matches} == (
                {"2026-Feb", "2026-Mar"} if kb == "KB5073457" else {"2026-Mar"})
        # Windows 10 1809: February's KB5075904 names no superseded KB, yet a later
        # cumulative update of the product contains January's fix.
        ltsc = match_windows(conn, host("10_1809_x64_education_en-us_systeminfo.txt",
                                        kbs=frozenset({"KB5078752"})))
        assert (len(ltsc.matches), ltsc.products[0].product_id) == (0, "11569")


def test_incomplete_kb_list_is_undetermined(engine: Engine, tmp_path: Path) -> None:
    load(engine, tmp_path, ("2026-Mar",))
    with engine.connect() as conn:
        cut = match_windows(conn, host("srv_2022_systeminfo.txt", kbs_complete=False))
        assert (len(cut.matches), len(cut.undetermined)) == (0, 40)
        assert cut.undetermined[0].reason.startswith(
            "Windows Server 2022: none of KB5078766 is in the host's KB list, but that "
            "list is cut short")
        # The build proves it open whatever the KB list says.
        proven = match_windows(conn, host("srv_2022_systeminfo.txt", kbs_complete=False,
                                          ubr=4773))
        assert (len(proven.matches), len(proven.undetermined)) == (40, 0)


def test_products_and_end_of_life(engine: Engine, tmp_path: Path) -> None:
    load(engine, tmp_path)
    with engine.connect() as conn:
        def one(name: str, **changes: object):  # type: ignore[no-untyped-def]
            return match_windows(conn, host(name, **changes))

        win11 = one("11_23H2_x64_enterprise_systeminfo.txt")
        assert [p.name for p in win11.products] == [
            "Windows 11 Version 23H2 for x64-based Systems"]
        assert {m.install_kb for m in win11.matches} == {"KB5078883"}
        win10 = one("10_21H2_x64_pro_systeminfo.txt")
        assert ([p.product_id for p in win10.products], {m.install_kb for m in win10.matches}
                ) == (["11931"], {"KB5078885"})
        core = one("srv_2022_systeminfo.txt", installation_type="Server Core")
        assert [p.name for p in core.products] == [
            "Windows Server 2022 (Server Core installation)"]
        seven = one("7_sp1_x64_enterprise_en-us_A_systeminfo.txt")
        assert (seven.products, seven.matches, seven.end_of_life) == ((), (), (
            "Windows 7: no loaded Microsoft security update document (2025-Dec to "
            "2026-Mar) names it: end of life, Microsoft publishes no security updates "
            "for it",))
        # Server 2008 is in the documents with Service Pack 2 only.
        sp1 = one("srv_2008_rtm_x64_standard_en-us_systeminfo.txt")
        assert sp1.matches == () and "end of life for this service pack" in sp1.end_of_life[0]
        # Windows 11 22H2 left the documents after December: its December CVEs still
        # count, and the host is said to be end of life.
        w22 = one("11_22H2_x64_home-single-language_systeminfo.txt")
        assert ({m.month for m in w22.matches}, w22.end_of_life) == ({"2025-Dec"}, (
            "Windows 11 Version 22H2 for x64-based Systems: last named in the 2025-Dec "
            "document, not in 2026-Mar: end of life, later vulnerabilities are not "
            "published for it",))


def test_sql_server_branch(engine: Engine, tmp_path: Path) -> None:
    load(engine, tmp_path, ("2026-Mar",))
    with engine.connect() as conn:
        def sql(version: str):  # type: ignore[no-untyped-def]
            return match_windows(conn, host("srv_2022_systeminfo.txt", kbs=frozenset(
                {"KB5078766"}), components={"sql-server": version, "exchange": "15.2.1544.4"}))

        cu = sql("15.0.4415.2")  # SQL Server 2019 CU 2x: the CU branch
        assert {(m.product_id, m.kb, m.fixed_build, m.installed, m.package)
                for m in cu.matches} == {("16785", "KB5077469", "15.0.4460.4", "15.0.4415.2",
                                          "Microsoft SQL Server 2019")}
        assert cu.notes[0].startswith("exchange 15.2.1544.4: Exchange Server is listed")
        gdr = sql("15.0.2000.5")  # RTM, on the GDR branch
        assert {(m.product_id, m.kb) for m in gdr.matches} == {("11821", "KB5077470")}
        assert sql("15.0.4460.4").matches == ()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cache_follows_the_feed(engine: Engine, tmp_path: Path) -> None:
    knowledge = MsrcKnowledge()
    srv = host("srv_2022_systeminfo.txt")
    with engine.connect() as conn:
        assert match_windows(conn, srv, knowledge).notes[0].startswith(
            "no MSRC document is loaded")
    load(engine, tmp_path, ("2026-Mar",))
    with engine.connect() as conn:
        assert len(match_windows(conn, srv, knowledge).matches) == 40
