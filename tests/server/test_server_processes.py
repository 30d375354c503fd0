"""``patchpilot server --workers N`` (issue 19): N server processes answer on one port,
under one supervising process that replaces one that dies; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.server.security import Role, create_api_token
from tests.builders.processes import ServerProcess, env_for, wait_for


def _server_processes(supervisor: int) -> set[int]:
    """The uvicorn worker processes of ``supervisor``: its children started by
    multiprocessing's spawn (not its resource tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # ended meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == supervisor and "spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


def test_two_server_processes_answer_on_one_port(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    upgrade_schema(engine)
    token, _ = create_api_token(engine, user="ops", role=Role.ADMIN, name="processes")
    engine.dispose()
    server = ServerProcess(env_for(database_url, tmp_path / "home"), workers=0,
                           processes=2).start(timeout=120)
    try:
        assert server.proc is not None
        first = wait_for(lambda: (p := _server_processes(server.proc.pid)) and len(p) == 2
                         and p, timeout=120)

        def ask(n: int) -> int:
            path = "/api/health" if n % 2 else "/api/assets"
            return httpx.get(server.url + path, headers={"Authorization": f"Bearer {token}"},
                             timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(ask, range(40))) == {200}
        assert httpx.get(server.url + "/login", timeout=30).status_code == 200

        # One process dies: the supervisor starts another, the port keeps answering.
        gone = min(first)
        os.kill(gone, signal.SIGKILL)
        second = wait_for(lambda: (p := _server_processes(server.proc.pid)) and len(p) == 2
                          and gone not in p and p, timeout=120)
        assert len(second & first) == 1
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(ask, range(20))) == {200}
    finally:
        supervisor = server.proc.pid if server.proc else None
        server.stop()
    # Stopping the supervisor stops its server processes too.
    assert supervisor is not None and not _server_processes(supervisor)
