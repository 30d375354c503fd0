"""The reports page and a live sweep in a real headless Chromium, against a real
``patchpilot server`` (with its embedded worker) and a real ``patchpilot agent`` process.

The data is the page tests' (tests/builders/web_data.py): ALSA-2022:0818 (ten Critical
firefox CVEs) and PYSEC-2023-117 (CVE-2022-40896, Pygments < 2.15.0, no CVSS) on two
hosts -- 12 open findings, 10 Critical (P2) on plant2-ws-11, 2 Unknown (P3).  On top: an
asset group, and a report schedule added with ``patchpilot report schedule add``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from patchpilot.assets.groups import add_members, create_group
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import agents, asset_packages, assets, sweep_results
from patchpilot.knowledge.versions import version_key
from tests.builders.browser import require_chromium, sign_in
from tests.builders.processes import ServerProcess, env_for, patchpilot, wait_for
from tests.builders.web_data import PASSWORDS, load
from tests.conftest import pg_schema_url

require_chromium()  # without a browser: skipped (failed under CI), saying why

CVE = "CVE-2022-40896"  # PYSEC-2023-117: Pygments before 2.15.0
FIRST_FIXED_PYGMENTS = "2.15.0"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         shared_data: Path) -> Iterator[dict[str, Any]]:
    """The loaded database, its users, a group, a report schedule, a server whose
    embedded worker matches what agents upload, and an enrolment token."""
    home = tmp_path_factory.mktemp("web-reports")
    urls = pg_schema_url() if request.param == "postgresql" else None
    url = next(urls) if urls else f"sqlite:///{home / 'patchpilot.db'}"
    engine = make_engine(url)
    upgrade_schema(engine)
    load(engine, shared_data, home / "feeds")
    with engine.begin() as conn:
        plant2 = create_group(conn, "sato", "plant2")
        ws11 = conn.execute(select(assets.c.id).where(assets.c.name == "plant2-ws-11")
                            ).scalar_one()
        add_members(conn, "sato", plant2, [ws11])
    env = env_for(url, home)
    for name, (role, password) in PASSWORDS.items():
        patchpilot("user", "create", name, "--role", role, "--password-env",
                   "PP_TEST_PASSWORD", env={**env, "PP_TEST_PASSWORD": password})
    added = patchpilot("report", "schedule", "add", "--cron", "0 8 1 * *", "--tz",
                       "Asia/Tokyo", "--to", "manager@plant.example", "--lang", "ja",
                       env=env)
    assert "report schedule 1: executive (pdf, ja)" in added.stdout, added.stdout
    enrol = patchpilot("enrol-token", "create", env=env).stdout.strip()
    server = ServerProcess(env, workers=1).start()
    try:
        yield {"url": server.url, "engine": engine, "env": env, "enrol": enrol,
               "home": home}
    finally:
        server.stop()
        engine.dispose()
        if urls:
            next(urls, None)  # drop the schema


def pdf_text(path: Path) -> str:
    """The PDF's text layer, laid out as on the page."""
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def test_download_the_executive_report_in_japanese(browser: Any, site: dict[str, Any],
                                                   tmp_path: Path) -> None:
    page = sign_in(browser, site, "mori")  # a viewer, English browser
    page.goto(site["url"] + "/reports")
    assert page.inner_text("h1") == "Reports"
    # The choices come from the database; the language defaults to the user's.
    assert page.input_value("#report-lang") == "en"
    scopes = page.locator("#report-scope option").all_inner_texts()
    assert scopes == ["Whole estate", "plant2"]
    schedule = page.inner_text("#report-schedules tbody tr")
    for text in ("Executive report", "PDF", "日本語", "Whole estate", "0 8 1 * *",
                 "Asia/Tokyo", "manager@plant.example", "23:00"):
        assert text in schedule, (text, schedule)

    page.select_option("#report-kind", "executive")
    page.select_option("#report-format", "pdf")
    page.select_option("#report-lang", "ja")
    with page.expect_download() as info:
        page.click("#report-download")
    download = info.value
    assert re.fullmatch(r"patchpilot-executive-ja-\d{4}-\d{2}-\d{2}\.pdf",
                        download.suggested_filename), download.suggested_filename
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    text = pdf_text(saved)
    assert "脆弱性リスクレポート" in text and "対象: 全資産" in text
    # The tiles: 12 open, no P1, no KEV, none overdue, no SLA figures yet, 2 assets.
    labels = next(i for i, line in enumerate(text.splitlines()) if "未対応の検出" in line)
    assert text.splitlines()[labels - 1].split() == ["12", "0", "0", "0", "–", "–", "2"]
    rows = {line.split()[0]: line.split()[1] for line in text.splitlines()
            if re.match(r"\s*P[1-4]\s+\d+", line)}
    assert rows == {"P1": "0", "P2": "10", "P3": "2", "P4": "0"}
    assert re.search(r"緊急\s+10", text) and re.search(r"不明\s+2", text)
    first = next(line for line in text.splitlines() if line.strip().startswith("1 "))
    assert "firefox → 91.7.0-3.el8_5.alma (AlmaLinux:8)" in first
    assert first.split()[-5:] == ["10", "1", "0", "0", "いいえ"]  # CVEs, hosts, P1, KEV, reboot
    assert "pygments → 2.15.1 (PyPI)" in text
    assert "悪用が確認された未対応の検出はありません。" in text
    page.screenshot(path="/tmp/reports.png", full_page=True)


