"""LDAP sign-in (issue 18) against a real OpenLDAP (Debian slapd, tests/slapd.py) over
LDAPS and StartTLS with a test CA, through the dashboard's one login form, on SQLite and
PostgreSQL.

The test directory: alice in plant1-team, bob in plant1-night-shift (a member group of
plant1-team), carol in auditors, dave in no group; the directory map below grants
plant1-team analyst on asset group plant1, and auditors (named by DN) viewer everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from ldap3.utils.log import EXTENDED, set_library_log_detail_level
from sqlalchemy import Engine, select, update

from patchpilot.automation.secrets import key_of, set_secret
from patchpilot.config import load_settings
from patchpilot.db.tables import login_throttle, users
from patchpilot.errors import ConfigError
from patchpilot.server import ldap
from patchpilot.server.security import AuthError, StoredPassword, scopes_of, verify_password
from tests.builders.sessions import add_users, cheap_hash, page_csrf, role_client
from tests.slapd import (
    SERVICE_DN,
    SERVICE_PASSWORD,
    LdapServer,
    free_port,
    make_ca,
    password_of,
)

PEOPLE = "ou=people,dc=example,dc=org"
GROUPS = "ou=groups,dc=example,dc=org"
MAP = f"""\
- match: plant1-team
  role: analyst
  groups: [plant1]
- match: cn=auditors,{GROUPS}
  role: viewer
