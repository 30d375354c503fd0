"""Shared helpers of the benchmarks: where the real data is, a fresh database."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, TextClause, bindparam, create_engine, text
from sqlalchemy.engine import Connection

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PATCHPILOT_SHARED_DATA", REPO.parent / "shared" / "data"))

# Every advisory feed of ../shared/data (the distro/ trees also hold broken fixtures kept
# on purpose by their upstream projects, so only the real feeds there are named).
ADVISORY_ROOTS = [
    DATA / "osv",
    DATA / "distro/vunnel-fixtures/debian/input",
    DATA / "distro/vunnel-fixtures/ubuntu/osv",
]
ENRICHMENT_ROOTS = [DATA / "nvd", DATA / "kev", DATA / "epss"]


def fresh_sqlite(name: str) -> tuple[str, Path]:
    """A URL of a new SQLite database in a temporary folder (removed by the caller)."""
    folder = Path(tempfile.mkdtemp(prefix=f"pp-bench-{name}-"))
    return f"sqlite:///{folder / 'patchpilot.db'}", folder


def cleanup(folder: Path) -> None:
    """Remove a temporary folder."""
    shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def pg_schema(server_url: str, *, keep: bool = False) -> Iterator[str]:
    """A URL on a fresh schema of the PostgreSQL server at ``server_url`` (dropped after,
    unless ``keep``)."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{server_url}?options=-csearch_path%3D{schema}"
    finally:
        if not keep:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def on_databases(name: str, pg: str | None, run: Callable[[str, str], None]) -> None:
    """``run(url, label)`` on a fresh SQLite file, then (with ``pg``) a fresh schema."""
    url, folder = fresh_sqlite(name)
    try:
        run(url, "SQLite")
    finally:
        cleanup(folder)
    if pg:
        with pg_schema(pg) as pg_url:
            run(pg_url, "PostgreSQL")


def main_on_databases(name: str, doc: str | None, run: Callable[[str, str], None]) -> None:
    """The command line of a benchmark whose only option is ``--pg URL``."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--pg", help="also run against this PostgreSQL URL (a fresh schema)")
    on_databases(name, parser.parse_args().pg, run)


def main_with_assets(name: str, doc: str | None, run: Callable[[str, int], None]) -> None:
    """The command line of a benchmark over a synthetic estate: ``--assets N``, ``--pg URL``."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--pg", help="also run on this PostgreSQL server (a fresh schema)")
    args = parser.parse_args()

    def labelled(url: str, label: str) -> None:
        print(f"{label} ({args.assets:,} assets)")
        run(url, args.assets)

    on_databases(name, args.pg, labelled)


# --- synthetic estates, generated inside the database (INSERT … SELECT over a series) ----

def sql_now(sql: str) -> TextClause:
    """A statement whose ``:now`` is stored as SQLAlchemy stores datetimes."""
    return text(sql).bindparams(bindparam("now", type_=DateTime(timezone=True)))


def series(dialect: str, n: int) -> str:
    """A subquery of the integers 1..n, column ``n``."""
    if dialect == "postgresql":
        return f"SELECT generate_series(1, {n}) AS n"
    return (f"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {n}) "
            "SELECT n FROM s")


def insert_context(conn: Connection, n_assets: int, now: object) -> None:
    """CMDB context for assets 1..n_assets but every tenth: tiers 1-4, three environments,
    three exposures, a compensating control on every seventh, twenty services."""
    conn.execute(sql_now(f"""
        INSERT INTO asset_context (asset_id, criticality, environment, exposure,
                                   compensating_control, service, source, updated_at)
        SELECT n, 1 + n % 4,
               CASE n % 3 WHEN 0 THEN 'production' WHEN 1 THEN 'staging'
                    ELSE 'development' END,
               CASE n % 5 WHEN 0 THEN 'internet-facing' WHEN 1 THEN 'isolated'
                    ELSE 'internal' END,
               CASE WHEN n % 7 = 0 THEN 'WAF' END, 'svc-' || CAST(n % 20 AS VARCHAR),
               'bench', :now
        FROM ({series(conn.dialect.name, n_assets)}) s WHERE n % 10 <> 0
        """), {"now": now})


def timed(fn: Callable[[], Any], runs: int = 20, warm: int = 1) -> tuple[float, float]:
    """Median and p95 of ``runs`` calls of ``fn`` after ``warm`` ones, in milliseconds."""
    for _ in range(warm):  # warm the caches
        fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, statistics.quantiles(times, n=20)[-1] * 1000


def free_port() -> int:
    """A TCP port nobody listens on (127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any], *, kill: bool = False,
                 timeout: float = 30) -> None:
    """Stop a child process: SIGTERM (SIGKILL with ``kill``: a crash, not a clean
    shutdown), then SIGKILL if it has not ended within ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    if kill:
        proc.kill()
    else:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def page_csrf(page: str) -> str:
    """The CSRF token of a dashboard form (the login page's)."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)
