"""The patch plan, schedules and maintenance windows, asset filters and the error pages, in
a real headless Chromium against a real ``patchpilot server`` (the fixtures of
tests/server/web/conftest.py, one loaded site per database).

The estate (tests/builders/web_data.py) grows here by what a week of setup adds: two more
hosts (plant1-app-07 with the old firefox on AlmaLinux 8.9, plant3-ci on Debian 12 with no
finding), the CMDB export of examples/cmdb.csv (``patchpilot assets import
--create-missing``: plant1-db-01 and plant3-web-02 come in as placeholders, never
scanned), four groups made with ``patchpilot group create``, a schedule and a window
and a blackout made with ``patchpilot schedule add`` / ``window add``, 52 PLCs of plant 4
added as SSH targets (never scanned), and plant1-build-02's agent silent for 40 days.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import Engine, select

from patchpilot.db.tables import assets, audit_log, maintenance_windows
from tests.builders.browser import require_chromium, sign_in
from tests.builders.processes import env_for, patchpilot
from tests.builders.web_data import (
    ADMINS,
    GROUP_MEMBERS,
    PLCS,
    add_group_members,
    add_plcs,
    last_scanned_days_ago,
    load_more,
)
from tests.conftest import REPO

require_chromium()  # without a browser: skipped (failed under CI), saying why

TOKYO, BERLIN = ZoneInfo("Asia/Tokyo"), ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def estate(site: dict[str, Any], shared_data: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The site with more hosts, CMDB context, groups, a schedule, windows, an admin."""
    engine: Engine = site["engine"]
    env = env_for(engine.url.render_as_string(hide_password=False),
                  tmp_path_factory.mktemp("cli"))
    load_more(engine, shared_data)
    imported = patchpilot("assets", "import", str(REPO / "examples" / "cmdb.csv"),
                          "--create-missing", env=env)
    # plant1-build-02, in no CMDB row, gets the default criticality.
    assert ("3 updated (5 changed), 2 created, 0 unmatched, 0 ambiguous; 1 unknown assets "
            "given the default criticality") in " ".join(imported.stdout.split())
    for name, (role, password) in ADMINS.items():
        patchpilot("user", "create", name, "--role", role, "--password-env", "PP_TEST_PW",
                   env={**env, "PP_TEST_PW": password})
    patchpilot("group", "create", "plant1", "--description", "Plant 1 (Nagoya)",
               "--max-concurrent", "3", env=env)
    for group in ("plant2", "plant3", "plant4"):
        patchpilot("group", "create", group, env=env)
    add_group_members(engine, GROUP_MEMBERS)
    add_plcs(engine, "plant4")
    scheduled = patchpilot("schedule", "add", "--group", "plant1", "--cron", "0 2 * * 6",
                           "--tz", "Asia/Tokyo", env=env)
    patchpilot("window", "add", "--group", "plant1", "--rrule",
               "FREQ=WEEKLY;BYDAY=SA;BYHOUR=1;BYMINUTE=0", "--duration", "4h", "--tz",
               "Asia/Tokyo", "--description", "Saturday night patching", env=env)
    patchpilot("window", "add", "--group", "plant1", "--blackout", "--start",
               "2099-12-30T00:00:00+09:00", "--end", "2100-01-04T00:00:00+09:00",
               "--description", "Year-end close", env=env)
    last_scanned_days_ago(engine, "plant1-build-02", 40)
    yield {**site, "schedule_cli": scheduled.stdout}


def _next_weekly(after: datetime, zone: ZoneInfo, weekday: int, hour: int) -> datetime:
    """The first ``weekday`` at ``hour``:00 on ``zone``'s wall clock strictly after
    ``after`` (UTC) -- worked out by hand, not by the croniter/dateutil code under test."""
    local = after.astimezone(zone)
    day = local.date() + timedelta(days=(weekday - local.weekday()) % 7)
    for extra in (0, 7):
        start = datetime(day.year, day.month, day.day, hour, tzinfo=zone) + timedelta(days=extra)
        if start > after:
            return start.astimezone(UTC)
    raise AssertionError("unreachable")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _window_text(now: datetime) -> str:
    """What the plan shows for a plant-1 host: its window (Saturdays 01:00-05:00 Tokyo)."""
    start = _next_weekly(now - timedelta(hours=4), TOKYO, 5, 1)
    if start <= now:  # inside the window now: it may be patched at once
        return "next window "
    return f"next window {_utc(start)} UTC"


