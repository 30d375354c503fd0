"""A synthetic estate the size the dashboard's targets name: 10,000 assets, 1,000,000 findings.

Set-based (INSERT … SELECT over a generated series), with the variety a year of scans
leaves behind: findings first seen over 365 days, 15 % fixed (fixed 0-44 days after
detection), 3 % triaged, 2 % known exploited, a quarter without a fix; 20 site groups;
three operating systems; CMDB context (tiers, exposure, services) on 90 % of the assets;
assets last seen 0-13 days ago, so some are late for their weekly scan.  Prioritised with
the shipped configuration at the end, as the worker would have.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench.common import insert_context, series, sql_now
from patchpilot.clock import now_utc
from patchpilot.db.engine import optimize
from patchpilot.findings.summary import refresh as refresh_summary
from patchpilot.scoring.apply import reprioritise

ASSETS = 10_000
PER_ASSET = 100
GROUPS = 20




def _days_before(dialect: str, days: str) -> str:
    """``:now`` minus ``days`` (an SQL integer expression), in the column's own format."""
    if dialect == "postgresql":
        return f"(:now - ({days}) * INTERVAL '1 day')"
    return f"(datetime(:now, '-' || ({days}) || ' days') || '.000000')"


def _days_after(dialect: str, column: str, days: str) -> str:
    if dialect == "postgresql":
        return f"({column} + ({days}) * INTERVAL '1 day')"
    return f"(datetime({column}, '+' || ({days}) || ' days') || '.000000')"


