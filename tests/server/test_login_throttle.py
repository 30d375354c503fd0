"""Login throttling and the cap on concurrent password hashing (issue 10, item 5).

Before the fix every wrong password was hashed with argon2 (~64 MiB each), without limit:
30 concurrent wrong logins took the server to 1 GB, and guessing was never slowed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import orjson
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import audit_log, login_throttle
from patchpilot.server import security, throttle
from patchpilot.server.app import create_app
from patchpilot.server.security import HASHING, HASHING_SLOTS
from tests.builders.processes import free_port
from tests.builders.sessions import SECRET, add_users, cheap_hash, page_csrf


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", SECRET)
    # Unknown names are checked against a cheap hash too (quick tests; the cap test below
    # keeps the real one, so that its verifications overlap).
    monkeypatch.setattr(security, "_DUMMY_HASH", cheap_hash("no-such-user"))
    add_users(engine)
    with TestClient(create_app(engine), follow_redirects=False) as c:
        yield c


def _try(client: TestClient, name: str, password: str, lang: str = "en") -> httpx.Response:
    csrf = page_csrf(client.get("/login").text)
    return client.post("/login", data={"username": name, "password": password, "csrf": csrf},
                       headers={"Accept-Language": lang})


def _row(engine: Engine, key: str) -> tuple[int, bool] | None:
    """(failures, locked now) of a throttle key."""
    with engine.connect() as conn:
        row = conn.execute(select(login_throttle).where(login_throttle.c.key == key)).first()
    if row is None:
        return None
    until = aware(row.locked_until)
    return row.failures, until is not None and until > now_utc()


def _unlock(engine: Engine, key: str) -> None:
    """Let the lock of ``key`` run out (its end moved into the past)."""
    with engine.begin() as conn:
        conn.execute(update(login_throttle).where(login_throttle.c.key == key)
                     .values(locked_until=now_utc() - timedelta(seconds=1)))


def test_sixth_wrong_login_is_locked_out_with_retry_after(client: TestClient,
                                                         engine: Engine) -> None:
    for _ in range(5):
        assert _try(client, "viewer-user", "wrong-password").status_code == 401
    assert _row(engine, "user:viewer-user") == (5, True)
    hashed = HASHING.total
    answer = _try(client, "viewer-user", "wrong-password")
    assert answer.status_code == 429
    assert 55 <= int(answer.headers["retry-after"]) <= 60  # the first lock: one minute
    assert "Too many failed logins. Try again in 1 min." in answer.text
    assert HASHING.total == hashed  # refused before any password was hashed
    with engine.connect() as conn:
        audits = conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.target,
                                     audit_log.c.detail)
                              .where(audit_log.c.action == "login.lockout")).all()
    assert [(a.actor, a.action, a.target) for a in audits] == [
        ("login-throttle", "login.lockout", "user:viewer-user")]
    assert orjson.loads(audits[0].detail)["failures"] == 5
    assert orjson.loads(audits[0].detail)["client"] == "testclient"


def test_lockout_message_is_in_the_users_language(client: TestClient) -> None:
    for _ in range(5):
        _try(client, "analyst-user", "wrong-password")
    answer = _try(client, "analyst-user", "wrong-password", lang="ja")
    assert answer.status_code == 429
    assert "ログインの失敗が多すぎます。1 分後にもう一度お試しください。" in answer.text


def test_a_locked_name_refuses_the_right_password_until_the_lock_ends(
        client: TestClient, engine: Engine) -> None:
    for _ in range(5):
        _try(client, "admin-user", "wrong-password")
    assert _try(client, "admin-user", "admin-password").status_code == 429
    assert _try(client, "viewer-user", "viewer-password").status_code == 303  # others may
    _unlock(engine, "user:admin-user")
    assert _try(client, "admin-user", "admin-password").status_code == 303
    assert _row(engine, "user:admin-user") is None  # success resets the name's count


def test_each_failure_after_a_lock_doubles_it(client: TestClient, engine: Engine) -> None:
    for _ in range(5):
        _try(client, "viewer-user", "wrong-password")
    _unlock(engine, "user:viewer-user")
    assert _try(client, "viewer-user", "wrong-again").status_code == 401
    answer = _try(client, "viewer-user", "wrong-password")
    assert answer.status_code == 429
    assert 115 <= int(answer.headers["retry-after"]) <= 120  # 2 min
    assert _row(engine, "user:viewer-user") == (6, True)
    assert [throttle.lock_length(n, 5) for n in (5, 6, 7, 30)] == [
        timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4), timedelta(hours=24)]


def test_an_address_guessing_many_names_is_locked(client: TestClient, engine: Engine) -> None:
    for n in range(throttle.ADDRESS_LIMIT):
        assert _try(client, f"nobody-{n}", "wrong-password").status_code == 401
    assert _row(engine, "addr:testclient") == (throttle.ADDRESS_LIMIT, True)
    # The address is locked for every name, a right password included.
    assert _try(client, "viewer-user", "viewer-password").status_code == 429


def test_hashing_is_capped_under_concurrent_logins(engine: Engine,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Many concurrent wrong logins against a real server (uvicorn on a loopback port):
    at most HASHING_SLOTS argon2 verifications ever run at once (the gauge counts them)."""
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", SECRET)
    add_users(engine)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        first = httpx.get(f"{url}/login")
        csrf, cookies = page_csrf(first.text), dict(first.cookies)
        HASHING.peak = 0
        hashed = HASHING.total
        answers: list[httpx.Response] = []

        def attempt(n: int) -> None:
            # Distinct names: no name reaches its limit, so each attempt wants a hash.
            answers.append(httpx.post(f"{url}/login", cookies=cookies, timeout=30, data={
                "username": f"guess-{n}", "password": "wrong-password", "csrf": csrf}))

        pool = [threading.Thread(target=attempt, args=(n,)) for n in range(12)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    codes = sorted(a.status_code for a in answers)
    assert set(codes) <= {401, 503} and len(codes) == 12
    assert all(a.headers["retry-after"] == str(throttle.BUSY_RETRY)
               for a in answers if a.status_code == 503)
    assert HASHING.peak == HASHING_SLOTS == 2  # concurrency reached the cap, never past it
    assert HASHING.total - hashed == codes.count(401)  # every 401 was hashed, no 503 was