def test_a_sweep_fills_in_live_as_the_agent_confirms(browser: Any, site: dict[str, Any],
                                                     tmp_path: Path) -> None:
    engine, env = site["engine"], site["env"]
    state = tmp_path / "agent"
    agent_args = ("agent", "--server", site["url"], "--state-dir", str(state), "--name",
                  "build-agent", "--poll-wait", "0", "--once")
    # This machine enrols as an agent host and uploads its inventory; the server's worker
    # matches it, so the sweep's first answer covers it as well.
    first = patchpilot(*agent_args, "--enrol", site["enrol"], env=env)
    assert first.returncode == 0, first.stderr

    def agent_asset() -> Any:
        with engine.connect() as conn:
            return conn.execute(
                select(assets.c.id, assets.c.name).join(agents, agents.c.asset_id == assets.c.id)
                .where(agents.c.name == "build-agent", assets.c.last_inventory_id.is_not(None))
            ).first()

    host = wait_for(agent_asset, timeout=60)
    # This machine is real: whether one of its Pythons has a Pygments before 2.15.0 (Debian
    # 12's python3-pygments is 2.14.0) decides its answer, first and confirmed alike.
    with engine.connect() as conn:
        versions = conn.execute(select(asset_packages.c.version).where(
            asset_packages.c.asset_id == host.id, asset_packages.c.ecosystem == "PyPI",
            asset_packages.c.name == "pygments")).scalars().all()
    fixed = version_key("PyPI", FIRST_FIXED_PYGMENTS)
    vulnerable = any(version_key("PyPI", v) < fixed for v in versions)

    page = sign_in(browser, site, "sato")  # an analyst
    page.goto(site["url"] + "/sweeps")
    page.fill("#sweep-form input[name=vuln]", CVE)
    page.click("#sweep-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/sweeps/\d+$"))
    assert CVE in page.inner_text("h1")
    # The first answer, from the stored inventories: both loaded hosts run Pygments 2.14.0.
    assert page.inner_text("#initial-affected") == ("3" if vulnerable else "2")
    rows = {r.split("\t")[0]: r.split("\t")[1:] for r in
            page.locator("table tbody tr").all_inner_texts()}
    for loaded in ("plant2-ws-11", "plant1-build-02"):
        assert rows[loaded][:2] == ["affected", "affected"]
        assert rows[loaded][2].lower() == "pygments 2.14.0"
    # Nobody can refresh those two; the agent's host waits for its confirmation.
    assert rows[host.name][:2] == ["affected" if vulnerable else "not affected", "pending"]
    assert "pending 1" in page.inner_text("#status-json")
    assert "affected 2" in page.inner_text("#status-json")
    assert page.inner_text("#sweep-state") == "running"

    # The agent takes the sweep's refresh job, collects and uploads; the worker matches
    # the fresh inventory and settles the sweep.  The page, not reloaded, follows it.
    again = patchpilot(*agent_args, env=env)
    assert again.returncode == 0, again.stderr
    page.wait_for_function(
        "() => document.getElementById('sweep-state').textContent === 'done'", timeout=60_000)
    live = page.inner_text("#status-json")
    assert "pending 0" in live and "affected 2" in live

    expected = "confirmed" if vulnerable else "not_affected"
    with engine.connect() as conn:
        assert conn.execute(select(sweep_results.c.status).where(
            sweep_results.c.asset_id == host.id)).scalar_one() == expected
    assert re.search(expected.replace("_", " ") + " 1", live), live
    # The table follows too: the host's row shows its confirmation without a reload.
    final = "confirmed" if vulnerable else "not affected"
    page.wait_for_function(
        "([name, status]) => [...document.querySelectorAll('#sweep-results tbody tr')]"
        ".some(r => r.cells[0].innerText === name && r.cells[2].innerText === status)",
        arg=[host.name, final], timeout=10_000)
    page.reload()
    rows = {r.split("\t")[0]: r.split("\t")[1:] for r in
            page.locator("table tbody tr").all_inner_texts()}
    assert rows[host.name][1] == ("confirmed" if vulnerable else "not affected")
    assert page.inner_text("#sweep-state") == "done"


