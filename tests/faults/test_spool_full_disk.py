"""The agent's spool on a full disk: the oldest data is kept whole, the newest is refused.

A long outage on a small ``/var`` fills the agent's spool.  The agent must not lose or
corrupt what it already holds, must not die, and must say that (and which) inventory it
could not keep.  When the server answers again the spooled inventories upload in order.
The spool sits on a real tmpfs a few inventories big; the server is a real process.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from patchpilot.agent.runtime import Agent, AgentConfig
from patchpilot.agent.spool import Spool, SpoolFullError
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.inventory.sources import dpkg
from patchpilot.models import Ecosystem
from tests.builders.processes import ServerProcess, env_for, patchpilot, wait_for
from tests.faults.conftest import tmpfs

FEEDS = {"osv/PYSEC-2023-117.yaml": "osv/pypi/pygments/PYSEC-2023-117.yaml"}
PAGE = 4096


def _documents(shared_data: Path, count: int) -> list[bytes]:
    """``count`` distinct real inventories (the Debian 12 package list, one host each)."""
    status = (shared_data / "inventories/debian12-dpkg-status").read_bytes()
    packages = dpkg.SOURCE.parse(status, "status", Ecosystem("Debian:12")).packages
    return [Inventory.from_packages(packages, asset=AssetIdentity(hostname=f"host{i}"),
                                    collector=Collector(name="agent")).to_json()
            for i in range(count)]


def test_a_full_spool_keeps_its_oldest_entries_whole(shared_data: Path,
                                                     tmp_path: Path) -> None:
    documents = _documents(shared_data, 4)
    pages = math.ceil(len(gzip.compress(documents[0], 6)) / PAGE)
    # Room for two entries and half of a third.
    with tmpfs(tmp_path / "spool", (2 * pages + pages // 2) * PAGE) as folder:
        spool = Spool(folder)
        kept = [spool.put(documents[0]), spool.put(documents[1])]
        with pytest.raises(SpoolFullError) as raised:
            spool.put(documents[2])
        assert str(raised.value).startswith(f"spool {folder} is full (No space left on "
                                            f"device): the newest inventory (")
        assert str(raised.value).endswith("bytes compressed) was not spooled; the 2 older "
                                          "one(s) are kept for upload")
        # No partial file left, and the kept entries are whole and in order.
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{k}.json.gz" for k in kept)
        assert [k for k, _ in spool.pending()] == kept
        assert [gzip.decompress(p.read_bytes()) for _, p in spool.pending()] == documents[:2]
        # Still full: the next one is refused the same way, and nothing changes.
        with pytest.raises(SpoolFullError):
            spool.put(documents[3])
        assert [k for k, _ in spool.pending()] == kept
        # Once one is uploaded (done), a new one fits again.
        spool.done(kept[0])
        newest = spool.put(documents[3])
        assert [k for k, _ in spool.pending()] == [kept[1], newest]


def test_a_partial_file_from_a_killed_agent_is_removed_at_start(tmp_path: Path) -> None:
    # A put interrupted by SIGKILL leaves ".<key>.part": never uploaded, but holding space.
    folder = tmp_path / "spool"
    folder.mkdir()
    (folder / ".0123.part").write_bytes(b"\x1f\x8b half a gzip")
    (folder / "0001.json.gz").write_bytes(gzip.compress(b"{}"))
    Spool(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["0001.json.gz"]


@pytest.fixture
def server_env(tmp_path: Path, feed_dir):  # type: ignore[no-untyped-def]
    """The environment of a server on a SQLite file, and an agent enrolment token."""
    env = env_for(f"sqlite:///{tmp_path / 'patchpilot.db'}", tmp_path / "home")
    patchpilot("db", "update", "--from", str(feed_dir(FEEDS)), env=env)
    enrol = patchpilot("enrol-token", "create", env=env).stdout.strip()
    return env, enrol


def test_agent_on_a_full_disk_keeps_its_oldest_inventories_and_uploads_them_in_order(
        server_env, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    env, enrol = server_env
    server = ServerProcess(env).start()
    state = tmp_path / "agent"
    agent = Agent(AgentConfig(server=server.url, state_dir=state, enrol_token=enrol,
                              name="small-var", poll_wait=1, max_backoff=1.0))
    agent.ensure_enrolled()
    agent_id = json.loads((state / "credential.json").read_text())["agent_id"]
    # This machine's inventory, as the agent spools it, sizes the tiny disk: room for two.
    first = agent.collect()
    pages = math.ceil(agent.spool.pending()[0][1].stat().st_size / PAGE)
    agent.spool.done(first)
    server.stop()  # the server is down from here on: every upload must wait in the spool
    runner: threading.Thread | None = None
    try:
        with tmpfs(state / "spool", (2 * pages + pages // 2) * PAGE) as folder:
            kept = [agent.collect(), agent.collect()]
            caplog.set_level(logging.ERROR, logger="patchpilot.agent.runtime")
            with pytest.raises(SpoolFullError):
                agent.collect()
            (message,) = [r.getMessage() for r in caplog.records]
            assert f"spool {folder} is full (No space left on device): the newest " \
                   "inventory" in message
            assert message.endswith("the 2 older one(s) are kept for upload")
            assert sorted(os.listdir(folder)) == sorted(f"{k}.json.gz" for k in kept)
            for _, path in agent.spool.pending():  # whole, valid documents
                assert Inventory.from_json(gzip.decompress(path.read_bytes())).packages

            # The agent's own loop: its start-up collection finds the disk full, it says so
            # and keeps running (retrying the unreachable server) instead of dying.
            caplog.clear()
            runner = threading.Thread(target=agent.run, daemon=True)
            runner.start()
            wait_for(lambda: any("is full" in r.getMessage() for r in caplog.records),
                     timeout=60)
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{server.url}/api/health", timeout=2)
            assert runner.is_alive()
            assert [k for k, _ in agent.spool.pending()] == kept

            # The server is back (same port, same database): the spool drains, in order.
            server.start()
            wait_for(lambda: not agent.spool.pending(), timeout=60)
            assert runner.is_alive()
    finally:
        agent.stop.set()
        if runner is not None:
            runner.join(timeout=30)
        server.stop()
    assert runner is not None and not runner.is_alive()
    engine = create_engine(f"sqlite:///{tmp_path / 'patchpilot.db'}")
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT idempotency_key FROM inventories ORDER BY id")
                            ).scalars().all()
    engine.dispose()
    assert keys == [f"agent:{agent_id}:{k}" for k in kept]
