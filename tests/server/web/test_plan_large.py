"""The patch plan on a generated large estate, in a real headless Chromium: the page of
items, an item's hosts expanded, the filters, and the group's technical PDF downloaded.

The estate is the dashboard benchmark's (bench/dashboard_data.py) at 1,500 assets × 60
findings: 90,000 findings, past the size a reader rebuilds the plan for itself
(plan_store.SYNC_LIMIT), so the plan is the worker's, as on a real estate of that size.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.dashboard_data import populate
from sqlalchemy import func, select

from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import plan_hosts
from patchpilot.findings.summary import refresh as refresh_summary
from patchpilot.scans import plan_store
from tests.builders.browser import require_chromium
from tests.builders.processes import ServerProcess, env_for, patchpilot
from tests.conftest import pg_schema_url

require_chromium()

ASSETS, PER_ASSET = 1_500, 60
PASSWORD = "plan-viewer-pass"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def large(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[dict[str, Any]]:
    """The generated estate, its plan as the worker builds it, a viewer, a server."""
    home = tmp_path_factory.mktemp("plan-large")
    urls = pg_schema_url() if request.param == "postgresql" else None
    url = next(urls) if urls else f"sqlite:///{home / 'patchpilot.db'}"
    engine = make_engine(url)
    upgrade_schema(engine)
    populate(engine, assets=ASSETS, per_asset=PER_ASSET)
    with engine.begin() as conn:
        refresh_summary(conn)
    env = env_for(url, home)
    patchpilot("user", "create", "kato", "--role", "viewer", "--password-env", "PP_PW",
               env={**env, "PP_PW": PASSWORD})
    server = ServerProcess(env, workers=0).start()
    try:
        yield {"url": server.url, "engine": engine, "env": env}
    finally:
        server.stop()
        engine.dispose()
        if urls:
            next(urls, None)


def _sign_in(browser: Any, url: str) -> Any:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(url + "/login")
    page.fill("input[name=username]", "kato")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/overview")
    return page


def test_plan_page_of_a_large_estate(browser: Any, large: dict[str, Any]) -> None:
    engine = large["engine"]
    with engine.connect() as conn:
        assert plan_store.open_findings(conn) > plan_store.SYNC_LIMIT
    page = _sign_in(browser, large["url"])
    # No plan yet and too large to build within a request: the page says it is being
    # computed, and shows nothing half-built.
    page.goto(large["url"] + "/plan")
    assert page.locator("#plan-stale").count() == 1
    assert page.locator("tr.plan-item").count() == 0
    # What an idle worker does; then the page shows the first 20 items of the plan.
    state = plan_store.refresh_if_stale(engine)
    assert state is not None and not state.stale
    with engine.connect() as conn:
        top = plan_store.read_page(conn, state, limit=20)
        total_hosts = conn.execute(select(func.count()).select_from(plan_hosts).where(
            plan_hosts.c.item_key == top.items[0].key)).scalar_one()
    page.goto(large["url"] + "/plan")
    assert page.locator("#plan-stale").count() == 0
    rows = page.locator("tr.plan-item")
    assert rows.count() == 20
    assert [rows.nth(i).get_attribute("data-key") for i in range(20)] == [
        i.key for i in top.items]
    assert page.inner_text("#plan-count").startswith(f"{top.total} changes")
    first = rows.first
    assert first.locator("ul.hosts li.host").count() == plan_store.FIRST_HOSTS
    counts = first.locator(".host-counts").inner_text()
    for key, n in top.items[0].hosts_by_priority.items():
        assert re.search(rf"{key}\s+{n:,} hosts?", counts) or f"{key} {n} host" in counts
    # Every host, a hundred at a time: the first click replaces the five with a hundred
    # and a "more" button, which loads the next hundred in its place.
    first.locator("button.more-hosts").click()
    first.locator("ul.hosts li.host").nth(99).wait_for()
    more = first.locator("li.more button")
    assert more.inner_text() == f"{total_hosts - 100} more hosts"
    more.click()
    first.locator("ul.hosts li.host").nth(min(200, total_hosts) - 1).wait_for()
    names = first.locator("ul.hosts li.host a").all_inner_texts()
    assert len(names) == min(200, total_hosts)
    assert len(set(names)) == len(names)  # no host twice across the pages
    # Filters: known exploited items of group site-1 only, each of its hosts in site-1.
    page.select_option("#plan-filters select[name=group]", "site-1")
    page.check("#plan-filters input[name=kev]")
    page.click("#plan-filters button[type=submit]")
    page.wait_for_url(re.compile(r".*/plan\?group=site-1&.*kev=yes.*"))
    filtered = page.locator("tr.plan-item")
    assert 0 < filtered.count() <= 20
    with engine.connect() as conn:
        query = plan_store.query_for(conn, group="site-1", kev=True)
        expected = plan_store.read_page(conn, state, query, limit=20)
    assert [filtered.nth(i).get_attribute("data-key") for i in range(filtered.count())] == [
        i.key for i in expected.items]
    assert all(i.known_exploited > 0 for i in expected.items)
    page.screenshot(path="/tmp/plan-large.png", full_page=False)


def test_plan_csv_download(browser: Any, large: dict[str, Any], tmp_path: Path) -> None:
    engine = large["engine"]
    state = plan_store.ensure_current(engine)
    if state.stale:
        state = plan_store.rebuild(engine)
    page = _sign_in(browser, large["url"])
    page.goto(large["url"] + "/plan?group=site-2")
    with page.expect_download() as info:
        page.click("#plan-csv")
    saved = tmp_path / "plan.csv"
    info.value.save_as(saved)
    lines = saved.read_text(encoding="utf-8").splitlines()
    with engine.connect() as conn:
        query = plan_store.query_for(conn, group="site-2")
        hosts = sum(len(i.hosts) for i in plan_store.iter_items(conn, state, query))
    assert lines[0].startswith("rank,ecosystem,package,fixed_version,vulns,risk,host,")
    assert len(lines) == 1 + hosts
    assert {line.split(",")[16] for line in lines[1:]} == {"site-2"}  # groups column


def test_group_technical_pdf(browser: Any, large: dict[str, Any], tmp_path: Path) -> None:
    """The group's technical report, as a patch team downloads it: past the size a
    request builds itself, the download becomes a report job that a worker builds; its
    page shows the progress, then the file -- organised by patch, with the size guard
    saying how many blocks the CSV/XLSX has beyond it."""
    worker = subprocess.Popen([sys.executable, "-m", "patchpilot.cli", "worker"],
                              env=large["env"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        page = _sign_in(browser, large["url"])
        page.goto(large["url"] + "/reports")
        page.select_option("#report-kind", "technical")
        page.select_option("#report-format", "pdf")
        page.select_option("#report-scope", "group:site-1")
        page.click("#report-download")
        page.wait_for_url(re.compile(r".*/reports/jobs/\d+$"))
        page.wait_for_selector("#report-job-download", timeout=240_000)
        with page.expect_download() as info:
            page.click("#report-job-download")
        saved = tmp_path / info.value.suggested_filename
        info.value.save_as(saved)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert re.fullmatch(r"patchpilot-technical-site-1-en-\d{4}-\d{2}-\d{2}\.pdf", saved.name)
    text = subprocess.run(["pdftotext", "-layout", str(saved), "-"], check=True,
                          capture_output=True, text=True).stdout
    with large["engine"].connect() as conn:
        state = plan_store.status(conn)
        top = plan_store.read_page(conn, state, plan_store.query_for(conn, group="site-1"),
                                   limit=1).items[0]
    # The first section is the group's first change of the plan page.
    first = next(line for line in text.splitlines() if re.match(r"\s*1\. ", line))
    assert f"{top.package} → {top.fixed_version}" in first, first
    assert "Technical report" in text and "site-1" in text
    assert "Shortened" in text  # 90,000 findings: the guard cut the blocks short