def _rows(page: Any, selector: str) -> list[str]:
    return [re.sub(r"\s+", " ", t).strip() for t in page.locator(selector).all_inner_texts()]


def test_plan_shows_the_estates_patch_plan(browser: Any, estate: dict[str, Any]  # noqa: F811
                                           ) -> None:
    page = sign_in(browser, estate, "mori")
    page.click("header nav a[href='/plan']")
    page.wait_for_selector("h1:has-text('Patch plan')")
    now = datetime.now(UTC)
    assert page.inner_text("#plan-count") == "2 changes"
    items = page.locator("#plan-table tr.plan-item")
    assert [items.nth(i).get_attribute("data-package") for i in range(2)] == [
        "firefox", "pygments"]
    firefox, pygments = items.nth(0), items.nth(1)
    assert firefox.locator(".summary").inner_text() == (
        "Upgrade firefox to 91.7.0-3.el8_5.alma: fixes 10 CVEs on 2 hosts")
    assert firefox.locator(".ecosystem").inner_text() == "AlmaLinux:8"
    firefox.locator("details summary").click()  # the vulnerabilities, folded by default
    assert firefox.locator(".vulns").inner_text() == ", ".join(
        ["CVE-2022-25235", "CVE-2022-25236", "CVE-2022-25315", "CVE-2022-26381",
         "CVE-2022-26383", "CVE-2022-26384", "CVE-2022-26386", "CVE-2022-26387",
         "CVE-2022-26485", "CVE-2022-26486"])
    assert firefox.locator(".priorities").inner_text().strip() == "P2 × 20"
    assert firefox.locator("code").inner_text() == "dnf upgrade firefox"
    hosts = _rows(firefox, "ul.hosts li")
    assert hosts[0].startswith("plant1-app-07 P2 " + _window_text(now))
    assert hosts[1] == "plant2-ws-11 P2 any time"
    assert len(hosts) == 2
    assert pygments.locator(".summary").inner_text() == (
        "Upgrade pygments to 2.15.1: fixes 1 CVE on 2 hosts")
    assert pygments.locator(".priorities").inner_text().strip() == "P3 × 2"
    assert pygments.locator("code").inner_text() == "pip install --upgrade 'Pygments>=2.15.1'"
    assert _rows(pygments, "ul.hosts li")[1] == "plant2-ws-11 P3 any time"
    assert _rows(pygments, "ul.hosts li")[0].startswith("plant1-build-02 P3 next window ")
    assert page.inner_text("#unfixed-table tbody") == "None"
    page.screenshot(path="/tmp/plan.png", full_page=True)

    # One group: only its hosts' share of each change.
    page.select_option("select[name=group]", "plant1")
    page.click("#plan-filters button[type=submit]")
    page.wait_for_url(re.compile(r".*/plan\?group=plant1&.*"))
    assert [t.split(" (")[0] for t in _rows(page, "#plan-table .summary")] == [
        "Upgrade firefox to 91.7.0-3.el8_5.alma: fixes 10 CVEs on 1 host",
        "Upgrade pygments to 2.15.1: fixes 1 CVE on 1 host"]
    page.select_option("select[name=group]", "plant3")
    page.click("#plan-filters button[type=submit]")
    page.wait_for_url(re.compile(r".*/plan\?group=plant3&.*"))
    assert page.inner_text("#plan-table tbody") == (
        "Nothing to patch: no open finding has a fixed version.")

    # The downloads answer the browser's session (the API itself wants a bearer token).
    page.goto(estate["url"] + "/plan")
    href = page.get_attribute("#plan-csv", "href")
    assert href == "/plan.csv"
    answer = page.request.get(estate["url"] + href)
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text())))
    assert [(r["rank"], r["package"], r["host"], r["priority"]) for r in rows] == [
        ("1", "firefox", "plant1-app-07", "P2"), ("1", "firefox", "plant2-ws-11", "P2"),
        ("2", "pygments", "plant1-build-02", "P3"), ("2", "pygments", "plant2-ws-11", "P3")]
    answer = page.request.get(estate["url"] + page.get_attribute("#plan-ansible", "href"))
    archive = zipfile.ZipFile(io.BytesIO(answer.body()))
    assert sorted(archive.namelist()) == ["inventory.ini", "inventory.yml", "playbook.yml"]
    plays = yaml.safe_load(archive.read("playbook.yml"))
    assert [p["hosts"] for p in plays] == ["pp_item_1", "pp_item_2"]
    assert page.request.get(estate["url"] + "/api/plan.csv").status == 401


