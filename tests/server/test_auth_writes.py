"""Reads need no write; a write that cannot get SQLite's lock answers 503 (issue 10,
item 11).

Before the fix every authenticated request wrote ``last_used_at`` / ``last_seen``, so
while another connection held SQLite's write lock even a GET waited 30 s and failed with a
bare 500.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, update

from patchpilot.clock import aware, now_utc
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import api_tokens
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, authenticate, create_api_token
from tests.builders.sessions import SECRET, add_users, sign_in


def _last_used(engine: Engine, token_id: int):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return aware(conn.execute(select(api_tokens.c.last_used_at)
                                  .where(api_tokens.c.id == token_id)).scalar())


def test_last_use_is_written_at_most_once_a_minute(engine: Engine) -> None:
    token, token_id = create_api_token(engine, user="ana", role=Role.ANALYST)
    with engine.begin() as conn:
        assert authenticate(conn, token).role == Role.ANALYST
    first = _last_used(engine, token_id)
    assert first is not None
    with engine.begin() as conn:
        authenticate(conn, token)
    assert _last_used(engine, token_id) == first  # within the minute: no write
    older = now_utc() - timedelta(minutes=2)
    with engine.begin() as conn:
        conn.execute(update(api_tokens).where(api_tokens.c.id == token_id)
                     .values(last_used_at=older))
        authenticate(conn, token)
    assert _last_used(engine, token_id) > older + timedelta(minutes=1)


# SQLite only: PostgreSQL has no database-wide write lock (writers lock rows), so "another
# writer holds the database" cannot happen there; the bare-500 defect was SQLite's.
@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    path = tmp_path / "locked.db"
    engine = make_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # The test's writes give up after 0.5 s instead of the server's 30 s.
        dbapi_conn.execute("PRAGMA busy_timeout = 500")

    upgrade_schema(engine)
    yield engine, path
    engine.dispose()


def test_reads_answer_and_writes_get_503_while_another_writer_holds_sqlite(
        sqlite_engine: tuple[Engine, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, path = sqlite_engine
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", SECRET)
    add_users(engine)
    admin, admin_id = create_api_token(engine, user="admin-user", role=Role.ADMIN)
    bearer = {"Authorization": f"Bearer {admin}"}
    with TestClient(create_app(engine), follow_redirects=False) as client:
        csrf = sign_in(client, "viewer-user", "viewer-password")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        try:
            started = time.monotonic()
            # The token's first use wants to record it: skipped, the read answers.
            assert client.get("/api/tokens", headers=bearer).status_code == 200
            assert client.get("/api/assets", headers=bearer).status_code == 200
            assert client.get("/overview").status_code == 200  # a session reads only
            assert time.monotonic() - started < 10
            answer = client.post("/api/tokens", headers=bearer,
                                 json={"user": "new-user", "role": "viewer"})
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "5"
            assert answer.json() == {
                "detail": "the database is busy with another writer; retry shortly"}
            # A page's write: the HTML error page, 503 with Retry-After as well.
            page = client.post("/language", data={"lang": "ja", "csrf": csrf})
            assert (page.status_code, page.headers["retry-after"]) == (503, "5")
            assert page.headers["content-type"].startswith("text/html")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert _last_used(engine, admin_id) is None  # skipped while locked
        assert client.get("/api/assets", headers=bearer).status_code == 200
        assert _last_used(engine, admin_id) is not None  # recorded once the lock was gone
