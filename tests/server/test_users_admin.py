"""An admin manages users (issue 18): ``/api/users``, ``patchpilot user list|set`` and the
``/users`` page list every user with source, role and scopes, and change a local user's
role, scopes and state -- audited with from and to, ending the user's sessions, narrowing
their tokens at once.  A directory user's role and scopes are the directory map's: a
change is refused, saying so; disabling them works.  A scope must name a group or service
that exists; the last admin of the whole estate cannot be demoted."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from html import unescape
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from patchpilot.assets.groups import create_group, group_id_named
from patchpilot.cli import app as cli_app
from patchpilot.db.tables import audit_log, web_sessions
from patchpilot.scans.groups import add_ssh_target
from patchpilot.server.directory import DirectoryMap, sign_in_directory_user
from patchpilot.server.security import AuthError, Role, authenticate, create_api_token
from tests.builders.sessions import add_scoped_users, role_client, sign_in

MAP = DirectoryMap.parse([{"match": "auditors", "role": "viewer"},
                          {"match": "patchers", "role": "analyst"}], "test map")
ISSUER = "https://login.example.jp"


def _directory_sign_in(engine: Engine, source: str, name: str, group: str) -> Any:
    with engine.begin() as conn:
        return sign_in_directory_user(conn, source=source, external_id=f"{ISSUER}|{name}",
                                      name=name, memberships=[group], directory_map=MAP)


@pytest.fixture
def estate(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Groups plant1 and plant2 (one SSH host each), the service payroll (plant1's host),
    the role users of ``add_users``, an OIDC auditor and an LDAP analyst, tokens; a
    client of the app (redirects not followed)."""
    with role_client(engine, monkeypatch) as client:
        with engine.begin() as conn:
            for group in ("plant1", "plant2"):
                create_group(conn, "test", group)
                add_ssh_target(conn, "test", f"scan@{group}-db.example.jp",
                               group_id=group_id_named(conn, group), name=f"{group}-db")
        tokens = {role.value: create_api_token(engine, user=f"{role.value}-user",
                                               role=role)[0] for role in Role}
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        hosts = client.get("/api/assets", headers=admin).json()
        plant1_db = next(a["id"] for a in hosts if a["name"] == "plant1-db")
        answer = client.put(f"/api/assets/{plant1_db}/context", headers=admin,
                            json={"service": "payroll"})
        assert answer.status_code == 200, answer.text
        _directory_sign_in(engine, "oidc", "aiko", "auditors")
        _directory_sign_in(engine, "ldap", "ken", "patchers")
        yield {"client": client, "tokens": tokens, "admin": admin}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _audit(engine: Engine, action: str = "user.update") -> list[tuple[str, str, Any]]:
    with engine.connect() as conn:
        return [(r.actor, r.target, orjson.loads(r.detail)) for r in conn.execute(
            select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id))]


def test_the_list_shows_sources_roles_scopes_and_tokens(estate: dict[str, Any],
                                                        engine: Engine) -> None:
    client = estate["client"]
    sign_in(client, "viewer-user", "viewer-password")  # a recorded sign-in
    answer = client.get("/api/users", headers=estate["admin"])
    assert answer.status_code == 200
    listed = [(u["name"], u["source"], u["role"], u["scopes"], u["disabled"], u["tokens"])
              for u in answer.json()]
    assert listed == [
        ("admin-user", "local", "admin", [], False, 1),
        ("aiko", "oidc", "viewer", [], False, 0),
        ("analyst-user", "local", "analyst", [], False, 1),
        ("ken", "ldap", "analyst", [], False, 0),
        ("viewer-user", "local", "viewer", [], False, 1)]
    seen = {u["name"]: u["last_sign_in"] for u in answer.json()}
    assert seen["viewer-user"] is not None and seen["admin-user"] is None
    one = client.get("/api/users/ken", headers=estate["admin"]).json()
    assert (one["name"], one["source"], one["role"]) == ("ken", "ldap", "analyst")
    missing = client.get("/api/users/nobody", headers=estate["admin"])
    assert (missing.status_code, missing.json()["detail"]) == (404, "no user named 'nobody'")