def test_schedules_page_shows_the_cli_schedule_and_its_next_run(
        browser: Any, estate: dict[str, Any]) -> None:  # noqa: F811
    before = datetime.now(UTC)
    page = sign_in(browser, estate, "mori")
    page.click("header nav a[href='/schedules']")
    page.wait_for_selector("h1:has-text('Schedules and maintenance windows')")
    after = datetime.now(UTC)
    assert [s.get_attribute("data-group") for s in page.locator("section.group").all()] == [
        "plant1", "plant2", "plant3", "plant4"]
    plant1 = page.locator("section.group[data-group=plant1]")
    assert plant1.locator(".members").inner_text() == "2"
    assert plant1.locator(".concurrency").inner_text() == "3"
    # Saturdays 02:00 in Tokyo: Friday 17:00 UTC.  The CLI printed the same first run.
    expected = {_next_weekly(moment, TOKYO, 5, 2) for moment in (before, after)}
    row = plant1.locator("tr.schedule")
    assert row.count() == 1
    cells = _rows(row, "td")
    assert cells[:5] == ["1", "cron", "0 2 * * 6", "Asia/Tokyo", "yes"]
    assert cells[5] in {_utc(e) for e in expected}
    shown = next(e for e in expected if _utc(e) == cells[5])
    assert cells[6] == shown.astimezone(TOKYO).strftime("%Y-%m-%d 02:00 Asia/Tokyo")
    assert f"next run {shown.isoformat()}" in " ".join(estate["schedule_cli"].split())
    windows = plant1.locator("tr.window")
    assert windows.count() == 2
    window = _rows(windows.nth(0), "td")
    assert window[:5] == ["1", "window", "FREQ=WEEKLY;BYDAY=SA;BYHOUR=1;BYMINUTE=0 · for 240 min",
                          "Asia/Tokyo", "Saturday night patching"]
    opening = _next_weekly(before, TOKYO, 5, 1)
    if opening - before < timedelta(days=7) - timedelta(hours=4):
        assert window[5] == (f"{_utc(opening)} UTC "
                             f"({opening.astimezone(TOKYO):%Y-%m-%d} 01:00 Asia/Tokyo)")
    else:  # the window is open as the test runs
        assert window[5].startswith("open now, until ")
    blackout = _rows(windows.nth(1), "td")
    assert blackout == ["2", "blackout", "2099-12-29 15:00 – 2100-01-03 15:00 UTC", "UTC",
                        "Year-end close", "2099-12-29 15:00 UTC"]
    plant2 = page.locator("section.group[data-group=plant2]")
    assert plant2.locator(".members").inner_text() == "1"
    assert plant2.locator(".concurrency").inner_text() == "5"
    assert plant2.locator(".next-allowed").inner_text() == "any time"
    assert plant2.locator("tr.schedule").count() == 0
    assert page.locator("section.group[data-group=plant4] .members").inner_text() == "52"
    # A viewer reads; only admins get the forms.
    assert page.locator("#schedule-form, #window-form").count() == 0
    assert page.locator("section.group form").count() == 0
    page.screenshot(path="/tmp/schedules.png", full_page=True)


