"""A database that refuses writes, and a home where none can be made (issue 10, item 12).

Tests run as root, and root ignores file modes: a chmod 0444 database would still be
written.  So the read-only database here is read-only for real, whoever we are: SQLite
opened with ``?mode=ro`` (SQLITE_OPEN_READONLY: the library refuses every write with
SQLITE_READONLY, exactly what a read-only file or mount gives), and PostgreSQL with
``default_transaction_read_only=on`` (what a hot standby answers: SQLSTATE 25006).  An
unwritable home is a path under a regular file, which fails for root too.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token
from patchpilot.worker import run_forever


@pytest.fixture
def read_only(engine: Engine, database_url: str) -> Iterator[Engine]:
    """A second engine on the same (migrated) database that cannot write to it."""
    if engine.dialect.name == "sqlite":
        url = f"sqlite:///file:{engine.url.database}?mode=ro&uri=true"
    else:
        base, _, options = database_url.partition("?options=")
        url = f"{base}?options={options}{quote(' -cdefault_transaction_read_only=on')}"
    ro = make_engine(url)
    yield ro
    ro.dispose()


def test_health_says_degraded_and_writes_answer_503(engine: Engine, read_only: Engine) -> None:
    admin = create_api_token(engine, user="admin-user", role=Role.ADMIN)[0]
    with TestClient(create_app(engine)) as client:
        assert client.get("/api/health").json()["status"] == "ok"
        # The token's use is recorded now (then at most once a minute): the read below
        # needs no write.
        assert client.get("/api/groups", headers={"Authorization": f"Bearer {admin}"}
                          ).status_code == 200
    with TestClient(create_app(read_only)) as client:
        health = client.get("/api/health")
        assert health.status_code == 503
        body = health.json()
        assert (body["status"], body["database"].split(":")[0]) == ("degraded", "read-only")
        headers = {"Authorization": f"Bearer {admin}"}
        # Reads still work; a write is refused with a 503 naming the cause.
        assert client.get("/api/groups", headers=headers).status_code == 200
        answer = client.post("/api/groups", json={"name": "plant"}, headers=headers)
        assert answer.status_code == 503
        assert answer.json()["detail"].startswith("the database is read-only (")
        assert answer.json()["detail"].endswith("); nothing was changed")
    with TestClient(create_app(engine)) as client:
        listed = client.get("/api/groups", headers={"Authorization": f"Bearer {admin}"})
        assert listed.json() == []


def test_worker_backs_off(read_only: Engine, caplog: pytest.LogCaptureFixture) -> None:
    errors: list[int] = []
    event.listen(read_only, "handle_error", lambda _ctx: errors.append(1))
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="patchpilot.worker")
    worker = threading.Thread(target=run_forever, args=(read_only, stop),
                              kwargs={"idle_seconds": 0.01, "tick_seconds": None,
                                      "max_backoff": 0.16})
    worker.start()
    time.sleep(1.5)
    stop.set()
    worker.join(timeout=5)
    # Without back-off a failing round every 10 ms: ~150.  With it, waits of 0.01, 0.02,
    # 0.04, 0.08 and then 0.16 s: about 5 + 1.35 / 0.16 rounds.
    assert 5 <= len(errors) <= 16, len(errors)
    lines = [r for r in caplog.records if r.name == "patchpilot.worker"]
    # One line per change of the wait (0.01 .. 0.16: five), no traceback.
    assert len(lines) == 5, [r.getMessage() for r in lines]
    assert all(r.exc_info is None for r in lines)
    assert lines[-1].getMessage().endswith("retrying in 0.16 s")
    assert "readonly database" in lines[0].getMessage() or \
        "read-only transaction" in lines[0].getMessage()


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "patchpilot.cli", *args], text=True,
                          capture_output=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200", **env})


@pytest.mark.parametrize("command", [["server", "--port", "1"], ["worker"], ["up", "--port", "1"]])
def test_start_with_unwritable_home_is_one_line(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "file").write_text("")
    home = tmp_path / "file" / "home"
    env = {"PATCHPILOT_HOME": str(home), "PATCHPILOT_DATABASE_URL": ""}
    done = _cli(command, env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (f"error: cannot create the database {home}/patchpilot.db: Not a "
                           f"directory ({home}); set PATCHPILOT_HOME or "
                           "PATCHPILOT_DATABASE_URL to a writable place\n")


def test_start_on_read_only_database_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "pp.db"
    upgrade_schema(make_engine(f"sqlite:///{path}"))
    done = _cli(["worker"], {"PATCHPILOT_HOME": str(tmp_path),
                             "PATCHPILOT_DATABASE_URL": f"sqlite:///file:{path}?mode=ro&uri=true"})
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: the database sqlite:///")
    assert lines[0].endswith(" is read-only: attempt to write a readonly database")


def test_new_database_file_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "home" / "patchpilot.db"
        eng = make_engine(f"sqlite:///{path}")
        upgrade_schema(eng)
        with eng.connect() as conn:  # WAL mode: the -wal and -shm files exist while open
            modes = {p.name: stat.S_IMODE(p.stat().st_mode)
                     for p in path.parent.iterdir() if p.name.startswith("patchpilot.db")}
            conn.rollback()
        eng.dispose()
    finally:
        os.umask(old)
    assert modes == {"patchpilot.db": 0o600, "patchpilot.db-wal": 0o600,
                     "patchpilot.db-shm": 0o600}
