"""Building the patch plan for 10,000 assets (target: under 5 s).

10,000 synthetic Debian 12 hosts in three plants (asset groups with weekly maintenance
windows), 20 open findings each over 300 source packages with their installed binaries,
all prioritised; then ``build_plan`` over the whole estate, and its CSV and Ansible
exports.  Run::

    python -m bench.bench_plan [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from bench.common import main_on_databases, series, sql_now
from patchpilot.assets.groups import create_group
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.reports.ansible import export
from patchpilot.scans.groups import add_window
from patchpilot.scans.plan import build_plan, plan_csv
from patchpilot.scoring.apply import reprioritise

ASSETS = 10_000
PER_ASSET = 20


def populate(engine) -> None:  # type: ignore[no-untyped-def]
    """The synthetic estate, set-based."""
    dialect = engine.dialect.name
    now = datetime(2026, 1, 5, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(sql_now(f"""
            INSERT INTO assets (id, name, first_seen, last_seen)
            SELECT n, 'host-' || CAST(n AS VARCHAR), :now, :now FROM ({series(dialect, ASSETS)}) s
            """), {"now": now})
        if dialect == "postgresql":
            conn.execute(text("SELECT setval('assets_id_seq', :n)"), {"n": ASSETS})
        conn.execute(sql_now(f"""
            INSERT INTO asset_context (asset_id, criticality, environment, exposure,
                                       source, updated_at)
            SELECT n, 1 + n % 4, CASE WHEN n % 3 = 0 THEN 'development' ELSE 'production' END,
                   CASE WHEN n % 5 = 0 THEN 'internet-facing' ELSE 'internal' END, 'bench', :now
            FROM ({series(dialect, ASSETS)}) s
            """), {"now": now})
        conn.execute(sql_now(f"""
            INSERT INTO findings (asset_id, vuln_id, ecosystem, package, state, severity,
                                  known_exploited, epss_score, first_seen, last_seen,
                                  times_reopened, new_from_feed, data, installed_version,
                                  fixed_version)
            SELECT 1 + (n - 1) / {PER_ASSET},
                   'CVE-2024-' || CAST((n * 7) % 3000 AS VARCHAR), 'Debian:12',
                   CASE WHEN n % 97 = 0 THEN 'linux' ELSE 'pkg-' || CAST(n % 300 AS VARCHAR) END,
                   'open',
                   CASE n % 4 WHEN 0 THEN 'Critical' WHEN 1 THEN 'High' WHEN 2 THEN 'Medium'
                        ELSE 'Low' END,
                   n % 40 = 0, (n % 10) / 10.0, :now, :now, 0, false,
                   '{{"workaround": "restrict access"}}', '1.0-1',
                   CASE WHEN n % 50 = 0 THEN NULL ELSE '1.0-2+deb12u1' END
            FROM ({series(dialect, ASSETS * PER_ASSET)}) s
            """), {"now": now})
        conn.execute(text("""
            INSERT INTO asset_packages (asset_id, ecosystem, name, version, installed)
            SELECT DISTINCT asset_id, ecosystem, package, '1.0-1',
                   '[["' || package || '", "1.0-1", "amd64"], ["lib' || package
                   || '3", "1.0-1", "amd64"]]'
            FROM findings
            """))
        for plant in (1, 2, 3):
            group_id = create_group(conn, "bench", f"plant{plant}")
            conn.execute(text("""
                INSERT INTO asset_group_members (group_id, asset_id)
                SELECT :g, id FROM assets WHERE id % 3 = :m
                """), {"g": group_id, "m": plant - 1})
            add_window(conn, "bench", group_id, rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=1",
                       duration=timedelta(hours=4), timezone="Asia/Tokyo")
        reprioritise(conn)
    if dialect == "postgresql":
        # What autovacuum does after a bulk load: without statistics the planner guesses.
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(
                "ANALYZE findings; ANALYZE asset_packages; ANALYZE finding_priority; "
                "ANALYZE assets"))


def run(url: str, label: str) -> None:
    """Populate, then time the plan and its exports; print the figures."""
    engine = make_engine(url)
    upgrade_schema(engine)
    populate(engine)
    started = time.perf_counter()
    with engine.connect() as conn:
        plan = build_plan(conn)
    elapsed = time.perf_counter() - started
    hosts = sum(len(i.hosts) for i in plan.items)
    print(f"{label}: plan for {ASSETS:,} assets ({ASSETS * PER_ASSET:,} open findings): "
          f"{len(plan.items)} items, {hosts:,} host upgrades, {len(plan.unfixed)} unfixed, "
          f"in {elapsed:.2f} s (target < 5 s)")
    print(f"{label}: top item: {plan.items[0].summary}")
    started = time.perf_counter()
    csv_text = plan_csv(plan)
    files = export(plan)
    print(f"{label}: CSV ({len(csv_text) // 1024} KiB) and Ansible "
          f"({len(files['playbook.yml']) // 1024} KiB playbook) in "
          f"{time.perf_counter() - started:.2f} s")
    engine.dispose()


def main() -> None:
    """Entry point."""
    main_on_databases("plan", __doc__, run)


if __name__ == "__main__":
    main()