def test_admin_adds_a_window_through_the_form(browser: Any, estate: dict[str, Any]  # noqa: F811
                                              ) -> None:
    engine: Engine = estate["engine"]
    page = sign_in(browser, estate, "kato")
    page.goto(estate["url"] + "/schedules")
    form = page.locator("#window-form")
    form.locator("select[name=group]").select_option("plant3")
    form.locator("input[name=rrule]").fill("FREQ=WEEKLY;BYDAY=SU;BYHOUR=3;BYMINUTE=0")
    form.locator("input[name=duration]").fill("two hours")
    form.locator("input[name=timezone]").fill("Europe/Berlin")
    form.locator("input[name=description]").fill("Sunday CI maintenance")
    form.locator("button[type=submit]").click()
    # Refused with the reason, on the page, the form as typed.
    page.wait_for_selector("#window-error")
    assert page.inner_text("#window-error") == (
        "The window was not added: duration: 'two hours' is not like 4h, 90m, 1h30m or 2d")
    assert page.locator("section.group[data-group=plant3] tr.window").count() == 0
    page.screenshot(path="/tmp/schedules-admin.png", full_page=True)
    form = page.locator("#window-form")
    assert form.locator("input[name=rrule]").input_value() == (
        "FREQ=WEEKLY;BYDAY=SU;BYHOUR=3;BYMINUTE=0")
    form.locator("input[name=duration]").fill("2h")
    before = datetime.now(UTC)
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/schedules")
    plant3 = page.locator("section.group[data-group=plant3]")
    plant3.locator("tr.window").wait_for()
    cells = _rows(plant3.locator("tr.window"), "td")
    with engine.connect() as conn:
        stored = conn.execute(select(maintenance_windows).where(
            maintenance_windows.c.description == "Sunday CI maintenance")).one()
        audit = conn.execute(select(audit_log).where(
            audit_log.c.target == f"window:{stored.id}")).one()
    assert (stored.kind, stored.rrule, stored.duration_minutes, stored.timezone) == (
        "window", "FREQ=WEEKLY;BYDAY=SU;BYHOUR=3;BYMINUTE=0", 120, "Europe/Berlin")
    assert (audit.actor, audit.action) == ("kato", "window.create")
    opening = _next_weekly(before, BERLIN, 6, 3)
    assert cells[:5] == [str(stored.id), "window",
                         "FREQ=WEEKLY;BYDAY=SU;BYHOUR=3;BYMINUTE=0 · for 120 min",
                         "Europe/Berlin", "Sunday CI maintenance"]
    if opening - before < timedelta(days=7) - timedelta(hours=2):
        assert cells[5] == (f"{_utc(opening)} UTC "
                            f"({opening.astimezone(BERLIN):%Y-%m-%d} 03:00 Europe/Berlin)")
        assert plant3.locator(".next-allowed").inner_text() == f"{_utc(opening)} UTC"
    # The admin removes it again, once the browser's confirmation is answered (the other
    # tests see plant 3 as it was).
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    plant3.locator("tr.window button[type=submit]").click()
    page.wait_for_url("**/schedules")
    assert page.locator("section.group[data-group=plant3] tr.window").count() == 0
    assert asked == ["Remove this window or blackout?"]
    with engine.connect() as conn:
        assert conn.execute(select(audit_log.c.actor).where(
            audit_log.c.action == "window.delete")).scalar_one() == "kato"


