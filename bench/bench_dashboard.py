"""Benchmark: the dashboard's server time with 10,000 assets and 1,000,000 findings.

Target (issue 6): overview and findings list p95 under 300 ms server time, on SQLite and
PostgreSQL.  Measures the data functions the pages call (findings.overview.overview and
findings.search.search_findings), warm, 20 calls each: the HTML rendering around them is
a few milliseconds.

    python -m bench.bench_dashboard [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.bench_priority import ASSETS, PER_ASSET, populate
from bench.common import main_on_databases
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.findings.overview import overview
from patchpilot.findings.search import FindingFilter, search_findings
from patchpilot.scoring.apply import reprioritise

RUNS = 20


def _p95(fn: Callable[[], Any]) -> tuple[float, float]:
    fn()  # warm the caches
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, statistics.quantiles(times, n=20)[-1] * 1000


def run(url: str, label: str) -> None:
    """Populate, prioritise, then time each page's queries."""
    engine = make_engine(url)
    upgrade_schema(engine)
    started = time.perf_counter()
    populate(engine)
    with engine.begin() as conn:
        reprioritise(conn)
    print(f"{label}: {ASSETS * PER_ASSET:,} findings on {ASSETS:,} assets, prioritised, in "
          f"{time.perf_counter() - started:.0f} s")
    cases: dict[str, Callable[[Any], Any]] = {
        "overview": lambda c: overview(c),
        "findings list, first page": lambda c: search_findings(c, FindingFilter()),
        "findings list, severity Critical, page 10": lambda c: search_findings(
            c, FindingFilter(severity="Critical"), offset=450),
        "findings list, P1 and KEV": lambda c: search_findings(
            c, FindingFilter(priority=1, known_exploited=True)),
        "findings list, one CVE": lambda c: search_findings(
            c, FindingFilter(text="CVE-2024-42")),
    }
    with engine.connect() as conn:
        for name, fn in cases.items():
            median, p95 = _p95(lambda fn=fn: fn(conn))
            print(f"  {name:<44} median {median:7.1f} ms   p95 {p95:7.1f} ms"
                  f"   (target p95 < 300 ms)")
    engine.dispose()


def main() -> None:
    """Entry point."""
    main_on_databases("dashboard", __doc__, run)


if __name__ == "__main__":
    main()