def test_a_report_job_shows_its_progress_and_downloads(browser: Any, site: dict[str, Any],
                                                       tmp_path: Path) -> None:
    """The reports page sends a report to the background: the job's page follows it (hx.js
    polling) until the download link appears; the file is the group's findings; the
    reports page lists the job."""
    page = sign_in(browser, site, "mori")  # a viewer
    page.goto(site["url"] + "/reports")
    page.select_option("#report-kind", "technical")
    page.select_option("#report-format", "xlsx")
    page.select_option("#report-scope", "group:plant2")
    page.click("#report-background")
    page.wait_for_url(re.compile(r".*/reports/jobs/\d+$"))
    job_id = page.url.rsplit("/", 1)[1]
    assert page.inner_text("h1") == f"Report job {job_id}"
    what = page.inner_text("#report-job-what")
    assert "Technical report, XLSX, English" in what and "Group: plant2" in what
    first = page.get_attribute("#report-job", "data-state")
    assert first in ("queued", "running", "done")
    # The progress box is swapped in by hx.js every second until the job is done.
    page.wait_for_selector("#report-job-download", timeout=90_000)
    assert page.inner_text("#report-job-state") == "done"
    assert page.get_attribute("#report-job", "hx-get") is None  # polling stopped
    with page.expect_download() as info:
        page.click("#report-job-download")
    download = info.value
    assert re.fullmatch(r"patchpilot-technical-plant2-en-\d{4}-\d{2}-\d{2}\.xlsx",
                        download.suggested_filename), download.suggested_filename
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    sheet = load_workbook(saved)["Findings"]
    # plant2-ws-11's ten firefox findings and its Pygments one, under the header.
    assert sheet.max_row == 12
    assert {sheet.cell(r, 1).value for r in range(2, 13)} == {"plant2-ws-11"}
    assert sorted({sheet.cell(r, 9).value for r in range(2, 13)}) == ["firefox", "pygments"]
    page.goto(site["url"] + "/reports")
    row = page.inner_text("#report-jobs tbody tr")
    for text in (job_id, "Technical report", "XLSX", "Group: plant2", "mori", "done"):
        assert text in row, (text, row)