def populate(engine: Engine, now: datetime | None = None, *, assets: int = ASSETS,
             per_asset: int = PER_ASSET, windows_share: float = 0.0,
             producer: str = "matcher") -> datetime:
    """Fill an empty database (``assets`` × ``per_asset`` findings: the page tests' large
    estate is a smaller one); the ``now`` the data is relative to.

    ``windows_share`` (0.3: three assets in ten) makes that share of the assets Windows
    Server 2022 hosts, whose findings are the MSRC matcher's (ecosystem Windows, the KB
    as the fixed version).  ``producer``: who reports the findings (``importer:nessus``
    for an estate whose stored inventories a re-match must not close them by)."""
    d = engine.dialect.name
    tenths = round(windows_share * 10)
    windows_asset = f"n % 10 < {tenths}"
    windows_finding = f"(1 + (n - 1) / {per_asset}) % 10 < {tenths}"
    now = (now or now_utc()).replace(microsecond=0)
    with engine.begin() as conn:
        conn.execute(sql_now(f"""
            INSERT INTO asset_groups (id, name, max_concurrent_scans, created_at)
            SELECT n, 'site-' || CAST(n AS VARCHAR), 5, :now FROM ({series(d, GROUPS)}) s
            """), {"now": now})
        conn.execute(sql_now(f"""
            INSERT INTO assets (id, name, os, tags, first_seen, last_seen)
            SELECT n, 'host-' || CAST(n AS VARCHAR),
                   CASE WHEN {windows_asset} THEN 'Microsoft Windows Server 2022 Standard'
                        WHEN n % 3 = 0 THEN 'Debian GNU/Linux 12'
                        WHEN n % 3 = 1 THEN 'AlmaLinux 9.4' ELSE 'Ubuntu 22.04.4 LTS' END,
                   CASE WHEN n % 4 = 0 THEN '["pci"]' ELSE '[]' END,
                   {_days_before(d, "365")}, {_days_before(d, "n % 14")}
            FROM ({series(d, assets)}) s
            """), {"now": now})
        conn.execute(text(f"""
            INSERT INTO asset_group_members (group_id, asset_id)
            SELECT 1 + n % {GROUPS}, n FROM ({series(d, assets)}) s
            """))
        insert_context(conn, assets, now)
        # Coverage (findings/coverage.py): each asset's OS packages, Python packages on half
        # of them, an npm project on a tenth; advisories loaded for two of the releases and
        # PyPI (Ubuntu's and npm's feeds not loaded: not covered).
        conn.execute(text(f"""
            INSERT INTO asset_ecosystems (asset_id, ecosystem, packages)
            SELECT n, CASE WHEN {windows_asset} THEN 'Windows'
                           WHEN n % 3 = 0 THEN 'Debian:12' WHEN n % 3 = 1 THEN 'AlmaLinux:9'
                           ELSE 'Ubuntu:22.04' END, 600 + n % 300
            FROM ({series(d, assets)}) s
            UNION ALL SELECT n, 'PyPI', 20 + n % 80 FROM ({series(d, assets)}) s
            WHERE n % 2 = 0
            UNION ALL SELECT n, 'npm', 900 + n % 200 FROM ({series(d, assets)}) s
            WHERE n % 10 = 0
            """))
        conn.execute(text("INSERT INTO knowledge_coverage (ecosystem, advisories, affected) "
                          "VALUES ('Debian:12', 31000, 86000), ('AlmaLinux:9', 4100, 61000), "
                          "('PyPI', 14000, 16500)"))
        first_seen = _days_before(d, "((n % 365) * 7919) % 365")
        conn.execute(sql_now(f"""
            INSERT INTO findings (asset_id, vuln_id, ecosystem, package, state, severity,
                                  cvss_score, known_exploited, epss_score, first_seen,
                                  last_seen, fixed_at, times_reopened, new_from_feed, data,
                                  installed_version, fixed_version, advisory_id, producer)
            SELECT 1 + (n - 1) / {per_asset}, 'CVE-2024-' || CAST(n % 5000 AS VARCHAR),
                   CASE WHEN {windows_finding} THEN 'Windows' ELSE 'Debian:12' END,
                   CASE WHEN {windows_finding} THEN 'Windows Server 2022'
                        ELSE 'pkg-' || CAST(n % 300 AS VARCHAR) END,
                   CASE WHEN n % 50 = 7 THEN 'accepted'
                        WHEN n % 100 = 13 THEN 'false_positive' ELSE 'open' END,
                   CASE n % 5 WHEN 0 THEN 'Critical' WHEN 1 THEN 'High' WHEN 2 THEN 'Medium'
                        WHEN 3 THEN 'Low' ELSE 'Unknown' END,
                   CASE n % 5 WHEN 0 THEN 9.0 WHEN 1 THEN 7.0 WHEN 2 THEN 4.0
                        WHEN 3 THEN 0.1 END + (n % 9) / 10.0,
                   n % 50 = 0, (n % 100) / 100.0, {first_seen}, :now,
                   NULL,
                   0, false, '{{}}',
                   CASE WHEN {windows_finding} THEN '10.0.20348.4' || CAST(648 + n % 7 AS VARCHAR)
                        ELSE '1.0-' || CAST(n % 7 AS VARCHAR) END,
                   CASE WHEN {windows_finding} THEN 'KB5078766' WHEN n % 4 <> 0 THEN '1.1' END,
                   CASE WHEN {windows_finding} THEN 'KB5078766'
                        ELSE 'DSA-' || CAST(n % 3000 AS VARCHAR) END, :producer
            FROM ({series(d, assets * per_asset)}) s
            """), {"now": now, "producer": producer})
        if d == "postgresql":
            for table, n in (("assets", assets), ("asset_groups", GROUPS)):
                conn.execute(text(f"SELECT setval('{table}_id_seq', {n})"))
    if d == "postgresql":
        _analyze(engine)
    with engine.begin() as conn:
        # Prioritised while open (due dates set), then 15 % fixed 0-44 days after detection.
        reprioritise(conn, now=now)
        conn.execute(sql_now(f"""
            UPDATE findings SET state = 'fixed',
                   fixed_at = {_days_after(d, "first_seen", "id % 45")}
            WHERE id % 20 < 3 AND state = 'open' AND first_seen < {_days_before(d, "45")}
            """), {"now": now})
        refresh_summary(conn, now=now)
    if d == "postgresql":
        _analyze(engine)
    optimize(engine)  # what an idle worker does on SQLite
    return now


def _analyze(engine: Engine) -> None:
    # What autovacuum does after a bulk insert (PostgreSQL 13+ vacuums on inserts too):
    # statistics for the planner, and the visibility map that lets counts read indexes only.
    # Only this schema's tables: a bare VACUUM would do every schema of the database (the
    # other tests' and benchmarks' too).
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT quote_ident(tablename) FROM pg_tables "
                                   "WHERE schemaname = current_schema()")).scalars().all()
        conn.rollback()
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE " + ", ".join(tables)))
