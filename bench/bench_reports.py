"""Benchmark: report downloads from a real ``patchpilot server`` on 10,000 assets and
1,000,000 findings (bench/dashboard_data.py), SQLite and PostgreSQL.

* the technical CSV of the whole estate (every open finding), streamed by
  ``GET /api/reports/technical?format=csv`` -- target (issue 13): < 15 s at flat memory,
  the server's peak RSS < 200 MB;
* the technical XLSX of one 500-asset group (site-1, ~43,000 open findings): past
  ``PATCHPILOT_REPORT_SYNC_FINDINGS`` the download answers 202 with a report job, which
  is followed to its file -- built in a child process under the memory ceiling, whose
  peak is the job's ``peak_mb``.

The server is started as a user would (``patchpilot server``), without embedded workers,
and a ``patchpilot worker`` beside it once the CSV is measured: a worker's first round does
the upkeep of the whole estate (SLA breaches, stale summaries), which would otherwise land
in the server's peak and compete with the CSV for the CPUs.
The server's peak RSS is ``VmHWM`` of ``/proc/PID/status``.  The SQLite estate is populated once and
kept in /tmp/h-repjobs-estate.db (copied for each run: the server writes to it); the
PostgreSQL one is populated in a fresh schema.

    python -m bench.bench_reports [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import main_on_databases
from bench.dashboard_data import populate
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.server.security import Role, create_api_token

CACHE = Path("/tmp/h-repjobs-estate.db")
CSV_SECONDS, CSV_RSS_MB = 15.0, 200


def _estate(url: str, label: str) -> None:
    """The estate in the database at ``url``: the cached SQLite file, or populated."""
    if label == "SQLite":
        target = Path(url.removeprefix("sqlite:///"))
        if not CACHE.exists():
            partial = CACHE.with_suffix(".tmp")
            engine = make_engine(f"sqlite:///{partial}")
            upgrade_schema(engine)
            populate(engine)
            engine.dispose()
            partial.replace(CACHE)
        shutil.copyfile(CACHE, target)
    engine = make_engine(url)
    upgrade_schema(engine)
    if label != "SQLite":
        started = time.perf_counter()
        populate(engine)
        print(f"  populated in {time.perf_counter() - started:.0f} s", flush=True)
    engine.dispose()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(pid: int, field: str) -> int:
    """A ``/proc/PID/status`` figure in MiB (VmHWM: the peak resident memory)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return 0


def run(url: str, label: str) -> None:
    """Populate (or copy) the estate, start a server, download the reports."""
    _estate(url, label)
    engine = make_engine(url)
    token, _ = create_api_token(engine, user="bench", role=Role.VIEWER)
    engine.dispose()
    home = Path(os.environ.get("TMPDIR", "/tmp")) / f"pp-bench-reports-{os.getpid()}"
    home.mkdir(exist_ok=True)
    port = _port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PATCHPILOT_")},
           "PATCHPILOT_DATABASE_URL": url, "PATCHPILOT_HOME": str(home),
           "PATCHPILOT_FEED_UPDATE_INTERVAL": "off",
           "PATCHPILOT_SESSION_SECRET": "bench-" + "s" * 40}
    server = subprocess.Popen([sys.executable, "-m", "patchpilot.cli", "server", "--port",
                               str(port), "--job-workers", "0"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes = [server]
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        idle = _status(server.pid, "VmRSS")
        started = time.perf_counter()
        size = first = 0.0
        with httpx.stream("GET", f"{base}/api/reports/technical", params={"format": "csv"},
                          headers=auth, timeout=600) as answer:
            assert answer.status_code == 200, answer.status_code
            for chunk in answer.iter_bytes():
                first = first or time.perf_counter() - started
                size += len(chunk)
        took = time.perf_counter() - started
        peak = _status(server.pid, "VmHWM")
        print(f"{label}: technical CSV of the estate  {took:6.1f} s (first byte "
              f"{first:.1f} s), {size / 1e6:.0f} MB; server RSS idle {idle} MB, peak "
              f"{peak} MB   (target < {CSV_SECONDS:.0f} s, < {CSV_RSS_MB} MB)", flush=True)

        # The worker from now on: its first round's upkeep of the estate must not compete
        # with the CSV for the two CPUs.
        processes.append(subprocess.Popen([sys.executable, "-m", "patchpilot.cli", "worker"],
                                          env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        started = time.perf_counter()
        answer = httpx.get(f"{base}/api/reports/technical", headers=auth, timeout=60,
                           params={"format": "xlsx", "group": "site-1"})
        assert answer.status_code == 202, (answer.status_code, answer.text[:200])
        job = answer.json()
        while job["state"] in ("queued", "running"):
            time.sleep(0.5)
            job = httpx.get(base + job["status"], headers=auth, timeout=30).json()
        assert job["state"] == "done", job
        got = httpx.get(base + job["download"], headers=auth, timeout=300)
        took = time.perf_counter() - started
        print(f"{label}: technical XLSX of site-1 ({job['total']:,} findings), as a job  "
              f"{took:6.1f} s (built in {job['seconds']:.1f} s), {len(got.content) / 1e6:.1f} "
              f"MB; the job's process peak {job['peak_mb']} MB; server RSS peak "
              f"{_status(server.pid, 'VmHWM')} MB", flush=True)
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:  # a worker in the midst of a plan rebuild
                process.kill()
                process.wait()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    """Entry point."""
    main_on_databases("reports", __doc__, run)


if __name__ == "__main__":
    main()
