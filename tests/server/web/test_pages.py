"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright)
against a real ``patchpilot server`` on a database loaded from real advisories and
inventories: what a user sees, not status codes.

The data (tests/builders/web_data.py): ALSA-2022:0818 (ten Critical firefox CVEs) and
PYSEC-2023-117 (Pygments, no CVSS: "Unknown") on two hosts -- 12 open findings, 10
Critical (P2) on plant2-ws-11, 2 Unknown (P3), none known exploited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from patchpilot.db.tables import audit_log, findings, triage_decisions
from patchpilot.reports.overview import overview
from tests.builders.browser import require_chromium, sign_in
from tests.builders.web_data import PASSWORDS

require_chromium()  # without a browser: skipped (failed under CI), saying why


def test_overview_shows_the_estate(browser: Any, site: dict[str, Any]) -> None:
    page = sign_in(browser, site, "sato")
    assert page.inner_text("#open-total") == "12"
    assert page.inner_text("#kev-count") == "0"
    assert page.inner_text("#overdue-count") == "0"
    assert page.inner_text("#not-scanned") == "0"
    # plotly (served from the wheel) drew the three charts.
    page.wait_for_selector("#chart-priority .main-svg")
    page.wait_for_selector("#chart-severity .main-svg")
    page.wait_for_selector("#chart-trend .main-svg")
    assert page.locator("#chart-priority .point").count() == 2  # P2 and P3 bars
    # The riskiest asset's row, cell by cell: its name, its 11 open findings, and the risk
    # the overview computed for it (the same figure the API and the executive report show).
    with site["engine"].connect() as conn:
        top_asset = overview(conn).top_assets[0]
    assert (top_asset["name"], top_asset["open"]) == ("plant2-ws-11", 11)
    cells = page.locator("#top-assets tbody tr:first-child td").all_inner_texts()
    assert cells == ["plant2-ws-11", "11", str(top_asset["risk"])]
    page.screenshot(path="/tmp/overview.png", full_page=True)


def test_filter_findings_by_severity(browser: Any, site: dict[str, Any]) -> None:
    page = sign_in(browser, site, "mori")
    page.goto(site["url"] + "/findings")
    assert page.inner_text("#finding-count") == "12 findings"
    page.select_option("select[name=severity]", "Critical")  # hx.js swaps the table
    page.wait_for_function(
        "() => document.querySelector('#finding-count').innerText === '10 findings'")
    rows = page.locator("#findings-table tbody tr.finding")
    assert rows.count() == 10
    texts = rows.all_inner_texts()
    assert all("firefox" in t and "plant2-ws-11" in t and "Critical" in t for t in texts)
    assert "P2: Critical × tier 3 (unknown asset)" in texts[0]
    assert "severity=Critical" in page.url  # the filter is in the address (shareable)
    page.fill("input[name=q]", "pygments")
    page.select_option("select[name=severity]", "")
    page.wait_for_function(
        "() => document.querySelector('#finding-count').innerText === '2 findings'")


def test_finding_page_and_accepting_a_risk(browser: Any, site: dict[str, Any]) -> None:
    engine = site["engine"]
    with engine.connect() as conn:
        target = conn.execute(select(findings.c.id).where(
            findings.c.vuln_id == "CVE-2022-26486")).scalar_one()
    page = sign_in(browser, site, "sato")
    page.goto(f"{site['url']}/findings/{target}")
    fields = page.inner_text("#fields")
    for text in ("CVE-2022-26486", "91.7.0-3.el8_5.alma", "Critical", "open", "Workaround"):
        assert text in fields, text
    assert page.inner_text("#priority-reason").endswith("P2: Critical × tier 3 (unknown asset)")
    assert "ALSA-2022:0818" in page.inner_text("#evidence")
    page.select_option("select[name=decision]", "accepted")
    page.fill("input[name=expires]", "2099-06-30")
    page.fill("textarea[name=reason]", "firefox is removed at the next window")
    page.click("#triage button[type=submit]")
    page.wait_for_selector("#state:has-text('risk accepted')")
    with engine.connect() as conn:
        assert conn.execute(select(findings.c.state).where(
            findings.c.id == target)).scalar_one() == "accepted"
        decision = conn.execute(select(triage_decisions).where(
            triage_decisions.c.vuln_id == "CVE-2022-26486")).one()
        assert (decision.decision, decision.created_by, decision.scope) == (
            "accepted", "sato", "asset")
        assert decision.expires_at.strftime("%Y-%m-%d") == "2099-06-30"
        audit = conn.execute(select(audit_log).where(
            audit_log.c.action == "triage.accepted")).one()
        assert (audit.actor, audit.target) == ("sato", "CVE-2022-26486")


def test_viewer_sees_no_triage_form(browser: Any, site: dict[str, Any]) -> None:
    page = sign_in(browser, site, "mori")
    page.goto(site["url"] + "/findings/11")
    assert "CVE-2022-40896" in page.inner_text("h1")
    assert page.locator("#triage").count() == 0


def test_switch_to_japanese(browser: Any, site: dict[str, Any]) -> None:
    page = sign_in(browser, site, "mori")
    page.click("#lang-ja")
    page.wait_for_selector("text=未対応の検出結果")
    assert page.inner_text("h1") == "概要"
    assert page.locator("html").get_attribute("lang") == "ja"
    page.goto(site["url"] + "/findings")
    assert "優先度の理由" in page.inner_text("#findings-table thead")
    page.click("#lang-en")  # back, so the other tests see English
    page.wait_for_selector("h1:has-text('Findings')")


def test_browser_language_decides_without_a_choice(browser: Any, site: dict[str, Any]
                                                   ) -> None:
    page = sign_in(browser, site, "sato", lang="ja-JP")
    assert page.inner_text("h1") == "概要"


def test_overview_under_the_content_security_policy(browser: Any, site: dict[str, Any]
                                                   ) -> None:
    """The pages' scripts are all files under /static: Chromium enforces the policy the
    server sends (server/headers.py) and reports no violation, and the charts are drawn."""
    page = browser.new_context(locale="en-GB").new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    answer = page.goto(site["url"] + "/login")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    page.fill("input[name=username]", "sato")
    page.fill("input[name=password]", PASSWORDS["sato"][1])
    page.click("button[type=submit]")
    page.wait_for_url("**/overview")
    for chart in ("priority", "severity", "trend"):
        page.wait_for_selector(f"#chart-{chart} .main-svg")
    assert page.locator("#chart-priority .point").count() == 2
    page.click("header nav a[href='/findings']")
    page.wait_for_url("**/findings")
    assert [p for p in problems if "Content Security Policy" in p or "CSP" in p] == []
    assert problems == []
