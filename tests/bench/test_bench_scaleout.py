"""The scale-out benchmark's generation and measurement path, at a tiny size on
PostgreSQL, so that it keeps running: 200 assets, 5,000 findings, a real server and real
worker processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bench.bench_scaleout import run
from sqlalchemy import func, select

from patchpilot.db.engine import make_engine
from patchpilot.db.tables import asset_packages, findings, inventories
from tests.conftest import pg_schema_url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema (the benchmark is PostgreSQL's only)."""
    yield from pg_schema_url()


def test_scaleout_bench_runs_at_a_tiny_size(pg_url: str) -> None:
    lines: list[str] = []
    figures = run(pg_url, 200, 5_000, runs=3, server_processes=1, out=lines.append)
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(inventories)).scalar()
        rows = conn.execute(select(func.count()).select_from(asset_packages)).scalar()
        matched = conn.execute(select(func.count()).select_from(findings)
                               .where(findings.c.producer == "matcher")).scalar()
    engine.dispose()
    text = "\n".join(lines)
    assert stored == 200 and rows and rows > 200 * 50, text
    # The second run re-created what the reset deleted: the re-match had work both times.
    assert matched and f"the {matched:,} findings the last run created deleted" in text, text
    assert figures["sweep_seconds"] > 0 and "'affected': 0" not in text, text
    for page in ("overview", "findings list, first page", "GET /api/findings?limit=25"):
        assert figures[f"p95 {page}"] > 0, text
    for workers in (1, 2):
        assert figures[f"rematch {workers}"] > 0 and figures[f"prioritise {workers}"] > 0, text
    assert figures["ratio total"] > 0 and "scaling (1 worker / 2 workers)" in text, text
