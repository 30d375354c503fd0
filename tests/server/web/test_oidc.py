"""OpenID Connect sign-in through the app against a real provider on loopback.

The app (TestClient) sends the "browser" to tests/oidc_provider.py; the test follows that
redirect with httpx to the provider (a real HTTP server), which approves the test user and
redirects back with a code; the app redeems it over HTTP and checks the ID token.  Each
broken answer (state, nonce, expiry, audience, signature, no matching group) is refused on
the login page with its reason and opens no session.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import RSAKey
from sqlalchemy import Engine, func, select

from patchpilot.automation.secrets import key_of, set_secret
from patchpilot.config import load_settings
from patchpilot.db.tables import audit_log, users
from patchpilot.server.security import scopes_of
from patchpilot.server.web import session
from tests.builders.sessions import page_csrf, role_client
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, IdpUser, Provider, ProviderServer

DIRECTORY_MAP = """\
- match: plant1-team
  role: analyst
- match: auditors
  role: viewer
"""


@pytest.fixture
def provider() -> Iterator[Provider]:
    with ProviderServer(IdpUser("u-1", "alice", ["plant1-team", "cafeteria"])) as p:
        yield p


@pytest.fixture
def client(engine: Engine, provider: Provider, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    (tmp_path / "directory.yaml").write_text(DIRECTORY_MAP)
    monkeypatch.setenv("PATCHPILOT_DIRECTORY_MAP", str(tmp_path / "directory.yaml"))
    monkeypatch.setenv("PATCHPILOT_OIDC_ISSUER", provider.url)
    monkeypatch.setenv("PATCHPILOT_OIDC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("PATCHPILOT_OIDC_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("PATCHPILOT_OIDC_NAME", "Test IdP")
    with role_client(engine, monkeypatch) as c:
        yield c


def through_provider(client: TestClient, provider: Provider,
                     state: str | None = None) -> httpx.Response:
    """Start at /auth/oidc/login, let the provider approve, come back to the callback
    (with ``state`` in place of the provider's, to forge an answer)."""
    start = client.get("/auth/oidc/login?next=/findings")
    assert start.status_code == 303
    authorize = start.headers["location"]
    assert authorize.startswith(provider.url + "/authorize?")
    asked = parse_qs(urlsplit(authorize).query)
    assert (asked["code_challenge_method"], asked["client_id"], asked["redirect_uri"]) == (
        ["S256"], [CLIENT_ID], ["http://testserver/auth/oidc/callback"])
    back = httpx.get(authorize, follow_redirects=False)
    assert back.status_code == 302
    callback = back.headers["location"]
    if state is not None:
        callback = callback.split("&state=")[0] + f"&state={state}"
    return client.get(callback)


def oidc_users(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [(r.name, r.role, r.external_id) for r in conn.execute(
            select(users.c.name, users.c.role, users.c.external_id)
            .where(users.c.source == "oidc"))]


def test_login_page_offers_the_provider(client: TestClient) -> None:
    page = client.get("/login?next=/plan").text
    assert ('<a id="oidc-sign-in" class="button" href="/auth/oidc/login?next=/plan">'
            "Sign in with Test IdP</a>") in page


def test_code_flow_signs_in_a_directory_user(client: TestClient, provider: Provider,
                                            engine: Engine) -> None:
    answer = through_provider(client, provider)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/findings"  # the next the login was asked for
    assert "alice (analyst)" in client.get("/overview").text
    assert oidc_users(engine) == [("alice", "analyst", f"{provider.url} u-1")]
    with engine.connect() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.name == "alice")).scalar_one()
        assert scopes_of(conn, user_id) == ()  # an unscoped rule: the whole estate
        assert conn.execute(select(audit_log.c.action)).scalars().all() == [
            "user.directory_create"]
    # The code was redeemed with the PKCE verifier (the provider checked it) and the
    # pending-sign-in cookie is gone: its state cannot be used twice.
    [redeemed] = provider.token_requests
    assert sorted(redeemed) == ["code", "code_verifier", "grant_type", "redirect_uri"]
    assert len(redeemed["code_verifier"]) >= 43
    assert "pp_oidc=" in answer.headers["set-cookie"] and 'pp_oidc=""' in answer.headers[
        "set-cookie"]
    # A second sign-in finds the same user (issuer + subject), no second row.
    client.cookies.clear()
    assert through_provider(client, provider).status_code == 303
    assert oidc_users(engine) == [("alice", "analyst", f"{provider.url} u-1")]