def test_new_scopes_narrow_the_users_tokens_and_end_their_sessions(
        estate: dict[str, Any], engine: Engine) -> None:
    client = estate["client"]
    sign_in(client, "analyst-user", "analyst-password")
    assert client.get("/overview").status_code == 200
    answer = client.patch("/api/users/analyst-user", headers=estate["admin"], json={
        "scopes": [{"kind": "service", "name": "payroll"}, {"kind": "group", "name": "plant1"}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["scopes"] == [{"kind": "group", "name": "plant1"},
                                       {"kind": "service", "name": "payroll"}]
    # The token acts with the new scopes at its next call ...
    with engine.begin() as conn:
        principal = authenticate(conn, estate["tokens"]["analyst"])
    assert principal.scopes == (("group", "plant1"), ("service", "payroll"))
    # (/api/assets narrows to the user's part of the estate once it is scope-aware, and
    # refuses them until then: never the whole estate.)
    seen = client.get("/api/assets", headers=_bearer(estate["tokens"]["analyst"]))
    if seen.status_code == 200:
        assert [a["name"] for a in seen.json()] == ["plant1-db"]
    else:
        assert (seen.status_code, seen.json()["detail"]) == (
            403, "not available to users limited to part of the estate (you see group "
                 "plant1, service payroll); ask an administrator")
    # ... and the dashboard session begun before is over.
    assert client.get("/overview").status_code == 303
    with engine.connect() as conn:
        assert all(r.ended_at is not None for r in conn.execute(select(web_sessions)))
    assert _audit(engine) == [("admin-user", "analyst-user", {
        "source": "local", "scopes": {"from": [],
                                      "to": [["group", "plant1"], ["service", "payroll"]]}})]
    # A role and the whole estate again, in one change and one audit row.
    answer = client.patch("/api/users/analyst-user", headers=estate["admin"],
                          json={"role": "viewer", "scopes": []})
    assert (answer.json()["role"], answer.json()["scopes"]) == ("viewer", [])
    assert _audit(engine)[-1][2] == {
        "source": "local", "role": {"from": "analyst", "to": "viewer"},
        "scopes": {"from": [["group", "plant1"], ["service", "payroll"]], "to": []}}
    # Nothing changed: no audit row.
    client.patch("/api/users/analyst-user", headers=estate["admin"], json={"role": "viewer"})
    assert len(_audit(engine)) == 2


def test_only_admins_of_the_whole_estate_manage_users(estate: dict[str, Any],
                                                      engine: Engine) -> None:
    client = estate["client"]
    for role in ("viewer", "analyst"):
        headers = _bearer(estate["tokens"][role])
        answer = client.get("/api/users", headers=headers)
        assert (answer.status_code, answer.json()["detail"]) == (
            403, f"requires the admin role; you are {role}")
        assert client.patch("/api/users/viewer-user", headers=headers,
                            json={"disabled": True}).status_code == 403
    add_scoped_users(engine)
    scoped = create_api_token(engine, user="plant1-admin", role=Role.ADMIN)[0]
    answer = client.patch("/api/users/viewer-user", headers=_bearer(scoped),
                          json={"scopes": []})
    assert answer.status_code == 403
    assert answer.json()["detail"].startswith("not available to users limited to part")
    assert _audit(engine) == []


def test_a_directory_users_role_and_scopes_are_the_directory_maps(estate: dict[str, Any],
                                                                   engine: Engine) -> None:
    client = estate["client"]
    for body in ({"role": "admin"}, {"scopes": [{"kind": "group", "name": "plant1"}]}):
        answer = client.patch("/api/users/aiko", headers=estate["admin"], json=body)
        assert answer.status_code == 409
        field = next(iter(body))
        assert answer.json()["detail"] == (
            f"aiko is an OIDC directory user: their role and scopes come from the directory "
            f"map (PATCHPILOT_DIRECTORY_MAP) at each sign-in, so a {field} change here would "
            "be undone at their next one; change their groups in the directory or the "
            "map's rules instead (disabling them works here)")
    # The same role as now is no change, and disabling works.
    answer = client.patch("/api/users/aiko", headers=estate["admin"],
                          json={"role": "viewer", "disabled": True})
    assert (answer.status_code, answer.json()["disabled"]) == (200, True)
    assert _audit(engine) == [("admin-user", "aiko", {
        "source": "oidc", "disabled": {"from": False, "to": True}})]
    with pytest.raises(AuthError, match="aiko: this account is disabled in PatchPilot"):
        _directory_sign_in(engine, "oidc", "aiko", "auditors")


def test_a_scope_must_name_a_group_or_service_that_exists(estate: dict[str, Any],
                                                          engine: Engine) -> None:
    client = estate["client"]
    for scopes, detail in (
            ([{"kind": "group", "name": "plant1"}, {"kind": "group", "name": "plant9"}],
             "scopes[1].name: no asset group is named 'plant9'"),
            ([{"kind": "service", "name": "billing"}],
             "scopes[0].name: no asset belongs to a business service named 'billing'")):
        answer = client.patch("/api/users/viewer-user", headers=estate["admin"],
                              json={"scopes": scopes, "role": "analyst"})
        assert (answer.status_code, answer.json()["detail"]) == (422, detail)
    answer = client.patch("/api/users/viewer-user", headers=estate["admin"],
                          json={"scopes": [{"kind": "site", "name": "plant1"}]})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == [
        "body", "scopes", 0, "kind"]
    user = client.get("/api/users/viewer-user", headers=estate["admin"]).json()
    assert (user["role"], user["scopes"]) == ("viewer", [])  # nothing half-done
    assert _audit(engine) == []


def test_the_last_admin_of_the_whole_estate_stays(estate: dict[str, Any],
                                                  engine: Engine) -> None:
    client = estate["client"]
    for body in ({"role": "analyst"}, {"disabled": True},
                 {"scopes": [{"kind": "group", "name": "plant1"}]}):
        answer = client.patch("/api/users/admin-user", headers=estate["admin"], json=body)
        assert answer.status_code == 409
        assert answer.json()["detail"].startswith(
            "admin-user is the last enabled admin who sees the whole estate")
    # With a second admin, the first may step down.
    assert client.patch("/api/users/viewer-user", headers=estate["admin"],
                        json={"role": "admin"}).status_code == 200
    answer = client.patch("/api/users/admin-user", headers=estate["admin"],
                          json={"role": "analyst"})
    assert (answer.status_code, answer.json()["role"]) == (200, "analyst")


# --- the command line --------------------------------------------------------------------

def test_cli_lists_and_sets_users(estate: dict[str, Any], engine: Engine, database_url: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    runner = CliRunner()

    def cli(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli_app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    out = cli("user", "set", "analyst-user", "--scope", "group:plant1", "--scope",
              "service:payroll")
    assert out.strip() == ("user analyst-user (local): analyst, group:plant1, "
                           "service:payroll, enabled")
    listed = cli("user", "list")
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:6]]
            for line in listed.splitlines() if line.startswith("│")}
    assert rows["analyst-user"] == ["local", "analyst", "group:plant1, service:payroll", "no"]
    assert rows["ken"] == ["ldap", "analyst", "(whole estate)", "no"]
    assert rows["aiko"] == ["oidc", "viewer", "(whole estate)", "no"]
    as_json = orjson.loads(cli("user", "list", "--json"))
    assert [u["name"] for u in as_json] == ["admin-user", "aiko", "analyst-user", "ken",
                                            "viewer-user"]
    out = cli("user", "set", "analyst-user", "--clear-scopes", "--role", "viewer",
              "--disable")
    assert out.strip() == "user analyst-user (local): viewer, (whole estate), disabled"
    refused = cli("user", "set", "ken", "--role", "admin", code=2)
    assert "ken is an LDAP directory user" in refused
    assert "PATCHPILOT_DIRECTORY_MAP" in refused
    assert "is not KIND:NAME" in cli("user", "set", "ken", "--scope", "plant1", code=2)
    assert "no asset group is named 'plant9'" in cli("user", "set", "viewer-user", "--scope",
                                                       "group:plant9", code=2)
    assert "nothing to change" in cli("user", "set", "viewer-user", code=2)
    cli("user", "set", "ken", "--disable")
    actor = f"cli:{getpass.getuser()}"
    assert _audit(engine) == [
        (actor, "analyst-user", {"source": "local", "scopes": {
            "from": [], "to": [["group", "plant1"], ["service", "payroll"]]}}),
        (actor, "analyst-user", {
            "source": "local", "role": {"from": "analyst", "to": "viewer"},
            "scopes": {"from": [["group", "plant1"], ["service", "payroll"]], "to": []},
            "disabled": {"from": False, "to": True}}),
        (actor, "ken", {"source": "ldap", "disabled": {"from": False, "to": True}})]


# --- the page ----------------------------------------------------------------------------

def test_the_users_page_lists_and_changes_users(estate: dict[str, Any],
                                                engine: Engine) -> None:
    client = estate["client"]
    csrf = sign_in(client, "viewer-user", "viewer-password")
    assert 'href="/users"' not in client.get("/overview").text
    assert client.get("/users").status_code == 403
    assert client.post("/users/analyst-user", data={"csrf": csrf, "state": "disabled"}
                       ).status_code == 403
    csrf = sign_in(client, "admin-user", "admin-password")
    page = client.get("/users")
    assert page.status_code == 200 and 'id="nav-users"' in page.text
    html = unescape(page.text)
    assert '<tr class="user" data-user="aiko" data-source="oidc">' in html
    assert '<td class="source">OpenID Connect</td>' in html
    assert '<td class="source">LDAP</td>' in html
    # A directory user's form offers the state only; a local user's the role and scopes.
    assert html.count('class="hint directory-note"') == 2
    assert html.count('name="scopes_given"') == 3
    assert 'value="service:payroll"' in html and 'value="group:plant2"' in html
    answer = client.post("/users/analyst-user", data={
        "csrf": csrf, "role": "analyst", "scope": ["group:plant1", "group:plant2"],
        "scopes_given": "yes", "state": "enabled"})
    assert (answer.status_code, answer.headers["location"]) == (303, "/users")
    html = unescape(client.get("/users").text)
    assert ('<span class="scope" data-scope="group:plant1">group plant1</span>, '
            '<span class="scope" data-scope="group:plant2">group plant2</span>') in html
    assert _audit(engine) == [("admin-user", "analyst-user", {
        "source": "local", "scopes": {"from": [],
                                      "to": [["group", "plant1"], ["group", "plant2"]]}})]
    # Refusals are explained on the page, and change nothing.
    answer = client.post("/users/ken", data={"csrf": csrf, "role": "admin", "state": "enabled"})
    assert answer.status_code == 409
    assert ("The user was not changed: ken is an LDAP directory user: their role and "
            "scopes come from the directory map") in unescape(answer.text)
    answer = client.post("/users/viewer-user", data={
        "csrf": csrf, "scope": "group:plant9", "scopes_given": "yes"})
    assert answer.status_code == 422
    assert "no asset group is named 'plant9'" in unescape(answer.text)
    assert client.post("/users/nobody", data={"csrf": csrf, "state": "disabled"}
                       ).status_code == 404
    assert client.post("/users/ken", data={"state": "disabled"}).status_code == 403  # CSRF
    assert len(_audit(engine)) == 1
    # Disabling a directory user works from its form; in Japanese, the page says so.
    assert client.post("/users/ken", data={"csrf": csrf, "state": "disabled"}
                       ).status_code == 303
    page = client.get("/users", headers={"Accept-Language": "ja"}).text
    assert "<h1>ユーザー</h1>" in page and "ディレクトリマップ" in page
    ken = page.split('data-user="ken"')[1].split("</tr>")[0]
    assert '<td class="state">無効</td>' in ken

