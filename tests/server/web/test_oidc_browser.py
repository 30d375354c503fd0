"""OpenID Connect sign-in in a real headless Chromium against a real ``patchpilot server``
and the loopback test provider (tests/oidc_provider.py): the login page's "Sign in with"
button leads to the provider, which approves the test user and sends the browser back;
it lands on the overview as that user, with the role the directory map gives its group,
and logging out also passes by the provider's end-session endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import users
from tests.builders.browser import require_chromium
from tests.builders.processes import ServerProcess, env_for
from tests.conftest import pg_schema_url
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, IdpUser, Provider, ProviderServer

require_chromium()  # without a browser: skipped (failed under CI), saying why


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with ProviderServer(IdpUser("kc-7f3a", "hanako", ["plant1-team"])) as p:
        yield p


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         provider: Provider) -> Iterator[dict[str, Any]]:
    """An empty database and a server whose login page offers the test provider."""
    home = tmp_path_factory.mktemp("web-oidc")
    urls = pg_schema_url() if request.param == "postgresql" else None
    url = next(urls) if urls else f"sqlite:///{home / 'patchpilot.db'}"
    engine = make_engine(url)
    upgrade_schema(engine)
    (home / "directory.yaml").write_text("- match: plant1-team\n  role: analyst\n")
    env = {**env_for(url, home), "PATCHPILOT_DIRECTORY_MAP": str(home / "directory.yaml"),
           "PATCHPILOT_OIDC_ISSUER": provider.url, "PATCHPILOT_OIDC_CLIENT_ID": CLIENT_ID,
           "PATCHPILOT_OIDC_CLIENT_SECRET": CLIENT_SECRET,
           "PATCHPILOT_OIDC_NAME": "Keycloak (test)"}
    server = ServerProcess(env, workers=0).start()
    try:
        yield {"url": server.url, "engine": engine}
    finally:
        server.stop()
        engine.dispose()
        if urls:
            next(urls, None)  # drop the schema


def test_sign_in_through_the_provider(browser: Any, site: dict[str, Any],
                                      provider: Provider) -> None:
    page = browser.new_context(locale="en-GB").new_page()
    page.goto(site["url"] + "/")
    assert "/login" in page.url
    assert page.inner_text("#oidc-sign-in") == "Sign in with Keycloak (test)"
    page.click("#oidc-sign-in")
    page.wait_for_url("**/overview")
    assert page.inner_text("header .who span") == "hanako (analyst)"
    with site["engine"].connect() as conn:
        row = conn.execute(select(users.c.source, users.c.external_id, users.c.role)
                           .where(users.c.name == "hanako")).one()
    assert tuple(row) == ("oidc", f"{provider.url} kc-7f3a", "analyst")
    # Logging out ends PatchPilot's session and the provider's, then back to the login page.
    page.click("header .who button:has-text('Log out')")
    page.wait_for_url("**/login")
    assert provider.logouts[-1]["client_id"] == CLIENT_ID
    page.goto(site["url"] + "/overview")
    assert "/login" in page.url
