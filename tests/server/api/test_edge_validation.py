"""Bad input is refused at the edge with the same 4xx on SQLite and PostgreSQL
(issue 10, item 10): ids wider than the id columns, unbounded pages and offsets, NUL
bytes, strings longer than their column, out-of-range priorities, references to rows
that do not exist.  Before, each was a 500 on PostgreSQL, and the widest ids on both.

Every test runs on both databases (the ``engine`` fixture) and asserts the exact status,
so both answering alike is what passing on both means.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from patchpilot.db.tables import assets, enrolment_tokens, triage_decisions
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token, create_enrolment_token, set_password

# 2**64 overflows SQLite's 64-bit integers; 99999999999 only PostgreSQL's 32-bit INTEGER;
# 0 and -1 are no serial id.
BAD_IDS = (2**64, 99_999_999_999, 0, -1)
AGENT_ONLY = {("POST", "/api/agents/jobs/{job_id}/result"), ("GET", "/api/agents/jobs")}


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine), follow_redirects=False) as c:
        yield c


@pytest.fixture
def headers(engine: Engine, client: TestClient) -> dict[str, dict[str, str]]:
    """Authorization headers of an admin and of an enrolled agent."""
    admin = create_api_token(engine, user="admin-user", role=Role.ADMIN)[0]
    enrol = create_enrolment_token(engine, created_by="test")
    agent = client.post("/api/agents/enrol", json={"token": enrol, "name": "agent-1"})
    assert agent.status_code == 201
    return {"admin": {"Authorization": f"Bearer {admin}"},
            "agent": {"Authorization": f"Bearer {agent.json()['credential']}"}}


def _id_routes(client: TestClient) -> list[tuple[str, str, list[str]]]:
    """Every API operation with an integer path parameter: (method, path, names)."""
    out = []
    for path, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        for method, op in operations.items():
            names = [p["name"] for p in op.get("parameters", [])
                     if p["in"] == "path" and p["schema"].get("type") == "integer"]
            if names:
                out.append((method.upper(), path, names))
    return sorted(out)


def test_every_integer_path_parameter_refuses_bad_ids(
        client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    routes = _id_routes(client)
    # The routes of test_roles.py's table that carry ids, and the ones added since.
    assert len(routes) >= 25
    answers: dict[tuple[str, str, int], tuple[int, Any]] = {}
    for method, path, names in routes:
        who = "agent" if (method, path) in AGENT_ONLY else "admin"
        for bad in BAD_IDS:
            url = path
            for name in names:
                url = url.replace("{" + name + "}", str(bad))
            answer = client.request(method, url, headers=headers[who],
                                    json={} if method in ("POST", "PUT", "PATCH") else None)
            body = answer.json()
            # The path parameter is named in FastAPI's 422, whatever else is wrong.
            named = [e["loc"][-1] for e in body["detail"] if e["loc"][0] == "path"]
            answers[(method, path, bad)] = (answer.status_code, sorted(set(named)))
    expected = {(m, p, bad): (422, sorted(names)) for m, p, names in routes for bad in BAD_IDS}
    assert answers == expected


def test_largest_id_is_a_plain_404(client: TestClient,
                                   headers: dict[str, dict[str, str]]) -> None:
    # 2**31 - 1 fits both databases: looked up, not found.
    paths = ["/api/assets/{}", "/api/findings/{}", "/api/sweeps/{}", "/api/groups/{}"]
    answers = {p: client.get(p.format(2**31 - 1), headers=headers["admin"]) for p in paths}
    assert {p: (a.status_code, a.json()["detail"].endswith(str(2**31 - 1)))
            for p, a in answers.items()} == dict.fromkeys(paths, (404, True))


BAD_QUERIES: list[tuple[str, dict[str, Any], str]] = [
    ("/api/assets", {"offset": 2**64}, "offset"),
    ("/api/assets", {"offset": -1}, "offset"),
    ("/api/assets", {"limit": 0}, "limit"),
    ("/api/assets", {"limit": 1001}, "limit"),
    ("/api/findings", {"offset": 2**63}, "offset"),
    ("/api/findings", {"limit": -1}, "limit"),
    ("/api/findings", {"priority": 5}, "priority"),
    ("/api/findings", {"priority": 2**64}, "priority"),
    ("/api/findings", {"asset_id": 99_999_999_999}, "asset_id"),
    ("/api/findings", {"q": "xz\x00utils"}, "q"),
    ("/api/findings", {"vuln": "CVE-2024-3094\x00"}, "vuln"),
    ("/api/findings", {"group": "g" * 201}, "group"),
    ("/api/sweeps", {"offset": 2**64}, "offset"),
    ("/api/overview", {"group": "a\x00b"}, "group"),
    ("/api/plan", {"group": "a\x00b"}, "group"),
    ("/api/sla", {"group": "a\x00b"}, "group"),
    ("/api/reports/executive", {"group": "a\x00b"}, "group"),
]


def test_bad_query_parameters_are_422(client: TestClient,
                                      headers: dict[str, dict[str, str]]) -> None:
    answers = {}
    for path, params, _field in BAD_QUERIES:
        answer = client.get(path, params=params, headers=headers["admin"])
        answers[path, str(params)] = (answer.status_code,
                                      [e["loc"] for e in answer.json()["detail"]])
    assert answers == {(path, str(params)): (422, [["query", field]])
                       for path, params, field in BAD_QUERIES}


BAD_BODIES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/groups", {"name": "a\x00b"}, "name"),
    ("POST", "/api/groups", {"name": "g" * 201}, "name"),
    ("POST", "/api/groups", {"name": "g", "rule": {"tags": ["t\x00"]}}, "rule"),
    ("POST", "/api/ssh-targets", {"target": "root@host", "name": "h" * 301}, "name"),
    ("POST", "/api/ssh-targets", {"target": "root@ho\x00st"}, "target"),
    ("POST", "/api/ssh-targets", {"target": "root@host", "group_id": 2**64}, "group_id"),
    ("POST", "/api/tokens", {"user": "u\x00"}, "user"),
    ("POST", "/api/enrolment-tokens", {"group_id": 99_999_999_999}, "group_id"),
    ("POST", "/api/enrolment-tokens", {"uses": 2**40}, "uses"),
    ("POST", "/api/sweeps", {"vuln": "CVE-2024-\x003094"}, "vuln"),
    ("POST", "/api/triage", {"vuln_id": "CVE-2024-3094", "scope": "asset",
                             "asset_id": 2**64, "decision": "false_positive",
                             "reason": "not reachable"}, "asset_id"),
    ("POST", "/api/triage", {"vuln_id": "CVE-2024-3094", "scope": "global",
                             "decision": "false_positive", "reason": "no\x00"}, "reason"),
    ("POST", "/api/report-schedules", {"cron": "0 8 * * *", "recipients": ["a@b.example"],
                                       "group": "x\x00"}, "group"),
]


def test_bad_bodies_are_422(client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    answers = {}
    for method, path, body, _field in BAD_BODIES:
        answer = client.request(method, path, json=body, headers=headers["admin"])
        answers[path, str(body)] = (answer.status_code,
                                    [e["loc"][1] for e in answer.json()["detail"]])
    assert answers == {(path, str(body)): (422, [field])
                       for _, path, body, field in BAD_BODIES}


def test_enrolment_token_for_an_unknown_group_is_404(
        engine: Engine, client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    answer = client.post("/api/enrolment-tokens", json={"group_id": 99999},
                         headers=headers["admin"])
    assert (answer.status_code, answer.json()) == (
        404, {"detail": "group_id: no asset group 99999"})
    with engine.connect() as conn:  # only the agent fixture's own token
        assert conn.execute(select(func.count()).select_from(enrolment_tokens)).scalar() == 1


@pytest.mark.parametrize(("scope", "field", "what"), [("asset", "asset_id", "asset"),
                                                      ("group", "group_id", "asset group")])
def test_triage_of_an_unknown_target_is_404(
        engine: Engine, client: TestClient, headers: dict[str, dict[str, str]],
        scope: str, field: str, what: str) -> None:
    answer = client.post("/api/triage", headers=headers["admin"], json={
        "vuln_id": "CVE-2024-3094", "scope": scope, field: 99999,
        "decision": "false_positive", "reason": "not reachable"})
    assert (answer.status_code, answer.json()) == (404, {"detail": f"{field}: no {what} 99999"})
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(triage_decisions)).scalar() == 0


def test_group_members_of_unknown_assets_are_404(
        client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    group = client.post("/api/groups", json={"name": "plant"}, headers=headers["admin"])
    answer = client.post(f"/api/groups/{group.json()['id']}/members",
                         json={"asset_ids": [99999]}, headers=headers["admin"])
    assert (answer.status_code, answer.json()) == (
        404, {"detail": "asset_ids: no asset [99999]"})


# --- the dashboard -------------------------------------------------------------------

@pytest.fixture
def browser(engine: Engine, client: TestClient, monkeypatch: pytest.MonkeyPatch
            ) -> TestClient:
    """``client`` signed in to the dashboard as an admin."""
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", "test-secret-" + "x" * 32)
    set_password(engine, "admin-web", Role.ADMIN, "admin-password")
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf
    answer = client.post("/login", data={"username": "admin-web", "password": "admin-password",
                                         "csrf": csrf.group(1), "next": "/overview"})
    assert answer.status_code == 303, answer.text
    return client


PAGE_ANSWERS = [
    (f"/assets/{2**64}", 404), ("/assets/99999999999", 404), ("/assets/0", 404),
    ("/assets/-1", 404), (f"/findings/{2**64}", 404), (f"/sweeps/{2**64}", 404),
    ("/assets/2147483647", 404),
    (f"/findings?page={2**64}", 400), ("/findings?page=0", 400),
    (f"/assets?page={2**64}", 400),
    ("/findings?q=a%00b", 400), ("/findings?group=a%00b", 400),
    ("/findings?asset=99999999999", 400), ("/findings?asset=%C2%B2", 400),
    ("/assets?q=a%00b", 400), ("/plan?group=a%00b", 400),
    ("/reports/download?scope=group:a%00b", 400),
    # "²" is a digit to str.isdigit() but not to int(): the default of 7 days applies.
    ("/assets?scan=older&days=%C2%B2", 200),
]


def test_pages_answer_html_errors(browser: TestClient) -> None:
    answers = {url: browser.get(url) for url, _ in PAGE_ANSWERS}
    assert {url: (a.status_code, a.headers["content-type"].split(";")[0])
            for url, a in answers.items()} == {url: (status, "text/html")
                                               for url, status in PAGE_ANSWERS}


# --- inventories and CMDB imports -------------------------------------------------------

def _inventory(**asset: Any) -> dict[str, Any]:
    return {"schema": 1, "collector": {"name": "agent"}, "asset": asset,
            "packages": [{"ecosystem": "PyPI", "name": "jinja2", "version": "3.1.2"}]}


def test_unstorable_inventories_are_422(engine: Engine, client: TestClient,
                                        headers: dict[str, dict[str, str]]) -> None:
    long_collector = _inventory(hostname="web1")
    long_collector["collector"]["name"] = "c" * 51
    nul_package = _inventory(hostname="web1")
    nul_package["packages"][0]["name"] = "jin\x00ja2"
    cases = {
        "asset.hostname: longer than 300 characters (301)": _inventory(hostname="h" * 301),
        "asset.hostname: must not contain a NUL byte (\\x00)": _inventory(hostname="we\x00b"),
        "collector.name: longer than 50 characters (51)": long_collector,
        "packages[0].name: must not contain a NUL byte (\\x00)": nul_package,
    }
    answers = {}
    for expected, document in cases.items():
        answer = client.post("/api/inventories", json=document, headers=headers["admin"])
        answers[expected] = (answer.status_code, answer.json()["detail"])
    assert answers == {e: (422, f"request body: {e}") for e in cases}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(assets)).scalar() == 0


def test_cmdb_field_over_the_csv_limit_is_422(engine: Engine, client: TestClient,
                                              headers: dict[str, dict[str, str]]) -> None:
    body = "hostname,owner,service\nweb1,alice,shop\nweb2,\"" + "x" * (128 * 1024 + 1) + "\",shop\n"
    answer = client.post("/api/assets/import?create_missing=true", content=body.encode(),
                         headers={**headers["admin"], "Content-Type": "text/csv"})
    assert (answer.status_code, answer.json()) == (422, {"detail": [
        "body:3: column 'owner': field larger than field limit (131072)"]})
    nul = client.post("/api/assets/import?create_missing=true",
                      content=b"hostname,owner\nweb1,al\x00ice\n",
                      headers={**headers["admin"], "Content-Type": "text/csv"})
    assert (nul.status_code, nul.json()) == (422, {"detail": [
        "body:2: column 'owner': must not contain a NUL byte (\\x00)"]})
    with engine.connect() as conn:  # nothing stored, not even web1
        assert conn.execute(select(func.count()).select_from(assets)).scalar() == 0