"""
BIND_VARIABLE = "PP_TEST_LDAP_BIND_PASSWORD"


def _configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slapd: LdapServer, *,
               url: str | None = None, ca_file: Path | None = None) -> None:
    (tmp_path / "directory-map.yaml").write_text(MAP)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATCHPILOT_DIRECTORY_MAP", str(tmp_path / "directory-map.yaml"))
    monkeypatch.setenv("PATCHPILOT_LDAP_URL", url or slapd.ldaps_url)
    monkeypatch.setenv("PATCHPILOT_LDAP_STARTTLS",
                       "true" if (url or "").startswith("ldap://") else "false")
    monkeypatch.setenv("PATCHPILOT_LDAP_CA_FILE", str(ca_file or slapd.ca_file))
    monkeypatch.setenv("PATCHPILOT_LDAP_BIND_DN", SERVICE_DN)
    monkeypatch.setenv("PATCHPILOT_LDAP_BIND_PASSWORD_ENV", BIND_VARIABLE)
    monkeypatch.setenv(BIND_VARIABLE, SERVICE_PASSWORD)
    monkeypatch.setenv("PATCHPILOT_LDAP_USER_BASE", PEOPLE)
    monkeypatch.setenv("PATCHPILOT_LDAP_GROUP_BASE", GROUPS)


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
           slapd: LdapServer) -> Iterator[TestClient]:
    """The app on ``engine`` with LDAP sign-in against ``slapd`` over LDAPS, and the local
    users of ``add_users`` (``admin-user`` / ``admin-password``, …)."""
    _configure(monkeypatch, tmp_path, slapd)
    with role_client(engine, monkeypatch) as c:
        yield c


def _login(client: TestClient, name: str, password: str) -> httpx.Response:
    csrf = page_csrf(client.get("/login").text)
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf": csrf, "next": "/overview"})


def _user(engine: Engine, name: str) -> tuple[str, str | None, str] | None:
    """(source, external_id, role) of user ``name``."""
    with engine.connect() as conn:
        row = conn.execute(select(users.c.source, users.c.external_id, users.c.role)
                           .where(users.c.name == name)).first()
    return None if row is None else (row.source, row.external_id, row.role)


def _scopes(engine: Engine, name: str) -> tuple[tuple[str, str], ...]:
    with engine.connect() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.name == name)).scalar_one()
        return scopes_of(conn, user_id)


def _failures(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        found = conn.execute(select(login_throttle.c.failures)
                             .where(login_throttle.c.key == f"user:{name}")).scalar()
    return int(found or 0)


def test_a_plant1_team_member_signs_in_as_analyst_of_plant1(client: TestClient,
                                                            engine: Engine) -> None:
    answer = _login(client, "alice", password_of("alice"))
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/overview"
    assert _user(engine, "alice") == ("ldap", f"uid=alice,{PEOPLE}", "analyst")
    assert _scopes(engine, "alice") == (("group", "plant1"),)
    assert client.get("/overview").status_code == 200


def test_nested_group_membership_counts(client: TestClient, engine: Engine) -> None:
    # bob is in plant1-night-shift only, which is a member of plant1-team.
    assert _login(client, "bob", password_of("bob")).status_code == 303
    assert _user(engine, "bob") == ("ldap", f"uid=bob,{PEOPLE}", "analyst")
    assert _scopes(engine, "bob") == (("group", "plant1"),)


def test_an_auditor_signs_in_over_starttls_as_viewer_of_everything(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        slapd: LdapServer) -> None:
    _configure(monkeypatch, tmp_path, slapd, url=slapd.ldap_url)
    with role_client(engine, monkeypatch) as client:
        assert _login(client, "carol", password_of("carol")).status_code == 303
    assert _user(engine, "carol") == ("ldap", f"uid=carol,{PEOPLE}", "viewer")
    assert _scopes(engine, "carol") == ()


def test_a_wrong_password_is_refused_and_counted(client: TestClient, engine: Engine) -> None:
    answer = _login(client, "carol", "carol-pw-2")
    assert answer.status_code == 401
    assert "Wrong user name or password." in answer.text
    assert _user(engine, "carol") is None
    assert _failures(engine, "carol") == 1


def test_an_empty_password_is_refused_not_sent_as_an_unauthenticated_bind(
        client: TestClient, engine: Engine, slapd: LdapServer) -> None:
    # RFC 4513 5.1.2: a DN with an empty password is an unauthenticated bind, which some
    # servers answer "success"; it must never reach the directory.
    binds = slapd.log.read_text(errors="replace").count(f'BIND dn="uid=carol,{PEOPLE}"')
    assert _login(client, "carol", "").status_code == 401
    assert _user(engine, "carol") is None
    assert slapd.log.read_text(errors="replace").count(
        f'BIND dn="uid=carol,{PEOPLE}"') == binds


def test_an_unknown_user_is_refused(client: TestClient, engine: Engine) -> None:
    answer = _login(client, "mallory", "mallory-pw-1")
    assert answer.status_code == 401
    assert "Wrong user name or password." in answer.text
    assert _user(engine, "mallory") is None


def test_a_user_in_no_mapped_group_is_refused_with_the_reason(client: TestClient,
                                                               engine: Engine) -> None:
    answer = _login(client, "dave", password_of("dave"))
    assert answer.status_code == 403
    assert "dave: none of your directory groups is allowed to use PatchPilot" in answer.text
    assert _user(engine, "dave") is None


def test_the_typed_name_is_escaped_in_the_search_filter(client: TestClient) -> None:
    # Unescaped, "sta*" would find the entry uid=star* and bind with its password.
    assert _login(client, "sta*", password_of("star*")).status_code == 401
    # Escaped, the real "star*" is found (and refused only for having no mapped group).
    assert _login(client, "star*", password_of("star*")).status_code == 403


def test_filters_escape_per_rfc_4515() -> None:
    assert ldap.user_filter("(sAMAccountName={username})", "a)(cn=*") == \
        r"(sAMAccountName=a\29\28cn=\2a)"
    assert ldap.member_filter([f"uid=alice,{PEOPLE}", r"cn=a\,b,ou=g"]) == (
        f"(|(member=uid=alice,{PEOPLE})(uniqueMember=uid=alice,{PEOPLE})"
        r"(member=cn=a\5c,b,ou=g)(uniqueMember=cn=a\5c,b,ou=g))")
    assert ldap.in_chain_filter("CN=Bob,OU=Staff,DC=corp") == \
        "(member:1.2.840.113556.1.4.1941:=CN=Bob,OU=Staff,DC=corp)"


def test_authenticate_reads_direct_and_nested_groups_by_dn_and_cn(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slapd: LdapServer) -> None:
    _configure(monkeypatch, tmp_path, slapd)
    config = ldap.config_of(load_settings(), SERVICE_PASSWORD)
    found = ldap.authenticate(config, "bob", password_of("bob"))
    assert found == ldap.DirectoryUser(f"uid=bob,{PEOPLE}", "bob", (
        f"cn=plant1-night-shift,{GROUPS}", f"cn=plant1-team,{GROUPS}",
        "plant1-night-shift", "plant1-team"))
    assert ldap.authenticate(config, "dave", password_of("dave")).memberships == ()
    monkeypatch.setenv("PATCHPILOT_LDAP_CA_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="PATCHPILOT_LDAP_CA_FILE: .*missing.pem is not a file"):
        ldap.config_of(load_settings(), SERVICE_PASSWORD)


def test_a_directory_that_is_down_gives_a_clear_error_and_no_local_fallback(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        slapd: LdapServer) -> None:
    # carol signed in once (an LDAP user), then an administrator set a local password.
    _configure(monkeypatch, tmp_path, slapd)
    with role_client(engine, monkeypatch) as client:
        assert _login(client, "carol", password_of("carol")).status_code == 303
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.name == "carol")
                     .values(password_hash=cheap_hash("carol-local-1")))
    dead = f"ldaps://localhost:{free_port()}"
    _configure(monkeypatch, tmp_path, slapd, url=dead)
    with role_client(engine, monkeypatch) as client:
        for password in (password_of("carol"), "carol-local-1"):
            answer = _login(client, "carol", password)
            assert answer.status_code == 503
            assert f"The directory at {dead} did not answer" in answer.text
            assert client.get("/overview").status_code == 303  # no session
        assert _failures(engine, "carol") == 0  # nothing was judged
        # The break-glass admin (a local user) still signs in.
        assert _login(client, "admin-user", "admin-password").status_code == 303


def test_an_ldap_user_cannot_use_a_local_password(client: TestClient, engine: Engine) -> None:
    assert _login(client, "carol", password_of("carol")).status_code == 303
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.name == "carol")
                     .values(password_hash=cheap_hash("carol-local-1")))
    client.cookies.clear()
    assert _login(client, "carol", "carol-local-1").status_code == 401
    stored = StoredPassword(1, "carol", "viewer", cheap_hash("carol-local-1"), False, "ldap")
    with pytest.raises(AuthError):
        verify_password(stored, "carol-local-1")


def test_local_users_sign_in_with_their_password_while_ldap_is_configured(
        client: TestClient, engine: Engine) -> None:
    assert _login(client, "analyst-user", "analyst-password").status_code == 303
    assert _user(engine, "analyst-user") == ("local", None, "analyst")


@pytest.mark.parametrize("starttls", [False, True])
def test_a_certificate_from_another_ca_is_refused(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slapd: LdapServer,
        starttls: bool) -> None:
    other, _, _ = make_ca(tmp_path, "other-ca")
    _configure(monkeypatch, tmp_path, slapd,
               url=slapd.ldap_url if starttls else slapd.ldaps_url, ca_file=other)
    with role_client(engine, monkeypatch) as client:
        answer = _login(client, "carol", password_of("carol"))
    assert answer.status_code == 503
    assert "presented a certificate that is not trusted" in answer.text
    assert _user(engine, "carol") is None


def test_a_host_name_the_certificate_does_not_name_is_refused(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slapd: LdapServer) -> None:
    # The certificate names localhost only; 127.0.0.1 reaches the same slapd.
    _configure(monkeypatch, tmp_path, slapd, url=f"ldaps://127.0.0.1:{slapd.tls_port}")
    config = ldap.config_of(load_settings(), SERVICE_PASSWORD)
    with pytest.raises(ldap.DirectoryUnavailable, match="not trusted"):
        ldap.authenticate(config, "carol", password_of("carol"))


def test_passwords_never_reach_the_logs(engine: Engine, monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path, slapd: LdapServer,
                                        caplog: pytest.LogCaptureFixture) -> None:
    # ldap3's own log at its most detailed level, and every logger at DEBUG.
    set_library_log_detail_level(EXTENDED)
    caplog.set_level(logging.DEBUG)
    try:
        _configure(monkeypatch, tmp_path, slapd)
        with role_client(engine, monkeypatch) as client:
            bodies = [_login(client, "carol", password_of("carol")).text]
            client.cookies.clear()
            bodies.append(_login(client, "dave", password_of("dave")).text)
            bodies.append(_login(client, "bob", "bob-wrong-pw").text)
        _configure(monkeypatch, tmp_path, slapd, url=f"ldaps://localhost:{free_port()}")
        with role_client(engine, monkeypatch) as client:
            bodies.append(_login(client, "carol", password_of("carol")).text)
    finally:
        set_library_log_detail_level(0)
    assert "ldap3" in caplog.text  # ldap3 did log (its operations, without secrets)
    seen = caplog.text + "".join(bodies) + slapd.log.read_text(errors="replace")
    for secret in (SERVICE_PASSWORD, password_of("carol"), password_of("dave"),
                   "bob-wrong-pw"):
        assert secret not in seen
    assert SERVICE_PASSWORD not in repr(ldap.config_of(load_settings(), SERVICE_PASSWORD))


def test_the_bind_password_comes_from_the_secrets_store(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        slapd: LdapServer) -> None:
    _configure(monkeypatch, tmp_path, slapd)
    monkeypatch.delenv("PATCHPILOT_LDAP_BIND_PASSWORD_ENV")
    monkeypatch.setenv("PATCHPILOT_LDAP_BIND_PASSWORD_SECRET", "ldap-bind")
    monkeypatch.setenv("PATCHPILOT_SECRETS_KEY", "k" * 32)
    with engine.begin() as conn:
        set_secret(conn, "admin", "ldap-bind", SERVICE_PASSWORD, key_of(load_settings()))
    add_users(engine)
    with role_client(engine, monkeypatch) as client:
        assert _login(client, "carol", password_of("carol")).status_code == 303
    assert ldap.bind_password(load_settings(), engine) == SERVICE_PASSWORD
