"""The page tests' browser: Debian's headless ``chromium``, driven by Playwright.

A page test module calls :func:`require_chromium` at its top, so that without a browser
it is skipped as a whole, saying why -- or, under CI, fails (as PostgreSQL and sshd do):
the page tests must never vanish silently.  The ``browser`` and ``site`` fixtures are in
tests/server/web/conftest.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.builders.web_data import ADMINS, PASSWORDS
from tests.conftest import IN_CI

CHROMIUM = os.environ.get("PATCHPILOT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
# Every user of the page tests' estates: name -> (role, password).
LOGINS = {**PASSWORDS, **ADMINS}


def require_chromium() -> Any:
    """Playwright's sync API, when a browser is there; else skip the calling module (at
    its import), or fail it under CI."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if IN_CI:
            pytest.fail(f"no chromium at {CHROMIUM} under CI=true: .ci/run installs Debian's",
                        pytrace=False)
        pytest.skip(f"no chromium at {CHROMIUM} (.ci/run installs Debian's)",
                    allow_module_level=True)
    return sync_api


def sign_in(browser: Any, site: dict[str, Any], name: str, lang: str = "en-GB") -> Any:
    """A new browser page signed in as ``name`` with an ``Accept-Language`` of ``lang``,
    on the overview: from ``/`` (``make run``'s URL) via the login page."""
    page = browser.new_context(locale=lang, viewport={"width": 1400, "height": 1000}
                               ).new_page()
    page.goto(site["url"] + "/")
    assert "/login" in page.url
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", LOGINS[name][1])
    page.click("button[type=submit]")
    page.wait_for_url("**/overview")
    return page
