"""Signing in to the dashboard in tests: the CSRF token of a page, a password or token login.

A helper module (like ``processes.py``), not a test module: the session, throttle and
database-lock tests share it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from patchpilot.db.tables import users
from patchpilot.server.app import create_app
from patchpilot.server.directory import set_scopes
from patchpilot.server.security import Role, ensure_user
from patchpilot.server.web import session

SECRET = "test-secret-" + "x" * 32  # PATCHPILOT_SESSION_SECRET of the tests


def page_csrf(html: str) -> str:
    """The CSRF token of a page's first form."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str) -> str:
    """Sign in with a password (``name``) or, with ``name`` empty, an API token; the CSRF
    token of the new session."""
    token = page_csrf(client.get("/login").text)
    answer = client.post("/login", data={"username": name, "password": password,
                                         "csrf": token, "next": "/overview"})
    assert answer.status_code == 303, answer.text
    return page_csrf(client.get("/overview").text)


def cookie(client: TestClient) -> str:
    """The client's session cookie as it stands."""
    value = client.cookies.get(session.COOKIE)
    assert value, "no session cookie"
    return value


def use_cookie(client: TestClient, value: str) -> None:
    """Make the client send ``value`` as its session cookie (an old one, kept by a thief)."""
    client.cookies.clear()
    client.cookies.set(session.COOKIE, value)


# argon2id at 1 MiB and one pass: a verification reads its parameters from the stored hash,
# so logins against these users are fast on a busy test machine (the server's own hasher,
# 64 MiB, makes every real hash).
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@cache
def cheap_hash(password: str) -> str:
    """A cheap argon2 hash of ``password`` (made once per test run)."""
    return CHEAP.hash(password)


def add_users(engine: Engine) -> None:
    """Users ``viewer-user``, ``analyst-user`` and ``admin-user`` with passwords
    ``<role>-password`` (cheap hashes: tests stay quick)."""
    with engine.begin() as conn:
        for role in Role:
            user_id = ensure_user(conn, f"{role.value}-user", role)
            conn.execute(update(users).where(users.c.id == user_id).values(
                password_hash=cheap_hash(f"{role.value}-password")))


def add_scoped_users(engine: Engine, scopes: list[tuple[str, str]] | None = None) -> None:
    """Users ``plant1-viewer``, ``plant1-analyst`` and ``plant1-admin`` (password
    ``plant1-password``) limited to ``scopes`` (default: the group plant1)."""
    with engine.begin() as conn:
        for role in Role:
            user_id = ensure_user(conn, f"plant1-{role.value}", role)
            conn.execute(update(users).where(users.c.id == user_id).values(
                password_hash=cheap_hash("plant1-password")))
            set_scopes(conn, user_id, scopes or [("group", "plant1")])


@contextmanager
def role_client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A client of the app on ``engine`` (redirects not followed), with the tests' session
    secret and one user per role (:func:`add_users`)."""
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", SECRET)
    add_users(engine)
    with TestClient(create_app(engine), follow_redirects=False) as client:
        yield client
