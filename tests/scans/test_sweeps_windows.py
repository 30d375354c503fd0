"""Emergency sweeps over Windows hosts (real MSRC months, real systeminfo files), on SQLite
and PostgreSQL: the first answer comes from the matcher's stored ``msrc`` findings, a host
on a product Microsoft's documents no longer name is unknown (never "not affected"), and a
CVE only MSRC names can be swept at all.

CVE-2026-24294 is in cvrfDocument-2026-Mar.xml for Windows Server 2022 (product 11923),
fixed by KB5078766 (10.0.20348.4893)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from patchpilot.db.tables import asset_packages, assets
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.findings.model import WINDOWS
from patchpilot.inventory.windows import inventory_of, read_windows_bytes
from patchpilot.pipeline import process_inventory
from patchpilot.scans.sweeps import SweepQuery, start_sweep
from tests.conftest import SHARED_DATA
from tests.knowledge.test_windows_match import load

SYSTEMINFO = SHARED_DATA / "windows" / "systeminfo"
CVE = "CVE-2026-24294"


def _store(engine: Engine, name: str, hostname: str, **windows: object) -> int:
    inv = inventory_of(read_windows_bytes((SYSTEMINFO / name).read_bytes(), name))
    assert inv.windows is not None
    inv = inv.model_copy(update={
        "windows": inv.windows.model_copy(update=windows),
        "asset": inv.asset.model_copy(update={"hostname": hostname})})
    stored = ingest_inventory(engine, inv)
    process_inventory(engine, stored.inventory_id)
    return stored.asset_id


def test_sweep_answers_for_windows_hosts(engine: Engine, tmp_path: Path) -> None:
    load(engine, tmp_path, ("2026-Feb", "2026-Mar"))
    feb = _store(engine, "srv_2022_systeminfo.txt", "srv-feb", ubr=4773, kbs=["KB5075906"])
    mar = _store(engine, "srv_2022_systeminfo.txt", "srv-mar", ubr=4893,
                 kbs=["KB5075906", "KB5078766"])
    win7 = _store(engine, "7_sp1_x64_enterprise_en-us_A_systeminfo.txt", "old-pc")
    with engine.connect() as conn:
        # Each Windows host has one OS row and the asset's ecosystem says Windows.
        rows = conn.execute(select(asset_packages.c.asset_id, asset_packages.c.name)
                            .where(asset_packages.c.ecosystem == WINDOWS)).all()
        assert {r.asset_id: r.name for r in rows} == {
            feb: "Windows Server 2022|21H2||x64|0", mar: "Windows Server 2022|21H2||x64|0",
            win7: "Windows 7|||x64|1"}
        assert set(conn.execute(select(assets.c.ecosystem)).scalars()) == {WINDOWS}
    sweep = start_sweep(engine, SweepQuery(vuln=CVE), created_by="test")
    assert sweep.vulns == (CVE,)
    by_asset = {r.asset_id: r for r in sweep.results}
    assert by_asset[feb].initial == "affected"
    assert by_asset[feb].packages == [{
        "ecosystem": "Windows", "package": "Windows Server 2022",
        "version": "10.0.20348.4773", "fixed": "KB5078766", "vulns": [CVE],
        "installed": []}]
    assert by_asset[mar].initial == "not_affected" and by_asset[mar].reason is None
    assert by_asset[win7].initial == "unknown"
    assert by_asset[win7].reason is not None and "end of life" in by_asset[win7].reason
    assert by_asset[win7].reason.startswith("Windows 7: no loaded Microsoft security update")
    assert sweep.initial == {"affected": 1, "not_affected": 1, "unknown": 1}
