"""Every API route is authenticated and authorised: each role is refused what it must be.

The table below names the least role of every route; a route added without an entry
fails ``test_every_route_is_in_the_table``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from patchpilot.db.tables import agents, api_tokens, users
from patchpilot.server.app import ROUTERS, create_app
from patchpilot.server.deps import SCOPE_AWARE
from patchpilot.server.directory import set_scopes
from patchpilot.server.security import (
    AGENT_TOKEN_PREFIX,
    Role,
    TokenRoleError,
    create_api_token,
    create_enrolment_token,
    set_user_role,
)

# (method, path) -> who may call it: a role (and everyone above), "agent", "analyst+agent",
# "public" (health), "enrolment" (authenticated by the enrolment token in the body) or
# "hook" (authenticated by the inbound hook's own token or HMAC signature).
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/api/health"): "public",
    ("POST", "/api/tokens"): "admin",
    ("GET", "/api/tokens"): "admin",
    ("DELETE", "/api/tokens/{token_id}"): "admin",
    ("POST", "/api/enrolment-tokens"): "admin",
    ("POST", "/api/agents/enrol"): "enrolment",
    ("GET", "/api/agents/jobs"): "agent",
    ("POST", "/api/agents/jobs/{job_id}/result"): "agent",
    ("GET", "/api/agents"): "admin",
    ("DELETE", "/api/agents/{agent_id}"): "admin",
    ("POST", "/api/agents/{agent_id}/approve"): "admin",
    ("POST", "/api/agents/{agent_id}/reject"): "admin",
    ("POST", "/api/inventories"): "analyst+agent",
    ("GET", "/api/assets"): "viewer",
    ("GET", "/api/assets/{asset_id}"): "viewer",
    ("POST", "/api/assets/import"): "admin",
    ("GET", "/api/assets/unknown"): "viewer",
    ("PUT", "/api/assets/{asset_id}/context"): "analyst",
    ("POST", "/api/devices"): "analyst",
    ("GET", "/api/devices"): "viewer",
    ("GET", "/api/findings"): "viewer",
    ("GET", "/api/findings/{finding_id}"): "viewer",
    ("GET", "/api/overview"): "viewer",
    ("POST", "/api/triage"): "analyst",
    ("DELETE", "/api/triage/{decision_id}"): "analyst",
    ("POST", "/api/groups"): "admin",
    ("GET", "/api/groups"): "admin",
    ("GET", "/api/groups/{group_id}"): "admin",
    ("PATCH", "/api/groups/{group_id}"): "admin",
    ("POST", "/api/groups/{group_id}/members"): "admin",
    ("DELETE", "/api/groups/{group_id}/members/{asset_id}"): "admin",
    ("POST", "/api/groups/{group_id}/schedules"): "admin",
    ("GET", "/api/groups/{group_id}/schedules"): "admin",
    ("PATCH", "/api/schedules/{schedule_id}"): "admin",
    ("DELETE", "/api/schedules/{schedule_id}"): "admin",
    ("POST", "/api/groups/{group_id}/windows"): "admin",
    ("GET", "/api/groups/{group_id}/windows"): "admin",
    ("DELETE", "/api/windows/{window_id}"): "admin",
    ("POST", "/api/groups/{group_id}/scan-now"): "analyst",
    ("PATCH", "/api/assets/{asset_id}/ssh-target"): "admin",
    ("POST", "/api/ssh-targets"): "admin",
    ("POST", "/api/sweeps"): "analyst",
    ("GET", "/api/sweeps"): "viewer",
    ("GET", "/api/sweeps/{sweep_id}"): "viewer",
    ("GET", "/api/sweeps/{sweep_id}/events"): "viewer",
    ("GET", "/api/events"): "viewer",
    ("GET", "/api/plan"): "viewer",
    ("GET", "/api/plan.csv"): "viewer",
    ("GET", "/api/plan/items/{key}/hosts"): "viewer",
    ("GET", "/api/plan/ansible"): "viewer",
    ("GET", "/api/plan/windows-kbs.csv"): "viewer",
    ("GET", "/api/plan/windows-updates.ps1"): "viewer",
    ("GET", "/api/priority-config"): "viewer",
    ("PUT", "/api/priority-config"): "admin",
    ("GET", "/api/sla"): "viewer",
    ("GET", "/api/reports/{kind}"): "viewer",
    ("POST", "/api/reports/jobs"): "viewer",
    ("GET", "/api/reports/jobs/{job_id}"): "viewer",
    ("GET", "/api/reports/jobs/{job_id}/file"): "viewer",
    ("GET", "/api/report-schedules"): "viewer",
    ("POST", "/api/report-schedules"): "admin",
    ("DELETE", "/api/report-schedules/{schedule_id}"): "admin",
    ("POST", "/api/imports"): "analyst",
    ("GET", "/api/imports"): "viewer",
    ("GET", "/api/imports/formats"): "viewer",
    ("GET", "/api/imports/templates/{name}"): "viewer",
    ("GET", "/api/imports/{import_id}"): "viewer",
    ("GET", "/api/playbooks"): "viewer",
    ("GET", "/api/playbooks/{name}"): "viewer",
    ("GET", "/api/playbooks/{name}/versions/{version}"): "viewer",
    ("PUT", "/api/playbooks/{name}"): "admin",
    ("POST", "/api/playbooks/validate"): "analyst",
    ("POST", "/api/playbooks/preview"): "analyst",
    ("POST", "/api/playbooks/{name}/enable"): "admin",
    ("POST", "/api/playbooks/{name}/disable"): "admin",
    ("GET", "/api/outbox"): "viewer",
    ("POST", "/api/outbox/{outbox_id}/retry"): "admin",
    ("POST", "/api/outbox/{outbox_id}/discard"): "admin",
    ("POST", "/api/hooks/{name}"): "hook",
    ("GET", "/api/automation/hooks"): "admin",
    ("POST", "/api/automation/hooks"): "admin",
    ("PATCH", "/api/automation/hooks/{name}"): "admin",
    ("DELETE", "/api/automation/hooks/{name}"): "admin",
    ("GET", "/api/secrets"): "admin",
    ("PUT", "/api/secrets/{name}"): "admin",
    ("DELETE", "/api/secrets/{name}"): "admin",
    ("GET", "/api/users"): "admin",
    ("GET", "/api/users/{name}"): "admin",
    ("PATCH", "/api/users/{name}"): "admin",
}

# (method, path) -> what a user limited to part of the estate (a scoped role, issue 18)
# gets: "narrowed" (the route is marked ``scope_aware``: every answer and action is
# narrowed to the user's assets, and tests/server/test_scopes.py checks it) or "refused"
# (403 whatever the role); "n/a" for routes that are not a user's (public, agents,
# enrolment, hooks).  A route added without an entry fails ``test_every_route_has_a_scope_rule``.
SCOPED: dict[tuple[str, str], str] = {
    ("GET", "/api/health"): "n/a",
    ("POST", "/api/tokens"): "refused",
    ("GET", "/api/tokens"): "refused",
    ("DELETE", "/api/tokens/{token_id}"): "refused",
    ("POST", "/api/enrolment-tokens"): "refused",
    ("POST", "/api/agents/enrol"): "n/a",
    ("GET", "/api/agents/jobs"): "n/a",
    ("POST", "/api/agents/jobs/{job_id}/result"): "n/a",
    ("GET", "/api/agents"): "refused",
    ("DELETE", "/api/agents/{agent_id}"): "refused",
    ("POST", "/api/agents/{agent_id}/approve"): "refused",
    ("POST", "/api/agents/{agent_id}/reject"): "refused",
    ("POST", "/api/inventories"): "refused",
    ("GET", "/api/assets"): "narrowed",
    ("GET", "/api/assets/{asset_id}"): "narrowed",
    ("POST", "/api/assets/import"): "refused",
    ("GET", "/api/assets/unknown"): "narrowed",
    ("PUT", "/api/assets/{asset_id}/context"): "narrowed",
    ("POST", "/api/devices"): "refused",
    ("GET", "/api/devices"): "narrowed",
    ("GET", "/api/findings"): "narrowed",
    ("GET", "/api/findings/{finding_id}"): "narrowed",
    ("GET", "/api/overview"): "narrowed",
    ("POST", "/api/triage"): "narrowed",
    ("DELETE", "/api/triage/{decision_id}"): "narrowed",
    ("POST", "/api/groups"): "refused",
    ("GET", "/api/groups"): "refused",
    ("GET", "/api/groups/{group_id}"): "refused",
    ("PATCH", "/api/groups/{group_id}"): "refused",
    ("POST", "/api/groups/{group_id}/members"): "refused",
    ("DELETE", "/api/groups/{group_id}/members/{asset_id}"): "refused",
    ("POST", "/api/groups/{group_id}/schedules"): "refused",
    ("GET", "/api/groups/{group_id}/schedules"): "refused",
    ("PATCH", "/api/schedules/{schedule_id}"): "refused",
    ("DELETE", "/api/schedules/{schedule_id}"): "refused",
    ("POST", "/api/groups/{group_id}/windows"): "refused",
    ("GET", "/api/groups/{group_id}/windows"): "refused",
    ("DELETE", "/api/windows/{window_id}"): "refused",
    ("POST", "/api/groups/{group_id}/scan-now"): "refused",
    ("PATCH", "/api/assets/{asset_id}/ssh-target"): "refused",
    ("POST", "/api/ssh-targets"): "refused",
    ("POST", "/api/sweeps"): "narrowed",
    ("GET", "/api/sweeps"): "narrowed",
    ("GET", "/api/sweeps/{sweep_id}"): "narrowed",
    ("GET", "/api/sweeps/{sweep_id}/events"): "narrowed",
    ("GET", "/api/events"): "narrowed",
    ("GET", "/api/plan"): "narrowed",
    ("GET", "/api/plan.csv"): "narrowed",
    ("GET", "/api/plan/items/{key}/hosts"): "narrowed",
    ("GET", "/api/plan/ansible"): "narrowed",
    ("GET", "/api/plan/windows-kbs.csv"): "narrowed",
    ("GET", "/api/plan/windows-updates.ps1"): "narrowed",
    ("GET", "/api/priority-config"): "narrowed",
    ("PUT", "/api/priority-config"): "refused",
    ("GET", "/api/sla"): "narrowed",
    ("GET", "/api/reports/{kind}"): "narrowed",
    ("POST", "/api/reports/jobs"): "narrowed",
    ("GET", "/api/reports/jobs/{job_id}"): "narrowed",
    ("GET", "/api/reports/jobs/{job_id}/file"): "narrowed",
    ("GET", "/api/report-schedules"): "narrowed",
    ("POST", "/api/report-schedules"): "refused",
    ("DELETE", "/api/report-schedules/{schedule_id}"): "refused",
    ("POST", "/api/imports"): "refused",
    ("GET", "/api/imports"): "refused",
    ("GET", "/api/imports/formats"): "refused",
    ("GET", "/api/imports/templates/{name}"): "refused",
    ("GET", "/api/imports/{import_id}"): "refused",
    ("GET", "/api/playbooks"): "refused",
    ("GET", "/api/playbooks/{name}"): "refused",
    ("GET", "/api/playbooks/{name}/versions/{version}"): "refused",
    ("PUT", "/api/playbooks/{name}"): "refused",
    ("POST", "/api/playbooks/validate"): "refused",
    ("POST", "/api/playbooks/preview"): "refused",
    ("POST", "/api/playbooks/{name}/enable"): "refused",
    ("POST", "/api/playbooks/{name}/disable"): "refused",
    ("GET", "/api/outbox"): "refused",
    ("POST", "/api/outbox/{outbox_id}/retry"): "refused",
    ("POST", "/api/outbox/{outbox_id}/discard"): "refused",
    ("POST", "/api/hooks/{name}"): "n/a",
    ("GET", "/api/automation/hooks"): "refused",
    ("POST", "/api/automation/hooks"): "refused",
    ("PATCH", "/api/automation/hooks/{name}"): "refused",
    ("DELETE", "/api/automation/hooks/{name}"): "refused",
    ("GET", "/api/secrets"): "refused",
    ("PUT", "/api/secrets/{name}"): "refused",
    ("DELETE", "/api/secrets/{name}"): "refused",
    ("GET", "/api/users"): "refused",
    ("GET", "/api/users/{name}"): "refused",
    ("PATCH", "/api/users/{name}"): "refused",
}

# A token whose role differs from its user's acts with the lower of the two (issue 10,
# item 2): a viewer / analyst token of an admin, and an admin token whose user was demoted.
ACTS_AS = {"viewer": "viewer", "analyst": "analyst", "admin": "admin", "agent": "agent",
           "admin-user-viewer-token": "viewer", "admin-user-analyst-token": "analyst",
           "demoted-user-admin-token": "viewer"}
CALLERS = tuple(ACTS_AS)


def allowed(rule: str, caller: str) -> bool:
    """Whether ``caller`` passes authorisation for a route with ``rule``."""
    caller = ACTS_AS[caller]
    if rule == "agent":
        return caller == "agent"
    if rule == "analyst+agent":
        return caller in ("agent", "analyst", "admin")
    if caller == "agent":
        return False
    return Role(caller).rank >= Role(rule).rank


@pytest.fixture
def client(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[TestClient]:
    # An upload an analyst may make is spooled under the home: the test's own.
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    with TestClient(create_app(engine)) as c:
        yield c


@pytest.fixture
def tokens(engine: Engine, client: TestClient) -> dict[str, str]:
    out = {role.value: create_api_token(engine, user=f"{role.value}-user", role=role)[0]
           for role in Role}
    out["admin-user-viewer-token"] = create_api_token(engine, user="admin-user",
                                                      role=Role.VIEWER)[0]
    out["admin-user-analyst-token"] = create_api_token(engine, user="admin-user",
                                                       role=Role.ANALYST)[0]
    out["demoted-user-admin-token"] = create_api_token(engine, user="demoted-user",
                                                       role=Role.ADMIN)[0]
    with engine.begin() as conn:
        set_user_role(conn, "demoted-user", Role.VIEWER)
    enrol = create_enrolment_token(engine, created_by="test")
    answer = client.post("/api/agents/enrol", json={"token": enrol, "name": "agent-1"})
    assert answer.status_code == 201
    out["agent"] = answer.json()["credential"]
    return out


def _path(template: str) -> str:
    return template.replace("{token_id}", "999").replace("{job_id}", "999").replace(
        "{agent_id}", "999").replace("{asset_id}", "999").replace(
        "{finding_id}", "999").replace("{decision_id}", "999").replace(
        "{group_id}", "999").replace("{schedule_id}", "999").replace("{window_id}", "999").replace(
        "{sweep_id}", "999").replace("{key}", "0" * 20).replace("{import_id}", "999").replace(
        "{name}", "generic-findings.csv").replace("{version}", "1").replace(
        "{outbox_id}", "999")


def _call(client: TestClient, method: str, path: str, token: str | None):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "GET":
        return client.get(_path(path), headers=headers, params={"wait": 0})
    if method == "DELETE":
        return client.delete(_path(path), headers=headers)
    if method == "PUT":
        return client.put(_path(path), headers=headers, json={})
    if method == "PATCH":
        return client.patch(_path(path), headers=headers, json={})
    if method == "PUT":
        return client.put(_path(path), headers=headers, json={})
    return client.post(_path(path), headers=headers, json={})


def test_every_route_is_in_the_table(client: TestClient) -> None:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    served = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    assert served == set(ROUTES)


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES))
def test_route_refuses_who_it_must(client: TestClient, tokens: dict[str, str],
                                   method: str, path: str) -> None:
    rule = ROUTES[(method, path)]
    if rule == "public":
        # Health answers everyone alike: no credential, a garbage one, every caller's.
        for token in (None, "pp_not-a-real-token", *(tokens[c] for c in CALLERS)):
            answer = _call(client, method, path, token)
            assert (answer.status_code, answer.json()["status"]) == (200, "ok"), token
        return
    if rule == "enrolment":
        _check_enrolment(client, tokens)
        return
    if rule == "hook":
        # Only the hook's own credentials: no user's or agent's token stands in for them
        # (tests/automation/test_hooks.py checks the hook's own).
        for token in (None, "pp_not-a-real-token", *(tokens[c] for c in CALLERS)):
            assert _call(client, method, path, token).status_code == 401, token
        return
    assert _call(client, method, path, None).status_code == 401
    assert _call(client, method, path, "pp_not-a-real-token").status_code == 401
    for caller in CALLERS:
        code = _call(client, method, path, tokens[caller]).status_code
        if allowed(rule, caller):
            assert code not in (401, 403), (caller, code)
        else:
            assert code == 403, (caller, code)


def _agents(client: TestClient) -> int:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(agents)).scalar_one())


def _check_enrolment(client: TestClient, tokens: dict[str, str]) -> None:
    """POST /api/agents/enrol is authenticated by the enrolment token in its body, and by
    nothing else: no bearer token of a user or an agent stands in for one."""
    enrol = "/api/agents/enrol"
    before = _agents(client)
    refused = {"detail": "enrolment token unknown, expired, revoked or used up"}
    # Without a token the body is invalid: 422, never an agent.
    for caller in (None, *CALLERS):
        headers = {"Authorization": f"Bearer {tokens[caller]}"} if caller else {}
        answer = client.post(enrol, headers=headers, json={"name": "agent-x"})
        assert answer.status_code == 422, caller
    # A garbage token, or any bearer token of a user or agent put where the enrolment
    # token goes (and sent as the bearer as well): 401.
    for token in ("ppe_garbage-garbage", *(tokens[c] for c in CALLERS)):
        answer = client.post(enrol, headers={"Authorization": f"Bearer {token}"},
                             json={"token": token, "name": "agent-x"})
        assert (answer.status_code, answer.json()) == (401, refused), token
    assert _agents(client) == before
    # A real single-use enrolment token works once, whatever bearer comes with it, then
    # it is used up.
    engine = client.app.state.engine  # type: ignore[attr-defined]
    once = create_enrolment_token(engine, created_by="test", uses=1)
    answer = client.post(enrol, headers={"Authorization": f"Bearer {tokens['viewer']}"},
                         json={"token": once, "name": "agent-once"})
    assert answer.status_code == 201
    assert answer.json()["credential"].startswith(AGENT_TOKEN_PREFIX)
    again = client.post(enrol, json={"token": once, "name": "agent-twice"})
    assert (again.status_code, again.json()) == (401, refused)
    # An expired token is refused too.
    expired = create_enrolment_token(engine, created_by="test", ttl_hours=0)
    answer = client.post(enrol, json={"token": expired, "name": "agent-late"})
    assert (answer.status_code, answer.json()) == (401, refused)
    assert _agents(client) == before + 1


def test_revoked_token_stops_working(client: TestClient, tokens: dict[str, str]) -> None:
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    created = client.post("/api/tokens", headers=admin,
                          json={"user": "temp", "role": "viewer"}).json()
    mine = {"Authorization": f"Bearer {created['token']}"}
    assert client.get("/api/assets", headers=mine).status_code == 200
    assert client.delete(f"/api/tokens/{created['id']}", headers=admin).status_code == 204
    answer = client.get("/api/assets", headers=mine)
    assert (answer.status_code, answer.json()["detail"]) == (401, "token revoked")
    listed = client.get("/api/tokens", headers=admin).json()
    assert all("token" not in t and t["prefix"] for t in listed)  # never the secret


def test_enrolment_token_is_required(client: TestClient) -> None:
    answer = client.post("/api/agents/enrol", json={"token": "ppe_wrongwrong", "name": "x"})
    assert answer.status_code == 401


def test_a_token_is_never_made_above_its_users_role(client: TestClient,
                                                     tokens: dict[str, str],
                                                     engine: Engine) -> None:
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(api_tokens)).scalar_one()
    answer = client.post("/api/tokens", headers=admin,
                         json={"user": "viewer-user", "role": "admin"})
    assert answer.status_code == 409
    assert answer.json()["detail"].startswith(
        "user 'viewer-user' is viewer: a token for them cannot be admin")
    with pytest.raises(TokenRoleError, match="'analyst-user' is analyst: .* cannot be admin"):
        create_api_token(engine, user="analyst-user", role=Role.ADMIN)
    with engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(api_tokens)).scalar_one()
        roles = dict(conn.execute(select(users.c.name, users.c.role)).all())
    assert after == before  # nothing made, and no user's role changed
    assert (roles["viewer-user"], roles["analyst-user"]) == ("viewer", "analyst")


def test_a_lower_token_keeps_its_role_and_is_listed_with_it(client: TestClient,
                                                            tokens: dict[str, str],
                                                            engine: Engine) -> None:
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    made = client.post("/api/tokens", headers=admin,
                       json={"user": "admin-user", "role": "viewer", "name": "reader"})
    assert made.status_code == 201
    reader = {"Authorization": f"Bearer {made.json()['token']}"}
    assert client.get("/api/assets", headers=reader).status_code == 200
    refused = client.get("/api/tokens", headers=reader)
    assert (refused.status_code, refused.json()["detail"]) == (
        403, "requires the admin role; you are viewer")
    listed = {t["id"]: t for t in client.get("/api/tokens", headers=admin).json()}
    mine = listed[made.json()["id"]]
    assert (mine["user"], mine["role"], mine["user_role"], mine["name"]) == (
        "admin-user", "viewer", "admin", "reader")
    demoted = next(t for t in listed.values() if t["user"] == "demoted-user")
    assert (demoted["role"], demoted["user_role"]) == ("admin", "viewer")
    # A new user is created with the token's role, as before.
    assert client.post("/api/tokens", headers=admin,
                       json={"user": "newcomer", "role": "analyst"}).status_code == 201
    with engine.connect() as conn:
        assert conn.execute(select(users.c.role).where(users.c.name == "newcomer")
                            ).scalar_one() == "analyst"


def test_every_route_has_a_scope_rule(client: TestClient) -> None:
    assert set(SCOPED) == set(ROUTES)
    assert set(SCOPED.values()) <= {"narrowed", "refused", "n/a"}
    # The table and the code agree: exactly the "narrowed" routes are marked scope_aware.
    # (Read off the routers of app.ROUTERS: FastAPI 0.165 includes a router lazily, so
    # app.routes holds no APIRoute of theirs and the check would pass vacuously.)
    marked = {(m, "/api" + r.path) for module in ROUTERS for r in module.router.routes
              if isinstance(r, APIRoute) and getattr(r.endpoint, SCOPE_AWARE, False)
              for m in r.methods}
    assert ("GET", "/api/health") not in marked
    assert marked == {k for k, v in SCOPED.items() if v == "narrowed"}


@pytest.fixture
def scoped_tokens(engine: Engine, client: TestClient) -> dict[str, str]:
    """Tokens of users limited to the group plant1, one per role."""
    out = {}
    for role in Role:
        out[role.value] = create_api_token(engine, user=f"plant1-{role.value}", role=role)[0]
        with engine.begin() as conn:
            set_scopes(conn, conn.execute(select(users.c.id).where(
                users.c.name == f"plant1-{role.value}")).scalar_one(), [("group", "plant1")])
    return out


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in SCOPED.items() if v != "n/a"))
def test_scoped_users_only_reach_narrowed_routes(client: TestClient,
                                                 scoped_tokens: dict[str, str],
                                                 method: str, path: str) -> None:
    """A scoped user passes the role check as before, and then only a route that narrows
    to their scope answers them; every other route refuses them whatever their role."""
    for role, token in scoped_tokens.items():
        answer = _call(client, method, path, token)
        if not allowed(ROUTES[(method, path)], role):
            assert answer.status_code == 403, (role, answer.status_code)
        elif SCOPED[(method, path)] == "refused":
            assert (answer.status_code, answer.json()["detail"]) == (
                403, "not available to users limited to part of the estate (you see "
                     "group plant1); ask an administrator"), role
        else:
            assert answer.status_code not in (401, 403), (role, answer.status_code)
