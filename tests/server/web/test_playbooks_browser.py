"""The playbooks page in a real headless Chromium against a real ``patchpilot server``: an
admin opens it from the navigation, loads a shipped example, pastes a playbook, sees a
refused condition's field and position, previews the playbook over the stored events
(a Nessus report imported: its dry-run rows), saves it and sees it listed -- hx.js only,
no inline script, no CSP violation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchpilot.db.engine import make_engine, upgrade_schema
from tests.builders.browser import LOGINS, require_chromium, sign_in
from tests.builders.playbook_estate import CVE_2007, build_estate
from tests.builders.processes import ServerProcess, env_for, patchpilot
from tests.conftest import pg_schema_url

require_chromium()  # without a browser: skipped (failed under CI), saying why

TIER1 = """\
name: high-on-tier1
description: High findings on tier-1 web servers.
trigger: {events: [new, reopened]}
condition: >-
  finding.severity == "High" && asset.criticality == 1 && "dmz" in asset.groups
  && finding.vuln_id.startsWith("CVE-2007-")
actions:
  - type: email
    with: {to: ["{{ asset.owner }}"], lang: ja}
  - type: webhook
    with: {url: "https://soc.example.com/h", secret_env: SOC_HOOK_KEY}
"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         shared_data: Path) -> Iterator[dict[str, Any]]:
    """A database with the estate's 16 stored events, its users (an admin among them) and
    a server without workers (nothing is delivered: the page only stores and previews)."""
    home = tmp_path_factory.mktemp("web-playbooks")
    urls = pg_schema_url() if request.param == "postgresql" else None
    url = next(urls) if urls else f"sqlite:///{home / 'patchpilot.db'}"
    engine = make_engine(url)
    upgrade_schema(engine)
    build_estate(engine, shared_data)
    env = env_for(url, home)
    for name, (role, password) in LOGINS.items():
        patchpilot("user", "create", name, "--role", role, "--password-env",
                   "PP_TEST_PASSWORD", env={**env, "PP_TEST_PASSWORD": password})
    server = ServerProcess(env, workers=0).start()
    try:
        yield {"url": server.url, "engine": engine}
    finally:
        server.stop()
        engine.dispose()
        if urls:
            next(urls, None)  # drop the schema


def test_an_admin_previews_and_saves_a_playbook(browser: Any, site: dict[str, Any]) -> None:
    page = sign_in(browser, site, "kato")  # an admin
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.click("header nav a[href='/playbooks']")
    page.wait_for_url("**/playbooks")
    assert page.inner_text("h1") == "Playbooks"
    assert page.inner_text("#no-playbooks") == "No playbooks yet."
    # A shipped example loads into the editor (hx.js swaps the text area).
    page.select_option("#playbook-example", "critical-on-tier1-mail-owner.yaml")
    # (Its text: the swapped-in element's content; wait_for_function would need eval,
    # which the page's CSP forbids.)
    page.locator("#playbook-document", has_text="critical-on-tier1-mail-owner").wait_for()
    assert page.input_value("#playbook-document").startswith("# Mail a server's owner")
    # A condition that does not compile: its field and position.
    page.fill("#playbook-document", TIER1.replace('== "High"', '== == "High"'))
    page.click("#playbook-validate")
    page.wait_for_selector("#playbook-problem")
    assert page.inner_text("#playbook-problem code.field") == "condition"
    assert page.inner_text("#playbook-problem pre.message").startswith(
        "condition: does not compile at line 1, column 21:")
    # The playbook pasted: valid, and its dry run over the last 30 days.
    page.fill("#playbook-document", TIER1)
    page.click("#playbook-validate")
    page.wait_for_selector("#playbook-valid")
    page.fill("#playbook-days", "30")
    page.click("#playbook-preview")
    page.wait_for_selector("#dry-run-table")
    assert page.inner_text("#dry-run-summary") == (
        "Dry run over the last 30 days: 6 events would fire, 12 actions. Nothing was sent.")
    rows = page.locator("#dry-run-table tr.dry-run-row")
    assert rows.count() == 12
    first = rows.nth(0).locator("td").all_inner_texts()
    assert (first[0], first[2:]) == ("10", ["new", "testphp", CVE_2007[0], "High",
                                            "0: email"])
    assert rows.nth(11).locator("td").all_inner_texts()[4:] == [CVE_2007[5], "High",
                                                                 "1: webhook"]
    page.screenshot(path="/tmp/playbooks-preview.png", full_page=True)
    # Saved: listed, version 1, and the editor shows it.
    page.click("#playbook-save")
    page.wait_for_url("**/playbooks?edit=high-on-tier1&saved=1")
    assert page.inner_text("#playbook-saved") == "Saved: version 1."
    listed = page.locator("#playbooks-table tr.playbook[data-name='high-on-tier1']")
    assert listed.count() == 1
    assert listed.locator("td.version").inner_text() == "1"
    assert listed.locator("td.enabled").inner_text().startswith("yes")
    assert page.input_value("#playbook-document") == TIER1
    page.screenshot(path="/tmp/playbooks-saved.png", full_page=True)
    assert LOGINS["kato"][0] == "admin"
    assert errors == []  # no CSP violation, no script error