def test_asset_filters_narrow_the_list(browser: Any, estate: dict[str, Any]  # noqa: F811
                                       ) -> None:
    page = sign_in(browser, estate, "mori")
    page.goto(estate["url"] + "/assets")
    assert page.inner_text("#asset-count") == "58 assets"

    def names() -> list[str]:
        return _rows(page, "#assets-table tr.asset td:first-child")

    def apply(**fields: str) -> None:
        page.goto(estate["url"] + "/assets")
        form = page.locator("#asset-filters")
        for name, value in fields.items():
            target = form.locator(f"[name={name}]")
            if target.evaluate("e => e.tagName") == "SELECT":
                target.select_option(value)
            else:
                target.fill(value)
        form.locator("button[type=submit]").click()
        page.wait_for_load_state()

    apply(tag="pci")
    assert names() == ["plant1-app-07", "plant1-db-01"]
    assert "tag=pci" in page.url  # the filters are in the address
    apply(tier="1")
    assert names() == ["plant1-app-07", "plant1-db-01"]
    apply(tier="4")
    assert names() == ["plant3-ci"]
    apply(os="linux")
    assert names() == ["plant1-app-07", "plant3-ci"]
    apply(os="ALMA")
    assert names() == ["plant1-app-07"]
    row = _rows(page, "#assets-table tr.asset td")
    assert row[:5] == ["plant1-app-07", "AlmaLinux 8.9 (Midnight Oncilla)", "1",
                       "Order portal", "10"]
    apply(group="plant1")
    assert names() == ["plant1-app-07", "plant1-build-02"]
    apply(group="plant1", scan="older", days="30")
    assert names() == ["plant1-build-02"]
    apply(scan="within", days="30")
    assert names() == ["plant1-app-07", "plant2-ws-11", "plant3-ci"]
    apply(scan="older", days="30")
    assert page.inner_text("#asset-count") == "55 assets"
    # The silent agent, and the CMDB's placeholders and the PLCs that were never scanned.
    assert [n for n in names() if not n.startswith("plant4-plc-")] == [
        "plant1-build-02", "plant1-db-01", "plant3-web-02"]
    apply(scan="never", q="plant3")
    assert names() == ["plant3-web-02"]
    assert _rows(page, "#assets-table tr.asset td")[5] == "never scanned"
    apply(group="plant2", tag="pci")
    assert names() == [] and page.inner_text("#asset-count") == "0 assets"

    # 52 PLCs never scanned: two pages, and the pager keeps the filters.
    apply(group="plant4", scan="never")
    assert page.inner_text("#asset-count") == "52 assets"
    assert names() == PLCS[:50]
    page.click("#next-page")
    page.wait_for_url("**page=2")
    assert "group=plant4" in page.url and "scan=never" in page.url
    assert names() == PLCS[50:]
    assert page.locator("select[name=group]").input_value() == "plant4"
    assert page.locator("select[name=scan]").input_value() == "never"


def test_not_found_page_in_japanese(browser: Any, estate: dict[str, Any]  # noqa: F811
                                    ) -> None:
    page = sign_in(browser, estate, "mori", lang="ja-JP")
    answer = page.goto(estate["url"] + "/assets/99999")
    assert answer.status == 404
    assert page.inner_text("h1") == "ページが見つかりません"
    assert page.inner_text("#problem p:first-of-type") == (
        "そのページは存在しないか、表示していた内容が削除されています。")
    assert page.inner_text("#problem-detail") == "no asset 99999"
    assert page.locator("html").get_attribute("lang") == "ja"
    assert page.inner_text("header nav a[href='/plan']") == "パッチ計画"
    page.click("#back-to-overview")
    page.wait_for_url("**/overview")
    assert page.inner_text("h1") == "概要"
    # A path that is no page at all, and the API's own 404 stays JSON.
    answer = page.goto(estate["url"] + "/no/such/page")
    assert answer.status == 404 and page.inner_text("h1") == "ページが見つかりません"
    answer = page.request.get(estate["url"] + "/api/no/such/route")
    assert answer.status == 404 and answer.json() == {"detail": "Not Found"}



def test_coverage_on_the_overview_and_the_asset_page(browser: Any,  # noqa: F811
                                                     estate: dict[str, Any]) -> None:
    # The knowledge base holds one AlmaLinux 8 erratum and one PyPI advisory, no Debian
    # data: no ecosystem of the estate is covered, plant3-ci's Debian 12 (this build
    # machine's 710 packages) by nothing at all.  Its "no findings" is not "clean".
    page = sign_in(browser, estate, "mori")
    assert page.is_visible("#coverage-notice")
    assert _rows(page, "#coverage-table tbody tr") == [
        "Debian:12 710 1 0 not covered",
        "AlmaLinux:8 2 2 1 not covered",  # firefox on plant2-ws-11 and plant1-app-07
        "PyPI 2 2 1 not covered"]  # Pygments on plant2-ws-11 and plant1-build-02
    with estate["engine"].connect() as conn:
        ci = conn.execute(select(assets.c.id).where(assets.c.name == "plant3-ci")).scalar_one()
    page = sign_in(browser, estate, "mori", lang="ja-JP")
    page.goto(f"{estate['url']}/assets/{ci}")
    assert _rows(page, "#coverage-notice p.not-covered") == [
        "未カバー: Debian:12 のパッケージ 710 個 (読み込み済みアドバイザリ 0 件)"]
    assert _rows(page, "#coverage-table tbody tr") == ["Debian:12 710 0 未カバー"]