def test_the_client_secret_is_never_logged(client: TestClient, provider: Provider,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert through_provider(client, provider).status_code == 303
    assert caplog.records  # httpx did log its requests
    assert CLIENT_SECRET not in caplog.text
    assert CLIENT_SECRET not in repr(load_settings())


def _refused(answer: httpx.Response, client: TestClient, engine: Engine, reason: str) -> None:
    assert answer.status_code == 401
    assert ("Sign-in through Test IdP was refused: " + reason) in answer.text.replace(
        "&#39;", "'").replace("&#34;", '"').replace("&quot;", '"')
    assert client.get("/overview", follow_redirects=False).headers["location"].startswith(
        "/login")
    assert oidc_users(engine) == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar() == 0


@pytest.mark.parametrize(("tamper", "reason"), [
    ({"nonce": "replayed-nonce"},
     "the ID token is not valid: invalid_claim: Invalid claim: 'nonce'"),
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
     "the ID token is not valid: expired_token: The token is expired"),
    ({"aud": "another-client"}, "the ID token is not valid: invalid_claim: Invalid claim: 'aud'"),
    ({"iss": "https://evil.example"},
     "the ID token is not valid: invalid_claim: Invalid claim: 'iss'"),
    ({"key": RSAKey.generate_key(2048)}, "the ID token's signature is not valid ("),
], ids=["wrong-nonce", "expired", "wrong-audience", "wrong-issuer", "bad-signature"])
def test_a_broken_id_token_is_refused(client: TestClient, provider: Provider, engine: Engine,
                                      tamper: dict[str, Any], reason: str) -> None:
    provider.tamper = tamper
    _refused(through_provider(client, provider), client, engine, reason)


def test_a_forged_state_is_refused(client: TestClient, provider: Provider,
                                   engine: Engine) -> None:
    answer = through_provider(client, provider, state="forged-state")
    _refused(answer, client, engine, "the answer's state does not match the sign-in this "
             "browser started: start again from the login page")
    assert provider.token_requests == []  # the code was never even redeemed


def test_a_callback_without_a_started_sign_in_is_refused(client: TestClient,
                                                         engine: Engine) -> None:
    answer = client.get("/auth/oidc/callback?code=abc&state=xyz")
    _refused(answer, client, engine, "no sign-in is under way in this browser")


def test_a_user_no_rule_grants_is_refused(client: TestClient, provider: Provider,
                                          engine: Engine) -> None:
    provider.user = IdpUser("u-2", "mallory", ["visitors"])
    _refused(through_provider(client, provider), client, engine,
             "mallory: none of your directory groups is allowed to use PatchPilot")


def test_an_auditor_reads_and_changes_nothing(client: TestClient, provider: Provider,
                                              engine: Engine) -> None:
    provider.user = IdpUser("u-3", "carol", ["auditors"], email="carol@example.com")
    assert through_provider(client, provider).status_code == 303
    overview = client.get("/overview").text
    assert "carol (viewer)" in overview
    csrf = page_csrf(overview)
    assert client.post("/sweeps", data={"vuln": "CVE-2024-3094",
                                        "csrf": csrf}).status_code == 403
    assert client.post("/schedules", data={"group": "plant1", "kind": "cron",
                                           "expression": "0 2 * * 6", "timezone": "UTC",
                                           "csrf": csrf}).status_code == 403
    assert oidc_users(engine) == [("carol", "viewer", f"{provider.url} u-3")]


def test_logout_ends_the_session_and_the_providers(client: TestClient, provider: Provider,
                                                  engine: Engine) -> None:
    through_provider(client, provider)
    csrf = page_csrf(client.get("/overview").text)
    answer = client.post("/logout", data={"csrf": csrf})
    # A page that moves on to the provider (the CSP forbids a form's redirect off-site).
    assert answer.status_code == 200
    found = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', answer.text)
    assert found
    location = unescape(found.group(1))
    assert f'<a id="provider-logout" href="{found.group(1)}">Continue to Test IdP</a>' in (
        answer.text)
    assert location.startswith(provider.url + "/logout?")
    assert parse_qs(urlsplit(location).query) == {
        "client_id": [CLIENT_ID], "post_logout_redirect_uri": ["http://testserver/login"]}
    assert client.get("/overview", follow_redirects=False).status_code == 303
    # A local user's logout stays on PatchPilot's login page.
    client.cookies.clear()
    token = page_csrf(client.get("/login").text)
    client.post("/login", data={"username": "viewer-user", "password": "viewer-password",
                                "csrf": token})
    csrf = page_csrf(client.get("/overview").text)
    assert client.post("/logout", data={"csrf": csrf}).headers["location"] == "/login"
    assert session.COOKIE not in client.cookies


def test_the_client_secret_may_be_a_stored_secret(engine: Engine, provider: Provider,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "directory.yaml").write_text(DIRECTORY_MAP)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path))
    monkeypatch.setenv("PATCHPILOT_DIRECTORY_MAP", str(tmp_path / "directory.yaml"))
    monkeypatch.setenv("PATCHPILOT_OIDC_ISSUER", provider.url)
    monkeypatch.setenv("PATCHPILOT_OIDC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("PATCHPILOT_OIDC_CLIENT_SECRET_NAME", "oidc-client")
    monkeypatch.setenv("PATCHPILOT_OIDC_NAME", "Test IdP")
    with role_client(engine, monkeypatch) as client:
        # Not stored yet: refused, saying which setting names what.
        _refused(through_provider(client, provider), client, engine,
                 "PATCHPILOT_OIDC_CLIENT_SECRET_NAME: no secret named 'oidc-client'")
        with engine.begin() as conn:
            set_secret(conn, "admin", "oidc-client", CLIENT_SECRET, key_of(load_settings()))
        assert through_provider(client, provider).status_code == 303
        assert "alice (analyst)" in client.get("/overview").text
