"""PostgreSQL restarted under a running server and worker: both recover on their own.

A database failover, a minor-version upgrade or an OOM kill restarts PostgreSQL: every
pooled connection dies at once.  The server must answer again (health, an authenticated
read, an upload) and the worker must go on taking jobs, without anyone restarting either
process.  The cluster is private to this test (the shared one at 127.0.0.1:5432 serves
other tests); the server and the worker are real processes over loopback.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.models import Ecosystem, Package
from tests.builders.processes import ServerProcess, env_for, patchpilot, wait_for
from tests.faults.conftest import PrivatePostgres

FEEDS = {"osv/PYSEC-2023-117.yaml": "osv/pypi/pygments/PYSEC-2023-117.yaml"}


def _inventory(hostname: str) -> bytes:
    """A host with pygments 2.14.0, which PYSEC-2023-117 (CVE-2022-40896) affects."""
    return Inventory.from_packages(
        [Package(ecosystem=Ecosystem("PyPI"), name="pygments", version="2.14.0")],
        asset=AssetIdentity(hostname=hostname), collector=Collector(name="script"),
        collected_at=datetime(2025, 3, 1, tzinfo=UTC)).to_json()


class Api:
    """The server's API as an admin, every call bounded in time."""

    def __init__(self, url: str, token: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=10,
                                   headers={"Authorization": f"Bearer {token}"})

    def upload(self, hostname: str) -> int:
        """POST one inventory (accepted: 202); the asset it was filed under."""
        answer = self.client.post("/api/inventories", content=_inventory(hostname),
                                  headers={"Content-Type": "application/json"})
        assert answer.status_code == 202, answer.text
        return int(answer.json()["asset_id"])

    def findings_of(self, asset_id: int) -> list[str]:
        """The vulnerability ids of the asset's open findings (empty until matched)."""
        answer = self.client.get("/api/findings", params={"asset_id": asset_id})
        assert answer.status_code == 200, answer.text
        return sorted(f["vuln_id"] for f in answer.json()["items"])


@pytest.fixture
def stack(private_postgres: PrivatePostgres, tmp_path: Path, feed_dir
          ) -> Iterator[tuple[ServerProcess, subprocess.Popen[str], Api, Path]]:  # type: ignore[no-untyped-def]
    """A server (no embedded worker) and one ``patchpilot worker`` on the private cluster;
    the worker's log goes to a file (a pipe nobody reads would block it once full)."""
    env = env_for(private_postgres.url, tmp_path / "home")
    patchpilot("db", "update", "--from", str(feed_dir(FEEDS)), env=env)
    admin = patchpilot("token", "create", "--role", "admin", env=env).stdout.strip()
    server = ServerProcess(env, workers=0).start()
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen([sys.executable, "-m", "patchpilot.cli", "worker"], env=env,
                                  stdout=out, stderr=subprocess.STDOUT, text=True)
    api = Api(server.url, admin)
    try:
        yield server, worker, api, log
    finally:
        api.client.close()
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
        server.stop()


def test_server_and_worker_recover_from_a_postgres_restart(
        stack, private_postgres: PrivatePostgres) -> None:  # type: ignore[no-untyped-def]
    server, worker, api, log = stack
    server_pid, worker_pid = server.proc.pid, worker.pid  # type: ignore[union-attr]
    before = api.upload("before-restart")
    assert wait_for(lambda: api.findings_of(before), timeout=60) == ["CVE-2022-40896"]

    # Every pooled connection of both processes now points at a dead backend.
    private_postgres.stop()
    # While the database is down the server answers (an error, not a hang) and stays up.
    down = httpx.get(f"{server.url}/api/health", timeout=15)
    assert down.status_code >= 500
    time.sleep(1.5)  # the worker's loop meets the outage at least once
    private_postgres.start()
    outage = log.read_text()
    assert "worker: database error while" in outage  # it met the outage and said so

    # Back: the same processes answer and work again, with no restart of either.
    wait_for(lambda: httpx.get(f"{server.url}/api/health", timeout=5).status_code == 200,
             timeout=30)
    assert api.client.get("/api/assets").status_code == 200
    after = api.upload("after-restart")
    assert after != before
    assert wait_for(lambda: api.findings_of(after), timeout=60) == ["CVE-2022-40896"]
    assert server.proc is not None and server.proc.poll() is None
    assert worker.poll() is None
    assert "worker: the database answers again; back to work" in log.read_text()
    assert (server.proc.pid, worker.pid) == (server_pid, worker_pid)
