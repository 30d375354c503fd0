"""Benchmark: loading every advisory of ../shared/data into an empty knowledge base.

Target (issue 2): at least 20,000 advisories per second on SQLite.  Prints the figures per
source and in total, for SQLite (and PostgreSQL with --pg URL).

    python -m bench.bench_load [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.common import ADVISORY_ROOTS, ENRICHMENT_ROOTS, cleanup, fresh_sqlite, pg_schema
from bench.osv_zip import build as build_zips
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.knowledge.update import discover, load_sources


def run(url: str, label: str, folder: Path) -> None:
    """Load advisories, then CVE records/KEV/EPSS, printing rates."""
    engine = make_engine(url)
    upgrade_schema(engine)
    started = time.perf_counter()
    sources = discover(ADVISORY_ROOTS)
    found = time.perf_counter() - started
    results = load_sources(engine, sources)
    elapsed = time.perf_counter() - started
    failed = [r for r in results if r.status != "loaded"]
    total = sum(r.records for r in results)
    print(f"\n== {label}: advisories ==")
    by_feed: dict[str, int] = {}
    for r in results:
        by_feed[r.source.split("/")[0]] = by_feed.get(r.source.split("/")[0], 0) + r.records
    for name, n in sorted(by_feed.items()):
        print(f"  {name:<40} {n:>7,}")
    print(f"  {len(sources)} sources, {sum(len(s.files) for s in sources):,} files "
          f"(discovered in {found:.2f} s), {len(failed)} failed")
    print(f"  {total:,} advisories in {elapsed:.2f} s = {total / elapsed:,.0f} advisories/s "
          f"(target >= 20,000/s)")
    again = time.perf_counter()
    unchanged = load_sources(engine, discover(ADVISORY_ROOTS))
    print(f"  second update (nothing changed): {time.perf_counter() - again:.2f} s, "
          f"{sum(r.status == 'unchanged' for r in unchanged)} sources unchanged")
    zips = build_zips(folder / "zips")
    zip_engine = make_engine(url.replace("patchpilot.db", "zips.db")) if url.startswith(
        "sqlite") else None
    if zip_engine is not None:
        upgrade_schema(zip_engine)
        started = time.perf_counter()
        zipped = load_sources(zip_engine, discover(zips))
        elapsed = time.perf_counter() - started
        n = sum(r.records for r in zipped)
        print(f"  the OSV part as official all.zip (JSON) files: {n:,} advisories in "
              f"{elapsed:.2f} s = {n / elapsed:,.0f} advisories/s")
        zip_engine.dispose()
    started = time.perf_counter()
    enrich = load_sources(engine, discover(ENRICHMENT_ROOTS))
    elapsed = time.perf_counter() - started
    ok = [r for r in enrich if r.status == "loaded"]
    print(f"== {label}: CVE records, KEV, EPSS ==")
    print(f"  {sum(r.records for r in ok):,} records from {len(ok)} sources in {elapsed:.2f} s "
          f"({len(enrich) - len(ok)} sources failed: fixtures that are not feed records)")
    engine.dispose()


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", help="also run against this PostgreSQL URL (a fresh schema)")
    args = parser.parse_args()
    url, folder = fresh_sqlite("load")
    try:
        run(url, "SQLite", folder)
        if args.pg:
            run_pg(args.pg, folder)
    finally:
        cleanup(folder)


def run_pg(pg: str, folder: Path) -> None:
    """The same on a fresh schema of a PostgreSQL server."""
    with pg_schema(pg) as pg_url:
        run(pg_url, "PostgreSQL", folder)


if __name__ == "__main__":
    main()
