"""Benchmark: matching one Windows host against the four real MSRC months.

The host is Windows Server 2022 at build 20348.4773 (February's update) with 200 KBs
(the real 2025-Dec to 2026-Mar KBs of its product first, then made-up older ones), 300
programs and SQL Server 2019 CU: the shape the issue's target names.

Target (issue 16): under 50 ms warm.  Prints the cold match (the cache filled) and the
median of warm matches and of full scans (findings built) on SQLite (and PostgreSQL with
--pg URL).

    python -m bench.bench_windows_match [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import statistics
import time

from bench.common import DATA, main_on_databases
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.findings.scan import scan_inventory
from patchpilot.findings.windows import windows_host
from patchpilot.inventory.model import (
    AssetIdentity,
    Collector,
    Inventory,
    WindowsInfo,
    WindowsProgram,
)
from patchpilot.knowledge.update import discover, load_source
from patchpilot.knowledge.windows import MsrcKnowledge, match_windows

MONTHS = ("2025-Dec", "2026-Jan", "2026-Feb", "2026-Mar")
TARGET_MS = 50.0
REAL_KBS = ["KB5066782", "KB5068787", "KB5071547", "KB5073457", "KB5075906"]


def host() -> Inventory:
    """The benchmark host (200 KBs, 300 programs, SQL Server)."""
    kbs = REAL_KBS + [f"KB50{n:05d}" for n in range(200 - len(REAL_KBS))]
    programs = [WindowsProgram(name=f"Program {n}", version=f"1.{n}.0", publisher="Vendor",
                               arch="x64") for n in range(300)]
    return Inventory(schema=2, asset=AssetIdentity(hostname="bench-win"),
                     collector=Collector(name="bench"),
                     windows=WindowsInfo(family="Windows Server 2022", release="21H2",
                                         edition="Standard", installation_type="Server",
                                         build=20348, ubr=4773, architecture="x64",
                                         kbs=kbs, programs=programs,
                                         components={"sql-server": "15.0.4415.2"}))


def run(url: str, label: str) -> None:
    """Load the months, then time cold and warm matches."""
    engine = make_engine(url)
    upgrade_schema(engine)
    for month in MONTHS:
        [source] = discover([DATA / "msrc" / f"cvrfDocument-{month}.xml"])
        load_source(engine, source)
    inventory = host()
    assert inventory.windows is not None
    target = windows_host(inventory.windows)
    print(f"\n== {label}: one Windows host, 200 KBs, 300 programs (target < {TARGET_MS:.0f} "
          "ms warm) ==")
    knowledge = MsrcKnowledge()
    with engine.connect() as conn:
        started = time.perf_counter()
        cold = match_windows(conn, target, knowledge)
        cold_ms = (time.perf_counter() - started) * 1000
        warm = []
        for _ in range(20):
            started = time.perf_counter()
            match_windows(conn, target, knowledge)
            warm.append((time.perf_counter() - started) * 1000)
    scans = []
    for _ in range(10):
        started = time.perf_counter()
        result = scan_inventory(engine, inventory)
        scans.append((time.perf_counter() - started) * 1000)
    warm_ms, scan_ms = statistics.median(warm), statistics.median(scans)
    print(f"  {len(cold.matches)} CVEs open ({len(result.findings)} findings)  "
          f"match cold {cold_ms:.1f} ms  warm {warm_ms:.1f} ms  "
          f"scan with findings {scan_ms:.1f} ms -> "
          f"{'OK' if warm_ms < TARGET_MS else 'SLOW'}")
    engine.dispose()


def main() -> None:
    """``--pg URL`` to run on PostgreSQL too."""
    main_on_databases("windows_match", __doc__, run)


if __name__ == "__main__":
    main()
