"""Windows findings (producer ``msrc``) from the real MSRC months and a real systeminfo
file, on SQLite and PostgreSQL: the contract's fields, MSRC's "Exploited: Yes" as exploit
evidence, and a stored host whose March update (or a superseding one) closes its CVEs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from patchpilot.db.tables import findings
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.findings.model import MSRC, WINDOWS
from patchpilot.findings.scan import scan_inventory
from patchpilot.inventory.windows import inventory_of, read_windows_bytes
from patchpilot.knowledge.update import update_from
from patchpilot.pipeline import after_feed_update, process_inventory
from tests.conftest import SHARED_DATA
from tests.knowledge.test_windows_match import load

SRV_2022 = SHARED_DATA / "windows" / "systeminfo" / "srv_2022_systeminfo.txt"


def inventory(**windows: object):  # type: ignore[no-untyped-def]
    inv = inventory_of(read_windows_bytes(SRV_2022.read_bytes(), SRV_2022.name))
    assert inv.windows is not None
    return inv.model_copy(update={"windows": inv.windows.model_copy(update=windows)})


def test_finding_fields(engine: Engine, tmp_path: Path) -> None:
    load(engine, tmp_path, ("2026-Feb", "2026-Mar"))
    result = scan_inventory(engine, inventory(ubr=4773, kbs=["KB5075906"]))
    assert set(result.reports) == {"matcher", "host-updates", MSRC}
    assert len(result.reports[MSRC]) == len(result.findings) == 40
    smb = next(f for f in result.findings if f.vuln_id == "CVE-2026-24294")
    assert (smb.name, smb.ecosystem, smb.package, smb.fix.fixed_version, smb.fix.command) == (
        "Windows SMB Server Elevation of Privilege Vulnerability", WINDOWS,
        "Windows Server 2022", "KB5078766",
        "install KB5078766 (2026-03 cumulative update), restart required")
    assert (smb.cvss.vector, smb.cvss.score, smb.severity) == (  # type: ignore[union-attr]
        "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C", 7.8, "High")
    e = smb.evidence
    assert (e.installed_version, e.advisory_id, e.affected_range, e.feed, e.source,
            e.packages) == ("10.0.20348.4773", "KB5078766", "< 10.0.20348.4893", "msrc",
                            "msrc", ("Windows Server 2022",))
    assert e.detail == (
        "MSRC product 11923 (Windows Server 2022); fixed by KB5078766 (2026-Mar, Security "
        "Update, fixed build 10.0.20348.4893); KB chain KB5078766 (none installed); build "
        "10.0.20348.4773 is below the fixed build 10.0.20348.4893")
    assert [i.to_row() for i in smb.installations] == [
        [None, "10.0.20348.4773", "KB5078766",
         "install KB5078766 (2026-03 cumulative update), restart required"]]
    assert result.windows is not None and result.windows_warnings() == []


def test_exploited_and_end_of_life(engine: Engine, tmp_path: Path) -> None:
    load(engine, tmp_path, ("2026-Feb",))
    result = scan_inventory(engine, inventory())
    # February: CVE-2026-21519 "Exploited: Yes" (no KEV loaded here).
    exploited = next(f for f in result.findings if f.vuln_id == "CVE-2026-21519")
    assert (exploited.exploit.vendor_exploited, exploited.exploit.known_exploited,
            exploited.exploit.exploited, exploited.exploit.summary) == (
        True, False, True, "exploited (vendor)")
    seven = SHARED_DATA / "windows" / "systeminfo" / "7_sp1_x64_enterprise_en-us_A_systeminfo.txt"
    eol = scan_inventory(engine, inventory_of(read_windows_bytes(seven.read_bytes(),
                                                                 seven.name)))
    assert (eol.findings, eol.windows_warnings()) == ((), [
        "end of life: Windows 7: no loaded Microsoft security update document (2026-Feb "
        "to 2026-Feb) names it: end of life, Microsoft publishes no security updates for "
        "it"])


def _states(engine: Engine) -> dict[str, tuple[str, bool]]:
    with engine.connect() as conn:
        return {r.vuln_id: (r.state, r.known_exploited) for r in conn.execute(
            select(findings.c.vuln_id, findings.c.state, findings.c.known_exploited)
            .where(findings.c.producer == MSRC))}


def test_stored_host_closes_with_superseding_kb(engine: Engine, tmp_path: Path) -> None:
    load(engine, tmp_path, ("2026-Jan", "2026-Feb", "2026-Mar"))
    first = ingest_inventory(engine, inventory(kbs=["KB5073457"]))
    process_inventory(engine, first.inventory_id)
    states = _states(engine)
    # January's update installed: February's and March's CVEs are open, stored with
    # MSRC's exploited flag as known exploited (the priority reads that column).
    # 27 CVEs of KB5075906 (February) and 40 of KB5078766 (March) for product 11923.
    assert len(states) == 67 and states["CVE-2026-21519"] == ("open", True)
    # March's update (which supersedes February's) closes all of them.
    second = ingest_inventory(engine, inventory(kbs=["KB5073457", "KB5078766"]))
    process_inventory(engine, second.inventory_id)
    assert {state for state, _ in _states(engine).values()} == {"fixed"}


def test_feed_update_rematches_stored_windows_hosts(engine: Engine, tmp_path: Path) -> None:
    load(engine, tmp_path, ("2026-Jan",))
    stored = ingest_inventory(engine, inventory(kbs=["KB5073457"]))
    process_inventory(engine, stored.inventory_id)
    assert _states(engine) == {}  # January's update installed: nothing open in January
    # March arrives: the stored host is re-matched, its 40 March CVEs open.
    root = tmp_path / "more" / "msrc"
    root.mkdir(parents=True)
    (root / "cvrfDocument-2026-Mar.xml").symlink_to(
        SHARED_DATA / "msrc" / "cvrfDocument-2026-Mar.xml")
    results = update_from(engine, [root.parent])
    follow = after_feed_update(engine, results)
    assert follow.rematch is not None and follow.rematch.new == 40
    assert {state for state, _ in _states(engine).values()} == {"open"}
