"""Fixtures of the page tests in a real browser: Chromium, and a loaded site (a database
of real advisories and inventories, its users, a ``patchpilot server``) per database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchpilot.db.engine import make_engine, upgrade_schema
from tests.builders.browser import ARGS, CHROMIUM, require_chromium
from tests.builders.processes import ServerProcess, env_for, patchpilot
from tests.builders.web_data import PASSWORDS, load
from tests.conftest import pg_schema_url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         shared_data: Path) -> Iterator[dict[str, Any]]:
    """A loaded database, its users (made with `patchpilot user create`), a server."""
    home = tmp_path_factory.mktemp("web")
    urls = pg_schema_url() if request.param == "postgresql" else None
    url = next(urls) if urls else f"sqlite:///{home / 'patchpilot.db'}"
    engine = make_engine(url)
    upgrade_schema(engine)
    load(engine, shared_data, home / "feeds")
    env = env_for(url, home)
    for name, (role, password) in PASSWORDS.items():
        created = patchpilot("user", "create", name, "--role", role, "--password-env",
                             "PP_TEST_PASSWORD", env={**env, "PP_TEST_PASSWORD": password})
        assert f"{name} ({role})" in created.stdout
    server = ServerProcess(env, workers=0).start()
    try:
        yield {"url": server.url, "engine": engine}
    finally:
        server.stop()
        engine.dispose()
        if urls:
            next(urls, None)  # drop the schema


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium (a module's tests share it)."""
    with require_chromium().sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()
