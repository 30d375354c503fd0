"""Every dashboard page needs a session; viewers read, analysts triage; forms need CSRF.

The table names every page route with its least role; a page added without an entry
fails ``test_every_page_is_in_the_table``, as the API's table does in api/test_roles.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from patchpilot.db.tables import audit_log, users
from patchpilot.server.deps import SCOPE_AWARE
from patchpilot.server.security import Role, create_api_token
from patchpilot.server.web import pages
from tests.builders.sessions import add_scoped_users, page_csrf, role_client, sign_in

PAGES: dict[tuple[str, str], str] = {
    ("GET", "/"): "public",
    ("GET", "/login"): "public",
    ("POST", "/login"): "public",
    ("POST", "/logout"): "viewer",
    ("GET", "/auth/oidc/login"): "public",
    ("GET", "/auth/oidc/callback"): "public",
    ("POST", "/language"): "viewer",
    ("GET", "/static/plotly.min.js"): "public",
    ("GET", "/overview"): "viewer",
    ("GET", "/findings"): "viewer",
    ("GET", "/findings/{finding_id}"): "viewer",
    ("POST", "/findings/{finding_id}/triage"): "analyst",
    ("GET", "/assets"): "viewer",
    ("GET", "/assets/{asset_id}"): "viewer",
    ("GET", "/devices"): "viewer",
    ("GET", "/assets/import"): "admin",
    ("POST", "/assets/import"): "admin",
    ("GET", "/assets/upload"): "analyst",
    ("POST", "/assets/upload"): "analyst",
    ("GET", "/sweeps"): "viewer",
    ("POST", "/sweeps"): "analyst",
    ("GET", "/sweeps/{sweep_id}"): "viewer",
    ("GET", "/sweeps/{sweep_id}/events"): "viewer",
    ("GET", "/plan"): "viewer",
    ("GET", "/plan.csv"): "viewer",
    ("GET", "/plan/items/{key}/hosts"): "viewer",
    ("GET", "/plan/ansible"): "viewer",
    ("GET", "/plan/windows-kbs.csv"): "viewer",
    ("GET", "/plan/windows-updates.ps1"): "viewer",
    ("GET", "/schedules"): "viewer",
    ("POST", "/schedules"): "admin",
    ("POST", "/schedules/{schedule_id}/delete"): "admin",
    ("POST", "/schedules/windows"): "admin",
    ("POST", "/schedules/windows/{window_id}/delete"): "admin",
    ("GET", "/reports"): "viewer",
    ("GET", "/reports/download"): "viewer",
    ("POST", "/reports/jobs"): "viewer",
    ("GET", "/reports/jobs/{job_id}"): "viewer",
    ("GET", "/reports/jobs/{job_id}/progress"): "viewer",
    ("GET", "/reports/jobs/{job_id}/file"): "viewer",
    ("GET", "/imports"): "viewer",
    ("POST", "/imports"): "analyst",
    ("GET", "/imports/history"): "viewer",
    ("GET", "/imports/templates/{name}"): "viewer",
    ("GET", "/playbooks"): "viewer",
    ("GET", "/playbooks/example"): "viewer",
    ("POST", "/playbooks/validate"): "analyst",
    ("POST", "/playbooks/preview"): "analyst",
    ("POST", "/playbooks/save"): "admin",
    ("POST", "/playbooks/{name}/enable"): "admin",
    ("POST", "/playbooks/{name}/disable"): "admin",
    ("POST", "/outbox/{outbox_id}/retry"): "admin",
    ("POST", "/outbox/{outbox_id}/discard"): "admin",
    ("GET", "/users"): "admin",
    ("POST", "/users/{name}"): "admin",
}


# (method, path) -> what a user limited to part of the estate gets, as the API's SCOPED
# table: "narrowed" (marked ``scope_aware``: narrowed to the user's assets), "refused"
# (403 whatever the role) or "n/a" (public pages).
SCOPED_PAGES: dict[tuple[str, str], str] = {
    ("GET", "/"): "n/a",
    ("GET", "/login"): "n/a",
    ("POST", "/login"): "n/a",
    ("POST", "/logout"): "narrowed",
    ("GET", "/auth/oidc/login"): "n/a",
    ("GET", "/auth/oidc/callback"): "n/a",
    ("POST", "/language"): "narrowed",
    ("GET", "/static/plotly.min.js"): "n/a",
    ("GET", "/overview"): "narrowed",
    ("GET", "/findings"): "narrowed",
    ("GET", "/findings/{finding_id}"): "narrowed",
    ("POST", "/findings/{finding_id}/triage"): "narrowed",
    ("GET", "/assets"): "narrowed",
    ("GET", "/assets/{asset_id}"): "narrowed",
    ("GET", "/devices"): "narrowed",
    ("GET", "/assets/import"): "refused",
    ("POST", "/assets/import"): "refused",
    ("GET", "/assets/upload"): "refused",
    ("POST", "/assets/upload"): "refused",
    ("GET", "/sweeps"): "narrowed",
    ("POST", "/sweeps"): "narrowed",
    ("GET", "/sweeps/{sweep_id}"): "narrowed",
    ("GET", "/sweeps/{sweep_id}/events"): "narrowed",
    ("GET", "/plan"): "narrowed",
    ("GET", "/plan.csv"): "narrowed",
    ("GET", "/plan/items/{key}/hosts"): "narrowed",
    ("GET", "/plan/ansible"): "narrowed",
    ("GET", "/plan/windows-kbs.csv"): "narrowed",
    ("GET", "/plan/windows-updates.ps1"): "narrowed",
    ("GET", "/schedules"): "refused",
    ("POST", "/schedules"): "refused",
    ("POST", "/schedules/{schedule_id}/delete"): "refused",
    ("POST", "/schedules/windows"): "refused",
    ("POST", "/schedules/windows/{window_id}/delete"): "refused",
    ("GET", "/reports"): "narrowed",
    ("GET", "/reports/download"): "narrowed",
    ("POST", "/reports/jobs"): "narrowed",
    ("GET", "/reports/jobs/{job_id}"): "narrowed",
    ("GET", "/reports/jobs/{job_id}/progress"): "narrowed",
    ("GET", "/reports/jobs/{job_id}/file"): "narrowed",
    ("GET", "/imports"): "refused",
    ("POST", "/imports"): "refused",
    ("GET", "/imports/history"): "refused",
    ("GET", "/imports/templates/{name}"): "refused",
    ("GET", "/playbooks"): "refused",
    ("GET", "/playbooks/example"): "refused",
    ("POST", "/playbooks/validate"): "refused",
    ("POST", "/playbooks/preview"): "refused",
    ("POST", "/playbooks/save"): "refused",
    ("POST", "/playbooks/{name}/enable"): "refused",
    ("POST", "/playbooks/{name}/disable"): "refused",
    ("POST", "/outbox/{outbox_id}/retry"): "refused",
    ("POST", "/outbox/{outbox_id}/discard"): "refused",
    ("GET", "/users"): "refused",
    ("POST", "/users/{name}"): "refused",
}


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with role_client(engine, monkeypatch) as c:
        yield c


def test_every_page_is_in_the_table(client: TestClient) -> None:
    served = {(m, r.path) for router in pages.ROUTERS
              for r in router.routes if isinstance(r, APIRoute)
              for m in r.methods}
    assert served == set(PAGES)
    # None of them is in the API's schema (api/test_roles.py's table reads it).
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    assert all(p.startswith("/api/") for p in paths)


def test_every_page_has_a_scope_rule() -> None:
    assert set(SCOPED_PAGES) == set(PAGES)
    assert set(SCOPED_PAGES.values()) <= {"narrowed", "refused", "n/a"}
    marked = {(m, r.path) for router in pages.ROUTERS for r in router.routes
              if isinstance(r, APIRoute) and getattr(r.endpoint, SCOPE_AWARE, False)
              for m in r.methods}
    assert marked == {k for k, v in SCOPED_PAGES.items() if v == "narrowed"}


@pytest.mark.parametrize(("method", "path"),
                         sorted(k for k, v in SCOPED_PAGES.items() if v != "n/a"))
def test_scoped_users_only_reach_narrowed_pages(client: TestClient, engine: Engine,
                                                method: str, path: str) -> None:
    add_scoped_users(engine)
    url = _url(path)
    for role in Role:
        # (sign_in reads the CSRF token off /overview: a refusal page has it too.)
        csrf = sign_in(client, f"plant1-{role.value}", "plant1-password")
        answer = client.request(method, url, data={"csrf": csrf}, follow_redirects=False)
        if role.rank < Role(PAGES[(method, path)]).rank:
            assert answer.status_code == 403, (role, answer.status_code)
        elif SCOPED_PAGES[(method, path)] == "refused":
            assert answer.status_code == 403, (role, answer.status_code)
            assert "not available to users limited to part of the estate" in answer.text
        else:
            assert answer.status_code not in (401, 403), (role, answer.status_code)


def _url(path: str) -> str:
    url = path.replace("{finding_id}", "1").replace("{asset_id}", "1").replace(
        "{sweep_id}", "1").replace("{schedule_id}", "1").replace("{window_id}", "1").replace(
        "{key}", "0" * 20).replace("{job_id}", "1").replace("{name}", "generic-findings.csv")
    return url.replace("{outbox_id}", "1")


@pytest.mark.parametrize(("method", "path"), sorted(PAGES))
def test_page_needs_a_session(client: TestClient, method: str, path: str) -> None:
    if PAGES[(method, path)] == "public":
        return
    url = path.replace("{finding_id}", "1").replace("{asset_id}", "1").replace(
        "{sweep_id}", "1").replace("{schedule_id}", "1").replace("{window_id}", "1").replace(
        "{key}", "0" * 20).replace("{job_id}", "1").replace("{name}", "generic-findings.csv")
    url = url.replace("{outbox_id}", "1")
    answer = client.request(method, url, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


def test_wrong_password_is_refused(client: TestClient) -> None:
    token = page_csrf(client.get("/login").text)
    answer = client.post("/login", data={"username": "viewer-user", "password": "nope-nope",
                                         "csrf": token})
    assert answer.status_code == 401
    assert "Wrong user name or password." in answer.text
    assert client.get("/overview", follow_redirects=False).status_code == 303


def test_login_without_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    answer = client.post("/login", data={"username": "viewer-user",
                                         "password": "viewer-password"})
    assert answer.status_code == 403


def test_session_cookie_flags(client: TestClient) -> None:
    cookie = client.get("/login").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http on loopback; Secure is set under https


def test_api_token_logs_in_a_user_without_password(client: TestClient,
                                                   engine: Engine) -> None:
    # make run's first admin has a token and no password.
    token, _ = create_api_token(engine, user="admin", role=Role.ADMIN)
    csrf = page_csrf(client.get("/login").text)
    answer = client.post("/login", data={"username": "", "password": token, "csrf": csrf})
    assert answer.status_code == 303
    assert "admin (admin)" in client.get("/overview").text


def test_viewer_cannot_triage_and_sees_no_form(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "viewer-user", "viewer-password")
    assert 'id="triage"' not in client.get("/findings/1").text  # 404 page: no finding
    answer = client.post("/findings/1/triage", data={"decision": "false_positive",
                                                     "reason": "not loaded", "csrf": csrf})
    assert answer.status_code == 403
    assert client.post("/sweeps", data={"vuln": "CVE-2024-3094",
                                         "csrf": csrf}).status_code == 403


def test_post_without_csrf_is_refused(client: TestClient) -> None:
    sign_in(client, "analyst-user", "analyst-password")
    answer = client.post("/sweeps", data={"vuln": "CVE-2024-3094"})
    assert answer.status_code == 403


def test_language_is_remembered_per_user(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "viewer-user", "viewer-password")
    assert "Overview" in client.get("/overview").text
    answer = client.post("/language", data={"lang": "ja", "csrf": csrf, "next": "/overview"})
    assert answer.status_code == 303
    assert "概要" in client.get("/overview").text
    with engine.connect() as conn:
        assert conn.execute(select(users.c.language)
                            .where(users.c.name == "viewer-user")).scalar() == "ja"


def test_browser_language_when_the_user_has_none(client: TestClient) -> None:
    sign_in(client, "viewer-user", "viewer-password")
    page = client.get("/overview", headers={"Accept-Language": "ja-JP,ja;q=0.9,en;q=0.5"})
    assert "未対応の検出結果" in page.text


def test_logout_ends_the_session(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "analyst-user", "analyst-password")
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/overview", follow_redirects=False).status_code == 303
    with engine.connect() as conn:  # logging in and out writes no audit noise
        assert conn.execute(select(audit_log)).first() is None


def test_only_admins_change_schedules(client: TestClient, engine: Engine) -> None:
    from patchpilot.assets.groups import create_group
    from patchpilot.db.tables import schedules

    with engine.begin() as conn:
        create_group(conn, "cli:test", "plant1")
    form = {"group": "plant1", "kind": "cron", "expression": "0 2 * * 6",
            "timezone": "Asia/Tokyo", "enabled": "yes"}
    for name in ("viewer", "analyst"):
        csrf = sign_in(client, f"{name}-user", f"{name}-password")
        page = client.get("/schedules").text
        assert 'id="schedule-form"' not in page and 'id="window-form"' not in page
        answer = client.post("/schedules", data={**form, "csrf": csrf})
        assert answer.status_code == 403
        assert "Not allowed" in answer.text and "requires the admin role" in answer.text
        assert client.post("/schedules/windows", data={
            "group": "plant1", "rrule": "FREQ=WEEKLY;BYDAY=SA;BYHOUR=1", "duration": "4h",
            "csrf": csrf}).status_code == 403
    csrf = sign_in(client, "admin-user", "admin-password")
    assert 'id="schedule-form"' in client.get("/schedules").text
    assert client.post("/schedules", data=form).status_code == 403  # no CSRF token
    answer = client.post("/schedules", data={**form, "csrf": csrf})
    assert (answer.status_code, answer.headers["location"]) == (303, "/schedules")
    with engine.connect() as conn:
        stored = conn.execute(select(schedules)).one()
        audit = conn.execute(select(audit_log).where(
            audit_log.c.action == "schedule.create")).one()
    assert (stored.kind, stored.expression, stored.timezone, stored.enabled) == (
        "cron", "0 2 * * 6", "Asia/Tokyo", True)
    assert (audit.actor, audit.target) == ("admin-user", f"schedule:{stored.id}")
    answer = client.post(f"/schedules/{stored.id}/delete", data={"csrf": csrf})
    assert answer.status_code == 303
    with engine.connect() as conn:
        assert conn.execute(select(schedules)).first() is None
        assert conn.execute(select(audit_log.c.actor).where(
            audit_log.c.action == "schedule.delete")).scalar_one() == "admin-user"
    # Removing it again: the 404 page, not a traceback.
    answer = client.post(f"/schedules/{stored.id}/delete", data={"csrf": csrf})
    assert answer.status_code == 404 and f"no schedule {stored.id}" in answer.text


def test_a_bad_schedule_or_window_is_explained_on_the_page(client: TestClient,
                                                            engine: Engine) -> None:
    from patchpilot.assets.groups import create_group
    from patchpilot.db.tables import maintenance_windows, schedules

    with engine.begin() as conn:
        create_group(conn, "cli:test", "plant1")
    csrf = sign_in(client, "admin-user", "admin-password")
    answer = client.post("/schedules", data={"group": "plant1", "kind": "cron",
                                             "expression": "every saturday",
                                             "timezone": "UTC", "csrf": csrf})
    assert answer.status_code == 422
    assert ("The schedule was not added: expression: 'every saturday' is not a cron "
            "expression (five fields: minute hour day month weekday)") in unescape(answer.text)
    assert 'value="every saturday"' in answer.text  # the form keeps what was typed
    answer = client.post("/schedules", data={"group": "plant1", "kind": "cron",
                                             "expression": "0 2 * * 6",
                                             "timezone": "Mars/Olympus", "csrf": csrf})
    assert answer.status_code == 422
    assert "timezone: 'Mars/Olympus' is not an IANA time zone" in unescape(answer.text)
    answer = client.post("/schedules/windows", data={
        "group": "plant1", "kind": "window", "rrule": "FREQ=WEEKLY;BYDAY=SA;BYHOUR=1",
        "csrf": csrf})
    assert answer.status_code == 422
    assert ("The window was not added: duration: a recurring window needs a positive "
            "duration") in answer.text
    answer = client.post("/schedules/windows", data={
        "group": "plant1", "kind": "blackout", "starts_at": "2099-12-30T00:00",
        "ends_at": "2099-12-29T00:00", "timezone": "Asia/Tokyo", "csrf": csrf})
    assert answer.status_code == 422
    assert "The window was not added: ends_at: must be after starts_at" in answer.text
    with engine.connect() as conn:
        assert conn.execute(select(schedules)).first() is None
        assert conn.execute(select(maintenance_windows)).first() is None


def test_errors_are_pages_on_the_dashboard_and_json_on_the_api(client: TestClient) -> None:
    # Not logged in, a Japanese browser: the 404 page in Japanese, the way back.
    answer = client.get("/no-such-page", headers={"Accept-Language": "ja-JP,ja;q=0.9"})
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "<h1>ページが見つかりません</h1>" in answer.text
    assert '<a href="/overview" id="back-to-overview">概要に戻る</a>' in answer.text
    # The API keeps its JSON answers.
    answer = client.get("/api/no-such-route")
    assert (answer.status_code, answer.json()) == (404, {"detail": "Not Found"})
    answer = client.get("/api/findings")
    assert answer.status_code == 401 and "missing bearer token" in answer.json()["detail"]
    sign_in(client, "viewer-user", "viewer-password")
    answer = client.get("/findings/999")
    assert answer.status_code == 404 and "<h1>Page not found</h1>" in answer.text
    assert '<p class="hint" id="problem-detail">no finding 999</p>' in answer.text
    assert 'href="/schedules"' in answer.text  # logged in: the page has the navigation
    # A malformed id in the path is no such page; a malformed query parameter says which.
    answer = client.get("/assets/abc")
    assert answer.status_code == 404 and "<h1>Page not found</h1>" in answer.text
    answer = client.get("/findings?page=two")
    assert answer.status_code == 400 and "<h1>Something went wrong</h1>" in answer.text
    assert "page: Input should be a valid integer" in answer.text
    assert client.get("/api/findings/abc").status_code == 401  # the API: auth first, JSON
    answer = client.post("/schedules/windows/1/delete", data={"csrf": "forged"})
    assert answer.status_code == 403
    assert "The form was out of date. Reload the page and try again." in answer.text


def test_every_page_module_is_in_the_registry() -> None:
    """Each module of ``web/pages/`` has its router in ``pages.ROUTERS`` (once), so a new
    page cannot be forgotten by the app."""
    folder = Path(pages.__file__).parent
    modules = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    routers = [importlib.import_module(f"{pages.__name__}.{m}").router for m in modules]
    assert len(pages.ROUTERS) == len(set(map(id, pages.ROUTERS))) == len(modules)
    assert {id(r) for r in routers} == {id(r) for r in pages.ROUTERS}
