"""The CLI's token and user commands: a token's role is never above its user's (issue 10,
item 2), and revoking a token, disabling a user or changing their role ends their
dashboard sessions (item 6)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.clock import now_utc
from patchpilot.db import connect
from patchpilot.db.tables import api_tokens, audit_log, users, web_sessions

runner = CliRunner()


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> Callable[..., Any]:
    """Run ``patchpilot …`` against an empty database; returns the runner."""
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))

    def run(*args: str, code: int = 0):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result

    return run


def _session(url: str, user: str, token_id: int | None = None) -> int:
    """An open dashboard session of ``user`` (a row as the login page writes it)."""
    engine = connect(url)
    now = now_utc()
    with engine.begin() as conn:
        user_id, role = conn.execute(select(users.c.id, users.c.role)
                                     .where(users.c.name == user)).one()
        sid = conn.execute(insert(web_sessions).values(
            session_hash=secrets.token_hex(32), user_id=user_id,
            token_id=token_id, role=role, user_role=role, csrf="x", created_at=now,
            expires_at=now + timedelta(hours=1)).returning(web_sessions.c.id)).scalar_one()
    engine.dispose()
    return int(sid)


def _ended(url: str) -> dict[int, bool]:
    engine = connect(url)
    with engine.connect() as conn:
        rows = conn.execute(select(web_sessions.c.id, web_sessions.c.ended_at)).all()
    engine.dispose()
    return {r.id: r.ended_at is not None for r in rows}


def test_token_create_refuses_a_role_above_the_users(cli, database_url: str) -> None:  # type: ignore[no-untyped-def]
    cli("token", "create", "--user", "mori", "--role", "viewer")
    refused = cli("token", "create", "--user", "mori", "--role", "admin", code=2)
    assert "user 'mori' is viewer: a token for them cannot be admin" in refused.output
    # The default (a viewer token of "admin"): an existing admin keeps being an admin.
    cli("token", "create", "--user", "admin", "--role", "admin")
    cli("token", "create")
    engine = connect(database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(users.c.name, users.c.role, api_tokens.c.role)
                            .join(api_tokens, api_tokens.c.user_id == users.c.id)
                            .order_by(api_tokens.c.id)).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("mori", "viewer", "viewer"),
                                        ("admin", "admin", "admin"),
                                        ("admin", "admin", "viewer")]


def test_token_revoke_ends_the_sessions_it_opened(cli, database_url: str) -> None:  # type: ignore[no-untyped-def]
    made = cli("token", "create", "--user", "ana", "--role", "analyst")
    token_id = int(made.output.split()[1])
    by_token = _session(database_url, "ana", token_id)
    by_password = _session(database_url, "ana")
    assert "token 1 revoked" in cli("token", "revoke", str(token_id)).output
    assert _ended(database_url) == {by_token: True, by_password: False}
    assert "no active token 1" in cli("token", "revoke", str(token_id), code=2).output


def test_user_role_and_disable_end_sessions(cli, database_url: str) -> None:  # type: ignore[no-untyped-def]
    cli("token", "create", "--user", "ana", "--role", "analyst")
    first = _session(database_url, "ana")
    cli("user", "role", "ana", "viewer")
    second = _session(database_url, "ana")
    cli("user", "disable", "ana")
    assert _ended(database_url) == {first: True, second: True}
    cli("user", "enable", "ana")
    assert "no user named 'nobody'" in cli("user", "disable", "nobody", code=2).output
    engine = connect(database_url)
    with engine.connect() as conn:
        actions = conn.execute(select(audit_log.c.action, audit_log.c.target,
                                      audit_log.c.detail).order_by(audit_log.c.id)).all()
        state = conn.execute(select(users.c.role, users.c.disabled)
                             .where(users.c.name == "ana")).one()
    engine.dispose()
    # One action for every change of a user, naming what changed from what to what.
    assert [(a.action, a.target, orjson.loads(a.detail)) for a in actions] == [
        ("user.update", "ana", {"source": "local",
                                "role": {"from": "analyst", "to": "viewer"}}),
        ("user.update", "ana", {"source": "local", "disabled": {"from": False, "to": True}}),
        ("user.update", "ana", {"source": "local", "disabled": {"from": True, "to": False}})]
    assert tuple(state) == ("viewer", False)
