"""Benchmark: loading each real MSRC CVRF month (December 2025 to March 2026) into an empty
knowledge base, then reloading it (the month replaced in one transaction).

Target (issue 16): one CVRF month in under 2 s.  Prints parse and load time per month on
SQLite (and PostgreSQL with --pg URL).

    python -m bench.bench_msrc [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import time

from bench.common import DATA, main_on_databases
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.knowledge.feeds._cvrf import parse_cvrf
from patchpilot.knowledge.update import discover, load_source

MONTHS = ("2025-Dec", "2026-Jan", "2026-Feb", "2026-Mar")
TARGET_SECONDS = 2.0


def run(url: str, label: str) -> None:
    """Parse, load and reload each month, printing the times."""
    engine = make_engine(url)
    upgrade_schema(engine)
    print(f"\n== {label}: MSRC CVRF months (target < {TARGET_SECONDS:.0f} s each) ==")
    worst = 0.0
    for month in MONTHS:
        path = DATA / "msrc" / f"cvrfDocument-{month}.xml"
        started = time.perf_counter()
        doc = parse_cvrf(path)
        parsed = time.perf_counter() - started
        [source] = discover([path])
        first = load_source(engine, source)
        again = load_source(engine, source, force=True)
        if first.status != "loaded" or again.status != "loaded":
            raise SystemExit(f"{month}: {first.error or again.error}")
        worst = max(worst, first.seconds, again.seconds)
        print(f"  {month}  {path.stat().st_size / 1e6:4.1f} MB  {len(doc.products):>4} products"
              f"  {len(doc.vulnerabilities):>4} CVEs  parse {parsed:.2f} s  "
              f"load {first.seconds:.2f} s  reload {again.seconds:.2f} s")
    print(f"  slowest month: {worst:.2f} s -> {'OK' if worst < TARGET_SECONDS else 'SLOW'}")
    engine.dispose()


def main() -> None:
    """``--pg URL`` to run on PostgreSQL too."""
    main_on_databases("msrc", __doc__, run)


if __name__ == "__main__":
    main()
