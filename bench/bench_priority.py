"""Re-prioritising 1,000,000 open findings after a matrix change (target: under 30 s).

10,000 synthetic assets with CMDB context (tiers, exposure, environment, controls) and
100 open findings each, inserted set-based (INSERT … SELECT over a generated series); then
the first prioritisation, and the figure that matters: re-prioritisation after a matrix
change, one statement.  Run::

    python -m bench.bench_priority [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import func, select, text

from bench.common import insert_context, main_on_databases, series, sql_now
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import finding_priority
from patchpilot.scoring.apply import reprioritise, save_config
from patchpilot.scoring.priority import parse_config

ASSETS = 10_000
PER_ASSET = 100
CHANGED = """
matrix:
  Critical: [1, 1, 1, 2]
  High:     [1, 1, 2, 3]
  Medium:   [2, 2, 3, 4]
sla_days: {1: 3, 2: 14}
"""




def populate(engine) -> None:  # type: ignore[no-untyped-def]
    """The synthetic estate, set-based."""
    dialect = engine.dialect.name
    now = datetime(2026, 1, 5, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(sql_now(f"""
            INSERT INTO assets (id, name, first_seen, last_seen)
            SELECT n, 'host-' || CAST(n AS VARCHAR), :now, :now FROM ({series(dialect, ASSETS)}) s
            """), {"now": now})
        insert_context(conn, ASSETS, now)
        conn.execute(sql_now(f"""
            INSERT INTO findings (asset_id, vuln_id, ecosystem, package, state, severity,
                                  known_exploited, epss_score, first_seen, last_seen,
                                  times_reopened, new_from_feed, data, fixed_version)
            SELECT 1 + (n - 1) / {PER_ASSET}, 'CVE-2024-' || CAST(n % 5000 AS VARCHAR),
                   'Debian:12', 'pkg-' || CAST(n % 300 AS VARCHAR), 'open',
                   CASE n % 5 WHEN 0 THEN 'Critical' WHEN 1 THEN 'High' WHEN 2 THEN 'Medium'
                        WHEN 3 THEN 'Low' ELSE 'Unknown' END,
                   n % 50 = 0, (n % 100) / 100.0, :now, :now, 0, false, '{{}}', '1.0'
            FROM ({series(dialect, ASSETS * PER_ASSET)}) s
            """), {"now": now})
        if dialect == "postgresql":
            conn.execute(text("SELECT setval('assets_id_seq', :n)"), {"n": ASSETS})
    if dialect == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("ANALYZE findings; ANALYZE asset_context"))


def run(url: str, label: str) -> None:
    """Populate, prioritise, change the matrix, re-prioritise; print the figures."""
    engine = make_engine(url)
    upgrade_schema(engine)
    started = time.perf_counter()
    populate(engine)
    print(f"{label}: inserted {ASSETS * PER_ASSET:,} open findings on {ASSETS:,} assets "
          f"in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    with engine.begin() as conn:
        first = reprioritise(conn)
    print(f"{label}: first prioritisation, {first:,} rows written in "
          f"{time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    with engine.begin() as conn:
        changed = save_config(conn, parse_config(CHANGED, "bench"), "bench")
    elapsed = time.perf_counter() - started
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(finding_priority)).scalar()
    print(f"{label}: re-prioritised {total:,} open findings after a matrix change "
          f"({changed:,} changed) in {elapsed:.1f} s (target < 30 s)")
    engine.dispose()


def main() -> None:
    """Entry point."""
    main_on_databases("priority", __doc__, run)


if __name__ == "__main__":
    main()
