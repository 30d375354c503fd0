"""Benchmark: loading every advisory of ../shared/data into an empty knowledge base.

Target (issue 19): at least 20,000 advisories per second, discovery included.  Prints the
figures per source and in total, for SQLite (and PostgreSQL with --pg URL).

The machine may be shared: with ``--repeat N`` the advisory load runs N times, each into
a fresh database, and the best and the median are printed, with the CPU seconds of this
process and of its reading workers (a PostgreSQL server's own are not counted) per
advisory, and the load average: on a busy machine the CPU figure moves less than the
rate (2 cores at 20,000 advisories/s leave at most 100 µs of CPU per advisory).

    python -m bench.bench_load [--pg postgresql://postgres@127.0.0.1:5432/test] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from bench.common import ADVISORY_ROOTS, ENRICHMENT_ROOTS, cleanup, fresh_sqlite, pg_schema
from bench.osv_zip import build as build_zips
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.knowledge import update
from patchpilot.knowledge.update import SourceResult, discover, load_sources


def _cpu() -> tuple[float, float]:
    """CPU seconds (user + system) of this process, and of its finished child processes."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def load_advisories(url: str) -> tuple[list[SourceResult], float, float, float, float, int]:
    """One load of every advisory into the empty database at ``url``: (results, discovery
    seconds, total seconds, CPU seconds of this process, of the workers, files)."""
    engine = make_engine(url)
    upgrade_schema(engine)
    cpu_main, cpu_workers = _cpu()
    started = time.perf_counter()
    sources = discover(ADVISORY_ROOTS)
    found = time.perf_counter() - started
    results = load_sources(engine, sources)
    elapsed = time.perf_counter() - started
    after_main, after_workers = _cpu()
    engine.dispose()
    return (results, found, elapsed, after_main - cpu_main, after_workers - cpu_workers,
            sum(len(s.files) for s in sources))


def read_alone() -> tuple[float, float]:
    """Discovery and reading of every advisory by the load's own worker processes, with
    nothing written: (seconds, CPU seconds of the workers).  What a load cannot go below
    on this machine however fast its writes."""
    cpu_before = _cpu()[1]
    started = time.perf_counter()
    sources = discover(ADVISORY_ROOTS)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1,
                             mp_context=update._fork_context()) as pool:
        jobs = [pool.submit(update._read_batch, s.feed.name, s.key, unit)
                for s in sources for unit in update._units(s)]
        for job in jobs:
            job.result()
    return time.perf_counter() - started, _cpu()[1] - cpu_before


def run(label: str, fresh: Callable[[], AbstractContextManager[str]], folder: Path,
        repeat: int) -> None:
    """Load the advisories ``repeat`` times (each into a fresh database from ``fresh``),
    then update again, then the zips (SQLite) and the CVE records, KEV and EPSS."""
    print(f"\n== {label}: advisories ==")
    rates: list[float] = []
    cpu_rates: list[float] = []  # advisories per CPU second: what a busy machine hides less
    for n in range(1, repeat + 1):
        with fresh() as url:
            results, found, elapsed, cpu_main, cpu_workers, files = load_advisories(url)
            total = sum(r.records for r in results)
            if n == 1:
                by_feed: dict[str, int] = {}
                for r in results:
                    feed = r.source.split("/")[0]
                    by_feed[feed] = by_feed.get(feed, 0) + r.records
                for name, count in sorted(by_feed.items()):
                    print(f"  {name:<40} {count:>7,}")
                failed = [r for r in results if r.status != "loaded"]
                print(f"  {len(results)} sources, {files:,} files, {len(failed)} failed")
            rates.append(total / elapsed)
            cpu_rates.append(total / (cpu_main + cpu_workers))
            print(f"  run {n}: {total:,} advisories in {elapsed:.2f} s = "
                  f"{total / elapsed:,.0f} advisories/s (discovery {found:.2f} s; CPU "
                  f"{cpu_main:.2f} s here + {cpu_workers:.2f} s in workers = "
                  f"{(cpu_main + cpu_workers) * 1e6 / total:.0f} µs per advisory; "
                  f"load average {os.getloadavg()[0]:.1f})")
            if n == repeat:
                again = time.perf_counter()
                engine = make_engine(url)
                unchanged = load_sources(engine, discover(ADVISORY_ROOTS))
                print(f"  second update (nothing changed): "
                      f"{time.perf_counter() - again:.2f} s, "
                      f"{sum(r.status == 'unchanged' for r in unchanged)} sources unchanged")
                enrich_started = time.perf_counter()
                enrich = load_sources(engine, discover(ENRICHMENT_ROOTS))
                enrich_elapsed = time.perf_counter() - enrich_started
                engine.dispose()
    print(f"  best {max(rates):,.0f} advisories/s, median {statistics.median(rates):,.0f} "
          f"over {repeat} run(s) (target >= 20,000/s); "
          f"{max(cpu_rates):,.0f} advisories per CPU second at best")
    if label == "SQLite":
        alone = [read_alone() for _ in range(repeat)]
        seconds, cpu = min(alone)
        print(f"  discovery and reading alone, nothing written (best of {repeat}): "
              f"{seconds:.2f} s = {total / seconds:,.0f} advisories/s, "
              f"{cpu:.2f} CPU s in workers")
    if label == "SQLite":
        zips = build_zips(folder / "zips")
        zip_url = f"sqlite:///{folder / 'zips.db'}"
        zip_engine = make_engine(zip_url)
        upgrade_schema(zip_engine)
        started = time.perf_counter()
        zipped = load_sources(zip_engine, discover(zips))
        elapsed = time.perf_counter() - started
        n_zipped = sum(r.records for r in zipped)
        print(f"  the OSV part as official all.zip (JSON) files: {n_zipped:,} advisories in "
              f"{elapsed:.2f} s = {n_zipped / elapsed:,.0f} advisories/s")
        zip_engine.dispose()
    ok = [r for r in enrich if r.status == "loaded"]
    print(f"== {label}: CVE records, KEV, EPSS ==")
    print(f"  {sum(r.records for r in ok):,} records from {len(ok)} sources in "
          f"{enrich_elapsed:.2f} s ({len(enrich) - len(ok)} sources failed: fixtures that "
          "are not feed records)")


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--pg", help="also run against this PostgreSQL URL (a fresh schema)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="load the advisories this many times (best and median)")
    args = parser.parse_args()
    _, folder = fresh_sqlite("load")

    @contextmanager
    def fresh_file() -> Iterator[str]:
        """A new SQLite database in the benchmark's folder, removed after the load."""
        db = folder / "load.db"
        yield f"sqlite:///{db}"
        for path in folder.glob("load.db*"):
            path.unlink()

    try:
        run("SQLite", fresh_file, folder, args.repeat)
        if args.pg:
            run("PostgreSQL", lambda: pg_schema(args.pg), folder, args.repeat)
    finally:
        cleanup(folder)


if __name__ == "__main__":
    main()
