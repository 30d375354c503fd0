"""Benchmark: matching a 2,000-package Debian host against the whole knowledge base.

Target (issue 2): under 50 ms warm; the matcher must not load every advisory into memory.
The host is the real Debian 12 inventory of ../shared/data (710 dpkg packages, matched by
source package), the other real dpkg status files there, and real PyPI packages at
versions named by real advisories (a Debian server running Python services), 2,000 in all.

    python -m bench.bench_match [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import gc
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

import orjson
from sqlalchemy import func, select

from bench.common import (
    ADVISORY_ROOTS,
    DATA,
    ENRICHMENT_ROOTS,
    main_on_databases,
)
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import affected
from patchpilot.findings.build import build_findings
from patchpilot.inventory.sources.dpkg import parse_dpkg_status
from patchpilot.knowledge.matcher import match_packages
from patchpilot.models import Ecosystem, Package

HOST_SIZE = 2000
WARM_RUNS = 30


def host_packages() -> list[Package]:
    """2,000 real packages: Debian 12 dpkg, then other dpkg files, then PyPI."""
    eco = Ecosystem("Debian:12")
    packages = parse_dpkg_status((DATA / "inventories/debian12-dpkg-status").read_text(), eco)
    seen = {p.name for p in packages}
    for path in sorted((DATA / "inventories/dpkg-status").iterdir()):
        try:
            extra = parse_dpkg_status(path.read_text(), eco, assume_installed=True)
        except Exception:  # noqa: BLE001, S112 - a fixture that is not a status file
            continue
        for p in extra:
            if p.name not in seen:
                seen.add(p.name)
                packages.append(p)
    debian = len(packages)
    import yaml

    for folder in sorted((DATA / "osv/pypi").iterdir()):
        if len(packages) >= HOST_SIZE:
            break
        first = sorted(folder.glob("*.yaml"))[0]
        record = yaml.load(first.read_bytes(), Loader=yaml.CBaseLoader)
        versions = record["affected"][0].get("versions") or ["0.1"]
        packages.append(Package(Ecosystem("PyPI"), record["affected"][0]["package"]["name"],
                                versions[len(versions) // 2]))
    pypi = len(packages) - debian
    # Go modules built into the host's services fill the rest.
    for path in sorted((DATA / "osv/go").glob("GO-*.json")):
        if len(packages) >= HOST_SIZE:
            break
        record = orjson.loads(path.read_bytes())
        for entry in record.get("affected", ()):
            events = [e for r in entry.get("ranges", ()) for e in r.get("events", ())]
            fixed = next((e["fixed"] for e in events if "fixed" in e), None)
            name = entry["package"]["name"]
            if fixed and name not in seen:
                seen.add(name)
                # The patch release just before the fix: inside the affected range.
                major, minor, patch = (fixed.split(".") + ["0", "0"])[:3]
                digits = re.match(r"\d*", patch).group(0)  # type: ignore[union-attr]
                version = f"{major}.{minor}.{max(int(digits or 0) - 1, 0)}"
                packages.append(Package(Ecosystem("Go"), name, version))
                break
    print(f"host: {len(packages):,} packages ({debian} dpkg from Debian 12 and other real "
          f"status files, {pypi} PyPI, {len(packages) - debian - pypi} Go)")
    return packages


def run(url: str, label: str) -> None:
    """Load the knowledge base, then time the match."""
    # The knowledge base is loaded by the real command in its own process, as in use: a
    # scan (CLI or worker) never runs in the process that just parsed 360,000 records.
    subprocess.run([sys.executable, "-m", "patchpilot.cli", "db", "update",
                    *[f"--from={root}" for root in ADVISORY_ROOTS + ENRICHMENT_ROOTS]],
                   env={**os.environ, "PATCHPILOT_DATABASE_URL": url}, check=False,
                   capture_output=True)
    engine = make_engine(url)
    upgrade_schema(engine)
    with engine.connect() as conn:
        total_rows = conn.execute(select(func.count()).select_from(affected)).scalar_one()
    packages = host_packages()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with engine.connect() as conn:
        started = time.perf_counter()
        result = match_packages(conn, packages)
        cold = time.perf_counter() - started
        findings = build_findings(conn, result.matches)
        match_times, scan_times = [], []
        for _ in range(WARM_RUNS):
            gc.collect()
            started = time.perf_counter()
            result = match_packages(conn, packages)
            match_times.append(time.perf_counter() - started)
        for _ in range(WARM_RUNS // 3):
            gc.collect()
            started = time.perf_counter()
            findings = build_findings(conn, match_packages(conn, packages).matches)
            scan_times.append(time.perf_counter() - started)
        tracemalloc.start()
        match_packages(conn, packages)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def ms(values: list[float], q: float) -> str:
        return f"{statistics.quantiles(values, n=100)[int(q) - 1] * 1000:.1f} ms"

    print(f"\n== {label} ==")
    print(f"  knowledge base: {total_rows:,} affected-package rows")
    print(f"  {result.packages:,} packages, {result.distinct:,} distinct triples, "
          f"{len(result.matches):,} matches, {len(findings):,} findings, "
          f"{len(result.undetermined)} undetermined")
    print(f"  match, cold (first call, version caches empty): {cold * 1000:.1f} ms")
    print(f"  match, warm: median {statistics.median(match_times) * 1000:.1f} ms, "
          f"p95 {ms(match_times, 95)}   (target < 50 ms)")
    print(f"  match + build findings (every report field), warm: median "
          f"{statistics.median(scan_times) * 1000:.1f} ms, p95 {ms(scan_times, 95)}")
    print(f"  memory: peak Python allocations during one match {peak / 2**20:.1f} MiB; "
          f"process max RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB")
    engine.dispose()


def main() -> None:
    """Entry point."""
    main_on_databases("match", __doc__, run)


if __name__ == "__main__":
    main()
