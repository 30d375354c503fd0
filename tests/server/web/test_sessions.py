"""Dashboard sessions live in ``web_sessions``: logout, token revocation, disabling a user
and changing their role end them at once (issue 10, item 6); a session opened with a token
acts with the token's role (item 2).

Before the fix the cookie named the user only: logout deleted the cookie but a copy of it
kept working for 12 hours, and a session opened with a token outlived the token.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from patchpilot.db.tables import users, web_sessions
from patchpilot.server.app import create_app
from patchpilot.server.security import (
    Role,
    create_api_token,
    revoke_api_token,
    set_password,
    set_user_disabled,
    set_user_role,
)
from tests.builders.sessions import SECRET, add_users, cookie, sign_in, use_cookie

TRIAGE = {"decision": "false_positive", "reason": "no such finding", "scope": "asset"}


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", SECRET)
    add_users(engine)
    with TestClient(create_app(engine), follow_redirects=False) as c:
        yield c


def _rows(engine: Engine) -> list[tuple[str, str, str, bool]]:
    """(user, role, user_role, ended) of every session, oldest first."""
    with engine.connect() as conn:
        found = conn.execute(
            select(users.c.name, web_sessions.c.role, web_sessions.c.user_role,
                   web_sessions.c.ended_at)
            .join(users, users.c.id == web_sessions.c.user_id)
            .order_by(web_sessions.c.id)).all()
    return [(r.name, r.role, r.user_role, r.ended_at is not None) for r in found]


def _signed_out(client: TestClient) -> bool:
    answer = client.get("/overview")
    return answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_logout_ends_the_session_server_side(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "viewer-user", "viewer-password")
    kept = cookie(client)
    assert client.get("/overview").status_code == 200
    assert _rows(engine) == [("viewer-user", "viewer", "viewer", False)]
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    use_cookie(client, kept)  # a copy of the cookie taken before logout
    assert _signed_out(client)
    assert _rows(engine) == [("viewer-user", "viewer", "viewer", True)]


def test_csrf_token_lives_in_the_row_and_is_new_at_sign_in(client: TestClient,
                                                         engine: Engine) -> None:
    before = client.get("/login")
    pre_login = before.text.split('name="csrf" value="')[1].split('"')[0]
    csrf = sign_in(client, "analyst-user", "analyst-password")
    with engine.connect() as conn:
        stored = conn.execute(select(web_sessions.c.csrf)).scalar_one()
    assert csrf == stored != pre_login
    # The pre-login token does not pass a form of the session.
    refused = client.post("/findings/999/triage", data={**TRIAGE, "csrf": pre_login})
    assert refused.status_code == 403


def test_revoking_the_token_ends_its_session(client: TestClient, engine: Engine) -> None:
    token, token_id = create_api_token(engine, user="analyst-user", role=Role.ANALYST)
    csrf = sign_in(client, "", token)
    kept = cookie(client)
    # The session may triage: past authentication and CSRF to "no such finding".
    assert client.post("/findings/999/triage", data={**TRIAGE, "csrf": csrf}).status_code == 404
    with engine.begin() as conn:
        assert revoke_api_token(conn, token_id) is True
    use_cookie(client, kept)
    answer = client.post("/findings/999/triage", data={**TRIAGE, "csrf": csrf})
    assert (answer.status_code, answer.headers["location"]) == (
        303, "/login?next=/findings/999/triage")
    assert _rows(engine) == [("analyst-user", "analyst", "analyst", True)]


def test_revoking_through_the_api_ends_the_session(client: TestClient, engine: Engine) -> None:
    admin, _ = create_api_token(engine, user="admin-user", role=Role.ADMIN)
    token, token_id = create_api_token(engine, user="analyst-user", role=Role.ANALYST,
                                       name="browser")
    sign_in(client, "", token)
    kept = cookie(client)
    gone = client.delete(f"/api/tokens/{token_id}",
                         headers={"Authorization": f"Bearer {admin}"})
    assert gone.status_code == 204
    use_cookie(client, kept)
    assert _signed_out(client)


def test_a_token_session_acts_with_the_tokens_role(client: TestClient, engine: Engine) -> None:
    token, _ = create_api_token(engine, user="admin-user", role=Role.VIEWER)
    csrf = sign_in(client, "", token)
    assert "admin-user (viewer)" in client.get("/overview").text
    assert client.post("/findings/999/triage", data={**TRIAGE, "csrf": csrf}).status_code == 403
    assert client.get("/schedules").status_code == 200
    assert _rows(engine) == [("admin-user", "viewer", "admin", False)]


def test_role_change_ends_sessions(client: TestClient, engine: Engine) -> None:
    sign_in(client, "analyst-user", "analyst-password")
    with engine.begin() as conn:
        set_user_role(conn, "analyst-user", Role.VIEWER)
    assert _signed_out(client)
    assert _rows(engine) == [("analyst-user", "analyst", "analyst", True)]
    # Even back at the old role, the session stays ended.
    with engine.begin() as conn:
        set_user_role(conn, "analyst-user", Role.ANALYST)
    assert _signed_out(client)


def test_a_role_changed_behind_the_servers_back_ends_the_session(client: TestClient,
                                                                engine: Engine) -> None:
    # A direct UPDATE (no end_sessions): the per-request check of user_role still holds.
    sign_in(client, "admin-user", "admin-password")
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.name == "admin-user").values(role="viewer"))
    assert _signed_out(client)
    assert _rows(engine) == [("admin-user", "admin", "admin", False)]


def test_disabling_a_user_ends_sessions(client: TestClient, engine: Engine) -> None:
    sign_in(client, "viewer-user", "viewer-password")
    with engine.begin() as conn:
        set_user_disabled(conn, "viewer-user", True)
    assert _signed_out(client)
    with engine.begin() as conn:
        set_user_disabled(conn, "viewer-user", False)
    assert _signed_out(client)  # enabling again does not revive the old session
    assert _rows(engine) == [("viewer-user", "viewer", "viewer", True)]
    sign_in(client, "viewer-user", "viewer-password")
    assert client.get("/overview").status_code == 200


def test_password_reset_ends_sessions(client: TestClient, engine: Engine) -> None:
    sign_in(client, "viewer-user", "viewer-password")
    set_password(engine, "viewer-user", Role.VIEWER, "a-new-password")
    assert _signed_out(client)


def test_a_forged_session_id_opens_nothing(client: TestClient) -> None:
    from itsdangerous import URLSafeTimedSerializer

    forged = URLSafeTimedSerializer(SECRET, salt="patchpilot-session").dumps({"s": "guess"})
    use_cookie(client, forged)
    assert _signed_out(client)
