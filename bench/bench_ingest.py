"""Benchmark: 1,000 agents uploading 2,000-package inventories to a real server process.

A real ``patchpilot server`` (uvicorn, one embedded worker) on 127.0.0.1; 1,000 simulated
agents enrol through the API, then each uploads one gzip-compressed 2,000-package
inventory (real Debian 12 dpkg packages and real PyPI packages at versions named by OSV
advisories, versions mixed per agent) with bounded concurrency (20 HTTP clients at
once).  Reported: every upload stored (inventories in the database == agents, none lost),
throughput, and the latency of an upload (p50, p99).  Only loopback; bounded in count
(--agents) and time (every request times out after 60 s).

    python -m bench.bench_ingest [--agents 1000] [--concurrency 20] [--pg URL]
"""

from __future__ import annotations

import argparse
import gzip
import random
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import func, select
from tests.builders.processes import ServerProcess, env_for

from bench.bench_sweep import _debian, _debian_alternatives, _pypi_pool
from bench.common import cleanup, fresh_sqlite, pg_schema
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import inventories, jobs
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.models import Ecosystem, Package
from patchpilot.server.security import create_enrolment_token

PACKAGES = 2000


def bodies(n_agents: int, seed: int = 11) -> list[bytes]:
    """One gzip inventory document of PACKAGES packages per agent."""
    rng = random.Random(seed)
    debian, alternatives, pool = _debian(), _debian_alternatives(), _pypi_pool(2000)
    out = []
    for i in range(n_agents):
        packages = [rng.choice(alternatives[p.name])
                    if p.name in alternatives and rng.random() < 0.1 else p for p in debian]
        # Python services fill the rest: real names, versions from real advisories, some
        # installed in several virtualenvs (the pool is smaller than what is needed).
        while len(packages) < PACKAGES:
            name, versions = rng.choice(pool)
            packages.append(Package(Ecosystem("PyPI"), name, rng.choice(versions),
                                    location=f"/srv/app{rng.randint(1, 8)}/venv"))
        inv = Inventory.from_packages(
            packages, asset=AssetIdentity(hostname=f"agent-{i:04d}",
                                          machine_id=uuid.UUID(int=i).hex),
            collector=Collector(name="agent"))
        out.append(gzip.compress(inv.to_json(), compresslevel=6))
    return out


def run(url: str, home: Path, n_agents: int, concurrency: int) -> None:
    """Start the server, enrol, upload, check, print."""
    engine = make_engine(url)
    upgrade_schema(engine)
    enrol = create_enrolment_token(engine, created_by="bench")
    t = time.perf_counter()
    docs = bodies(n_agents)
    print(f"  {n_agents:,} inventories of {PACKAGES:,} packages built in "
          f"{time.perf_counter() - t:.1f} s (gzip: {statistics.mean(map(len, docs)) / 1024:.0f} "
          "KiB each)")
    server = ServerProcess(env_for(url, home), workers=1).start()
    try:
        limits = httpx.Limits(max_connections=1)

        def enrol_one(i: int) -> str:
            with httpx.Client(base_url=server.url, timeout=60, limits=limits) as c:
                answer = c.post("/api/agents/enrol", json={"token": enrol,
                                                           "name": f"agent-{i:04d}"})
                answer.raise_for_status()
                return str(answer.json()["credential"])

        t = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            credentials = list(pool.map(enrol_one, range(n_agents)))
        print(f"  enrolled {len(credentials):,} agents in {time.perf_counter() - t:.1f} s")

        def upload(i: int) -> tuple[float, int]:
            with httpx.Client(base_url=server.url, timeout=60, limits=limits) as c:
                started = time.perf_counter()
                answer = c.post("/api/inventories", content=docs[i], headers={
                    "Authorization": f"Bearer {credentials[i]}", "Content-Encoding": "gzip",
                    "Content-Type": "application/json", "Idempotency-Key": f"boot-{i}"})
                return time.perf_counter() - started, answer.status_code

        t = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            done = list(pool.map(upload, range(n_agents)))
        wall = time.perf_counter() - t
        latencies = sorted(d for d, _ in done)
        codes = {c for _, c in done}
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(inventories)).scalar()
            queued = conn.execute(select(func.count()).select_from(jobs).where(
                jobs.c.kind == "match", jobs.c.state.in_(("queued", "leased")))).scalar()
        print(f"  uploads: {n_agents:,} in {wall:.1f} s = {n_agents / wall:.1f} uploads/s "
              f"({concurrency} concurrent), status codes {sorted(codes)}")
        print(f"  latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
              f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.0f} ms, "
              f"max {latencies[-1] * 1000:.0f} ms")
        print(f"  stored inventories: {stored:,} of {n_agents:,} "
              f"({'none lost' if stored == n_agents else 'LOST SOME'}); "
              f"match jobs still queued for the worker: {queued:,}")
    finally:
        server.stop()
        engine.dispose()


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--pg", help="run on this PostgreSQL server (a fresh schema) instead")
    args = parser.parse_args()
    url, folder = fresh_sqlite("ingest")
    try:
        if args.pg:
            with pg_schema(args.pg) as pg_url:
                print(f"PostgreSQL, {args.agents:,} agents")
                run(pg_url, folder, args.agents,
                    args.concurrency)
        else:
            print(f"SQLite, {args.agents:,} agents")
            run(url, folder, args.agents, args.concurrency)
    finally:
        cleanup(folder)


if __name__ == "__main__":
    main()
