"""GET /api/reports/{kind} and /api/report-schedules on the real estate of the report
tests (tests/builders/report_estate.py): the PDF's text carries the real figures, the CSV rows
are exact, a bad parameter gets a message naming it, schedules are audited."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from patchpilot.assets.groups import add_members, create_group
from patchpilot.clock import now_utc
from patchpilot.db.tables import audit_log, report_schedules
from patchpilot.reports.exports import ASSET_COLUMNS
from patchpilot.reports.mail import add_schedule
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token, set_password
from tests.builders.report_estate import (
    FIXED,
    KEV_ASSETS,
    KEV_CVES,
    KEV_FINDINGS,
    OPEN,
    OVERDUE,
    P1,
    WITHIN,
    pdf_text,
    report_estate,
)
from tests.builders.sessions import sign_in as login


@pytest.fixture
def estate(engine: Engine, feed_dir: Callable[..., Path]) -> dict[str, int]:
    """The report tests' estate (``tests.builders.report_estate``)."""
    return report_estate(engine, feed_dir)


@pytest.fixture
def client(estate: dict[str, int], engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


def _auth(engine: Engine, role: Role) -> dict[str, str]:
    token = create_api_token(engine, user=f"{role.value}-u", role=role)[0]
    return {"Authorization": f"Bearer {token}"}


def test_executive_pdf_has_the_real_figures(client: TestClient, engine: Engine,
                                            tmp_path: Path) -> None:
    viewer = _auth(engine, Role.VIEWER)
    answer = client.get("/api/reports/executive", headers=viewer,
                        params={"format": "pdf", "lang": "en"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    day = now_utc().strftime("%Y-%m-%d")
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="patchpilot-executive-en-{day}.pdf"')
    pdf = tmp_path / "executive.pdf"
    pdf.write_bytes(answer.content)
    text = pdf_text(pdf)
    assert "Vulnerability risk report" in text and "Whole estate" in text
    tiles = next(line for line in text.splitlines() if line.strip().startswith(str(OPEN)))
    assert tiles.split() == [str(OPEN), str(P1), str(KEV_FINDINGS), str(OVERDUE), "50%",
                             "0", "days", "4"]
    assert f"Fixed within SLA: {WITHIN} of {FIXED + OVERDUE}" in text
    assert (f"{KEV_FINDINGS} open findings of {KEV_CVES} known-exploited CVEs on "
            f"{KEV_ASSETS} assets") in text

    # The same report in Japanese, of one group (plant1: the two web servers).
    answer = client.get("/api/reports/executive", headers=viewer,
                        params={"format": "pdf", "lang": "ja", "group": "plant1"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="patchpilot-executive-plant1-ja-{day}.pdf"')
    pdf.write_bytes(answer.content)
    text = pdf_text(pdf)
    assert "脆弱性リスクレポート" in text and "plant1" in text
    # plant1's open findings: 51 + 50 (the figures of tests/reports' group report).
    assert "101" in text.split()


def test_csv_rows_are_exact(client: TestClient, engine: Engine) -> None:
    viewer = _auth(engine, Role.VIEWER)
    answer = client.get("/api/reports/executive", headers=viewer,
                        params={"format": "csv", "group": "plant1"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"].startswith(
        'attachment; filename="patchpilot-executive-plant1-en-')
    assert answer.text.splitlines()[0] == ",".join(ASSET_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["asset"], r["criticality"], r["service"], r["open"], r["p1"], r["p2"],
             r["p3"], r["p4"], r["known_exploited"]) for r in rows] == [
        ("plant1-web-01", "1", "web shop", "51", "51", "0", "0", "0", "2"),
        ("plant1-web-02", "2", "web shop", "50", "10", "40", "0", "0", "2")]

    lab = client.get("/api/reports/technical", headers=viewer,
                     params={"format": "csv", "service": "lab"})
    assert lab.status_code == 200, lab.text
    found = list(csv.DictReader(io.StringIO(lab.text)))
    assert len(found) == 11 and {r["asset"] for r in found} == {"plant2-dev-07"}
    kev = sorted((r["cve"], r["priority"]) for r in found if r["known_exploited"] == "yes")
    assert kev == [("CVE-2022-26485", "P2"), ("CVE-2022-26486", "P2")]


def test_xlsx_and_html(client: TestClient, engine: Engine) -> None:
    from openpyxl import load_workbook

    viewer = _auth(engine, Role.VIEWER)
    xlsx = client.get("/api/reports/technical", headers=viewer,
                      params={"format": "xlsx", "group": "plant1"})
    assert xlsx.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["Findings", "Assets", "Coverage"] and book["Findings"].max_row == 102
    html = client.get("/api/reports/technical", headers=viewer,
                      params={"format": "html", "lang": "ja", "service": "lab"})
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert "技術レポート" in html.text and "未対応の検出: 11 件" in html.text


@pytest.mark.parametrize(("params", "code", "message"), [
    ({"kind": "weekly"}, 422, "kind: 'weekly' must be one of executive, technical"),
    ({"format": "docx"}, 422, "format: 'docx' must be one of pdf, html, csv, xlsx"),
    ({"lang": "fr"}, 422, "lang: 'fr' must be one of en, ja"),
    ({"group": "plant1", "service": "lab"}, 422, "give a group or a service, not both"),
    ({"group": "plant9"}, 404, "group: no asset group named 'plant9'"),
    ({"service": "payroll"}, 404, "service: no asset belongs to a service named 'payroll'"),
])
def test_bad_parameters_get_the_message(client: TestClient, engine: Engine,
                                        params: dict[str, str], code: int,
                                        message: str) -> None:
    viewer = _auth(engine, Role.VIEWER)
    query = dict(params)  # the parameter's dict is shared by both databases' runs
    kind = query.pop("kind", "executive")
    answer = client.get(f"/api/reports/{kind}", headers=viewer, params=query)
    assert (answer.status_code, answer.json()) == (code, {"detail": message})


def test_a_group_named_in_japanese_downloads(client: TestClient, engine: Engine,
                                             estate: dict[str, int]) -> None:
    with engine.begin() as conn:
        group = create_group(conn, "sato", "第二工場")
        add_members(conn, "sato", group, [estate["plant2-dev-07"]])
    answer = client.get("/api/reports/technical", headers=_auth(engine, Role.VIEWER),
                        params={"format": "csv", "group": "第二工場"})
    assert answer.status_code == 200, answer.text
    day = now_utc().strftime("%Y-%m-%d")
    # Latin-1 headers: an ASCII stand-in, and the real name per RFC 8187.
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="patchpilot-technical-____-en-{day}.csv"; '
        f"filename*=UTF-8''patchpilot-technical-%E7%AC%AC%E4%BA%8C%E5%B7%A5%E5%A0%B4-en-"
        f"{day}.csv")
    assert len(list(csv.DictReader(io.StringIO(answer.text)))) == 11


def test_report_schedules_are_added_listed_removed_and_audited(
        client: TestClient, engine: Engine) -> None:
    admin = _auth(engine, Role.ADMIN)
    body = {"kind": "technical", "format": "xlsx", "lang": "ja", "cron": "0 8 1 * *",
            "timezone": "Asia/Tokyo", "recipients": ["patch-team@plant.example"],
            "group": "plant1"}
    added = client.post("/api/report-schedules", headers=admin, json=body)
    assert added.status_code == 201, added.text
    stored = added.json()
    assert {k: stored[k] for k in ("kind", "format", "lang", "group", "service", "cron",
                                   "timezone", "recipients", "enabled")} == {
        "kind": "technical", "format": "xlsx", "lang": "ja", "group": "plant1",
        "service": None, "cron": "0 8 1 * *", "timezone": "Asia/Tokyo",
        "recipients": ["patch-team@plant.example"], "enabled": True}
    assert stored["next_run_at"].endswith("T23:00:00+00:00")  # 08:00 in Tokyo

    listed = client.get("/api/report-schedules", headers=_auth(engine, Role.VIEWER))
    assert listed.status_code == 200 and listed.json() == [stored]

    assert client.delete(f"/api/report-schedules/{stored['id']}",
                         headers=admin).status_code == 204
    again = client.delete(f"/api/report-schedules/{stored['id']}", headers=admin)
    assert (again.status_code, again.json()["detail"]) == (
        404, f"no report schedule {stored['id']}")
    with engine.connect() as conn:
        assert conn.execute(select(report_schedules)).first() is None
        trail = conn.execute(select(audit_log.c.actor, audit_log.c.action,
                                    audit_log.c.target, audit_log.c.detail)
                             .where(audit_log.c.action.like("report.%"))
                             .order_by(audit_log.c.id)).all()
    assert [(a, b, c) for a, b, c, _ in trail] == [
        ("admin-u", "report.schedule.add", f"report_schedule:{stored['id']}"),
        ("admin-u", "report.schedule.remove", f"report_schedule:{stored['id']}")]
    assert orjson.loads(trail[0].detail) == {"kind": "technical", "cron": "0 8 1 * *",
                                             "timezone": "Asia/Tokyo", "recipients": 1}


@pytest.mark.parametrize(("change", "message"), [
    ({"cron": "every monday"}, "cron"),
    ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
    ({"recipients": ["manager"]}, "to: 'manager' is not a mail address"),
    ({"kind": "weekly"}, "kind: 'weekly' must be one of executive, technical"),
    ({"lang": "de"}, "lang: 'de' must be one of en, ja"),
    ({"group": "plant9"}, "group: no asset group named 'plant9'"),
])
def test_a_bad_schedule_is_refused_and_nothing_stored(
        client: TestClient, engine: Engine, change: dict[str, object], message: str) -> None:
    body = {"kind": "executive", "cron": "0 8 1 * *", "recipients": ["m@plant.example"],
            **change}
    answer = client.post("/api/report-schedules", headers=_auth(engine, Role.ADMIN),
                         json=body)
    assert answer.status_code == 422
    assert message in answer.json()["detail"]
    with engine.connect() as conn:
        assert conn.execute(select(report_schedules)).first() is None
        assert conn.execute(select(audit_log).where(
            audit_log.c.action.like("report.%"))).first() is None


# --- the dashboard's reports page (the browser test: web/test_reports_sweeps.py) ----------

@pytest.fixture
def browser_client(estate: dict[str, int], engine: Engine,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A client logged in to the dashboard as a viewer whose language is Japanese."""
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", "test-secret-" + "x" * 32)
    set_password(engine, "mori", Role.VIEWER, "mori-viewer-pw")
    with TestClient(create_app(engine), follow_redirects=False) as c:
        csrf = login(c, "mori", "mori-viewer-pw")
        assert c.post("/language", data={"lang": "ja", "csrf": csrf}).status_code == 303
        yield c


def test_reports_page_offers_the_database_s_groups_and_services(
        browser_client: TestClient, engine: Engine) -> None:
    with engine.begin() as conn:
        add_schedule(conn, "admin-u", kind="technical", fmt="xlsx", lang="en",
                     cron="0 6 * * 1", timezone="Europe/Berlin",
                     recipients=["a@plant.example", "b@plant.example"], service="lab")
    page = browser_client.get("/reports")
    assert page.status_code == 200
    html = page.text
    assert "<h1>レポート</h1>" in html
    assert '<option value="ja" selected>日本語</option>' in html  # the user's language
    assert '<option value="group:plant1" >plant1</option>' in html
    assert '<option value="service:lab" >lab</option>' in html
    assert '<option value="service:web shop" >web shop</option>' in html
    row = html.split('<table id="report-schedules">')[1]
    for text in ("技術レポート", "XLSX", "English", "業務サービス: lab", "0 6 * * 1",
                 "Europe/Berlin", "a@plant.example, b@plant.example"):
        assert text in row, text


def test_reports_page_downloads_and_explains_a_bad_choice(browser_client: TestClient
                                                          ) -> None:
    answer = browser_client.get("/reports/download", params={
        "kind": "technical", "format": "csv", "lang": "ja", "scope": "service:lab"})
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith(
        'attachment; filename="patchpilot-technical-lab-ja-')
    assert len(list(csv.DictReader(io.StringIO(answer.text)))) == 11

    gone = browser_client.get("/reports/download", params={
        "kind": "executive", "format": "pdf", "scope": "group:plant9"})
    assert gone.status_code == 404
    assert ("レポートを作成できませんでした: group: no asset group named &#39;plant9&#39;"
            in gone.text)
    assert 'id="report-form"' in gone.text  # the form again, to choose another
    bad = browser_client.get("/reports/download", params={"kind": "weekly"})
    assert bad.status_code == 422
    assert "kind: &#39;weekly&#39; must be one of executive, technical" in bad.text


def test_a_large_report_on_the_page_becomes_a_job(browser_client: TestClient, engine: Engine,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Past PATCHPILOT_REPORT_SYNC_FINDINGS the page's download goes to the page of the
    job started for it, which polls its progress; "Build in the background" starts one
    with hx.js (the CSRF token in the post, never in the form's GET URL)."""
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path))
    monkeypatch.setenv("PATCHPILOT_REPORT_SYNC_FINDINGS", "50")
    answer = browser_client.get("/reports/download", params={
        "kind": "technical", "format": "xlsx", "lang": "en", "scope": "group:plant1"})
    assert answer.status_code == 303
    job_page = answer.headers["location"]
    job_id = int(job_page.rsplit("/", 1)[1])
    html = browser_client.get(job_page).text
    assert f"<h1>レポートジョブ {job_id}</h1>" in html
    assert (f'<div id="report-job" data-state="queued" hx-get="/reports/jobs/{job_id}/progress"'
            ' hx-trigger="every 1s" hx-swap="outerHTML">') in html
    assert '<strong id="report-job-state">待機中</strong>' in html
    box = browser_client.get(f"{job_page}/progress").text
    assert box.startswith('<div id="report-job" data-state="queued"')
    assert "<html" not in box  # the box alone
    busy = browser_client.get(f"{job_page}/file")
    assert busy.status_code == 409

    form = browser_client.get("/reports").text
    assert 'id="report-background" hx-post="/reports/jobs"' in form
    assert f'<a href="/reports/jobs/{job_id}">{job_id}</a>' in form  # listed
    csrf = form.split('hx-vals=\'{"csrf": "')[1].split('"')[0]
    started = browser_client.post("/reports/jobs", headers={"HX-Request": "true"}, data={
        "kind": "executive", "format": "pdf", "lang": "ja", "scope": "", "csrf": csrf})
    assert (started.status_code, started.headers["hx-redirect"]) == (
        200, f"/reports/jobs/{job_id + 1}")
    unknown = browser_client.post("/reports/jobs", headers={"HX-Request": "true"}, data={
        "kind": "executive", "format": "pdf", "scope": "group:plant9", "csrf": csrf})
    assert unknown.headers["hx-redirect"] == (
        "/reports/download?kind=executive&format=pdf&lang=&scope=group%3Aplant9")
    assert browser_client.post("/reports/jobs", data={"kind": "executive"}).status_code == 403
