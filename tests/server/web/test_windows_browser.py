"""A Windows host in a real headless Chromium against a real ``patchpilot server`` with
its worker (issue 16, "Done when": a browser test shows a Windows host's page with its
KBs): a real ``systeminfo`` uploaded through the form, no asset name typed, lands on the
page of the host it names, with its build and its KB count; the long KB list of a
Windows 7 host is collapsed and opens on a click."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchpilot.db.engine import make_engine, upgrade_schema
from tests.builders.browser import require_chromium, sign_in
from tests.builders.processes import ServerProcess, env_for, patchpilot
from tests.builders.web_data import PASSWORDS
from tests.conftest import pg_schema_url

require_chromium()  # without a browser: skipped (failed under CI), saying why

FOLDER = "windows/systeminfo"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[dict[str, Any]]:
    """An empty database, the page tests' users, a server with one embedded worker."""
    home = tmp_path_factory.mktemp("web-windows")
    urls = pg_schema_url() if request.param == "postgresql" else None
    url = next(urls) if urls else f"sqlite:///{home / 'patchpilot.db'}"
    engine = make_engine(url)
    upgrade_schema(engine)
    env = env_for(url, home)
    for name, (role, password) in PASSWORDS.items():
        patchpilot("user", "create", name, "--role", role, "--password-env",
                   "PP_TEST_PASSWORD", env={**env, "PP_TEST_PASSWORD": password})
    server = ServerProcess(env, workers=1).start()
    try:
        yield {"url": server.url, "engine": engine}
    finally:
        server.stop()
        engine.dispose()
        if urls:
            next(urls, None)  # drop the schema


def _upload(page: Any, site: dict[str, Any], path: Path) -> None:
    page.goto(site["url"] + "/assets/upload")
    page.set_input_files("#upload-form input[name=file]", str(path))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url(re.compile(r"/assets/\d+$"))


def test_a_windows_hosts_page_shows_its_build_and_kbs(browser: Any, site: dict[str, Any],
                                                      shared_data: Path) -> None:
    page = sign_in(browser, site, "sato")  # an analyst
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _upload(page, site, shared_data / FOLDER / "srv_2022_systeminfo.txt")
    assert page.inner_text("h1") == "WIN-RIBN7SM07BK"
    assert page.inner_text("#windows-product") == "Microsoft Windows Server 2022 Standard"
    assert page.inner_text("#windows-release") == "21H2"
    assert page.inner_text("#windows-build") == "10.0.20348 (UBR unknown — from systeminfo)"
    assert page.inner_text("#windows-arch") == "x64"
    assert page.inner_text("#windows-kb-count") == "3"
    assert page.locator("#windows-kbs li").all_inner_texts() == [
        "KB5004330", "KB5005039", "KB5005552"]
    assert page.locator("#windows-kbs li").first.is_visible()  # a short list is open
    assert page.locator("#end-of-life").count() == 0
    page.screenshot(path="/tmp/windows-asset.png", full_page=True)

    # A Windows 7 host's 219 KBs: collapsed with their count, opened by a click.
    _upload(page, site, shared_data / FOLDER / "7_sp1_x64_enterprise_en-us_A_systeminfo.txt")
    assert page.inner_text("h1") == "WIN7SP1X64"
    assert page.inner_text("#windows-kb-count") == "219"
    kbs = page.locator("#windows-kbs li")
    assert kbs.count() == 219 and not kbs.first.is_visible()
    page.click("#windows-kbs summary")
    assert kbs.first.is_visible() and kbs.first.inner_text() == "KB958488"
    assert errors == []
