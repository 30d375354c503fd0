"""The users page in a real headless Chromium against a real ``patchpilot server``: an admin
opens it from the navigation, limits an analyst to the asset group plant1 with the user's
form, and sees the new scope listed and audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update

from patchpilot.assets.groups import create_group
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import audit_log, users
from patchpilot.server.security import Role, ensure_user
from tests.builders.browser import LOGINS, require_chromium, sign_in
from tests.builders.processes import ServerProcess, env_for
from tests.builders.sessions import cheap_hash
from tests.conftest import pg_schema_url

require_chromium()  # without a browser: skipped (failed under CI), saying why


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[dict[str, Any]]:
    """Groups plant1 and plant2, the admin kato and the analyst sato, a server."""
    home = tmp_path_factory.mktemp("web-users")
    urls = pg_schema_url() if request.param == "postgresql" else None
    url = next(urls) if urls else f"sqlite:///{home / 'patchpilot.db'}"
    engine = make_engine(url)
    upgrade_schema(engine)
    with engine.begin() as conn:
        for group in ("plant1", "plant2"):
            create_group(conn, "test", group)
        for name in ("kato", "sato"):
            role, password = LOGINS[name]
            user_id = ensure_user(conn, name, Role(role))
            conn.execute(update(users).where(users.c.id == user_id).values(
                password_hash=cheap_hash(password)))
    server = ServerProcess(env_for(url, home), workers=0).start()
    try:
        yield {"url": server.url, "engine": engine}
    finally:
        server.stop()
        engine.dispose()
        if urls:
            next(urls, None)  # drop the schema


def test_an_admin_limits_a_user_to_a_group(browser: Any, site: dict[str, Any]) -> None:
    page = sign_in(browser, site, "kato")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.click("#nav-users")
    page.wait_for_url("**/users")
    assert page.inner_text("h1") == "Users"
    sato = page.locator("#users-table tr.user[data-user='sato']")
    assert sato.locator("td.source").inner_text() == "local"
    assert sato.locator("td.role").inner_text() == "analyst"
    assert sato.locator("td.scopes").inner_text() == "the whole estate"
    form = sato.locator("form.user-form")
    form.locator("select[name=scope]").select_option(["group:plant1"])
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    sato = page.locator("#users-table tr.user[data-user='sato']")
    sato.locator("td.scopes span.scope[data-scope='group:plant1']").wait_for()
    assert sato.locator("td.scopes").inner_text() == "group plant1"
    assert sato.locator("td.role").inner_text() == "analyst"  # the rest kept
    assert sato.locator("select[name=scope] option:checked").all_inner_texts() == [
        "group plant1"]
    assert errors == []
    page.screenshot(path="/tmp/users-page.png", full_page=True)
    with site["engine"].connect() as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.action == "user.update")
                           ).one()
    assert (row.actor, row.target, orjson.loads(row.detail)) == ("kato", "sato", {
        "source": "local", "scopes": {"from": [], "to": [["group", "plant1"]]}})
