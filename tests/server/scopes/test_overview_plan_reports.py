"""Issue 18: a user limited to the group plant1 sees plant1 only on the overview, the SLA
figures, the patch plan and its downloads, reports (made now, by a job, mailed) and
sweeps -- through the API and the pages -- while an unscoped user's answers are as before.

The estate is tests/builders/scope_estate.py's: real advisories matched on real hosts,
plant1 with 11 open findings on 2 hosts (plant1-app-07: ten firefox CVEs of
ALSA-2022:0818; plant1-build-02: CVE-2022-40896 in Pygments), plant2 with 11 on 1
(plant2-ws-11: both), plant3 with none.  Every figure a scoped user gets is the one an
unscoped user gets for the group plant1.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine, select, update

from patchpilot import worker
from patchpilot.db.tables import assets, jobs
from patchpilot.reports.jobs import REPORT_FILE
from patchpilot.reports.mail import add_schedule
from patchpilot.scans.sweeps import SSH_JOB
from tests.builders.scope_estate import OUTSIDE, PLANT1, scope_estate
from tests.builders.sessions import page_csrf, role_client, sign_in

PYGMENTS_CVE = "CVE-2022-40896"  # on plant1-build-02 and plant2-ws-11
PLANT2 = "plant2-ws-11"


@pytest.fixture
def site(engine: Engine, shared_data: Path, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    """A client of the app on the scope estate, with its tokens."""
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    built = scope_estate(engine, shared_data, tmp_path / "feeds")
    with role_client(engine, monkeypatch) as client:
        yield client, built


def _auth(built: dict[str, Any], user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {built['tokens'][user]}"}


def _get(client: TestClient, built: dict[str, Any], user: str, url: str) -> Any:
    answer = client.get(url, headers=_auth(built, user))
    assert answer.status_code == 200, (user, url, answer.status_code, answer.text[:300])
    return answer


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _pdf_text(content: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(content)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def test_the_overview_and_sla_are_plant1s(site: tuple[TestClient, dict[str, Any]]) -> None:
    client, built = site
    scoped = _get(client, built, "plant1-viewer", "/api/overview").json()
    plant1 = _get(client, built, "viewer-user", "/api/overview?group=plant1").json()
    plant2 = _get(client, built, "viewer-user", "/api/overview?group=plant2").json()
    estate = _get(client, built, "viewer-user", "/api/overview").json()
    assert scoped == plant1
    assert (scoped["open_total"], scoped["assets_total"]) == (11, 2)
    assert (plant2["open_total"], plant2["assets_total"]) == (11, 1)
    assert (estate["open_total"], estate["assets_total"]) == (22, 4)
    assert {a["name"] for a in scoped["top_assets"]} == set(PLANT1)
    # Another group asked for by the scoped user is narrowed to plant1: nothing of it.
    other = _get(client, built, "plant1-viewer", "/api/overview?group=plant2").json()
    assert (other["open_total"], other["assets_total"], other["top_assets"]) == (0, 0, [])

    # SLA figures and the overdue list count plant1's findings only.
    sla = _get(client, built, "plant1-viewer", "/api/sla?by=priority").json()
    assert sum(r["open"] for r in sla["rows"]) == 11
    assert {o["asset"] for o in sla["overdue"]} <= set(PLANT1)
    whole = _get(client, built, "viewer-user", "/api/sla?by=priority").json()
    assert sum(r["open"] for r in whole["rows"]) == 22
    # The priority configuration holds no asset data: the scoped user reads it as is.
    assert (_get(client, built, "plant1-viewer", "/api/priority-config").json()
            == _get(client, built, "viewer-user", "/api/priority-config").json())

    # The overview page: plant1's hosts, none of the others.
    sign_in(client, "plant1-viewer", "plant1-password")
    page = client.get("/overview")
    assert page.status_code == 200
    assert all(name in page.text for name in PLANT1)
    assert not any(name in page.text for name in OUTSIDE)


def test_the_plan_lists_plant1s_hosts(site: tuple[TestClient, dict[str, Any]]) -> None:
    client, built = site
    scoped = _get(client, built, "plant1-viewer", "/api/plan").json()
    plant1 = _get(client, built, "viewer-user", "/api/plan?group=plant1").json()
    estate = _get(client, built, "viewer-user", "/api/plan").json()
    assert scoped["items"] == plant1["items"]
    hosts = {h["name"] for i in scoped["items"] for h in i["first_hosts"]}
    assert hosts == set(PLANT1)
    assert PLANT2 in {h["name"] for i in estate["items"] for h in i["first_hosts"]}
    # The figures are plant1's: each change on one host there (two in the estate).
    by_package = {i["package"]: i for i in scoped["items"]}
    assert {p: (len(i["vulns"]), i["pending"]) for p, i in by_package.items()} == {
        "firefox": (10, 1), "pygments": (1, 1)}
    assert {i["package"]: i["pending"] for i in estate["items"]} == {
        "firefox": 2, "pygments": 2}

    # One item's hosts, the CSV, the Ansible export: plant1's hosts only.
    key = by_package["pygments"]["key"]
    item = _get(client, built, "plant1-viewer", f"/api/plan/items/{key}/hosts").json()
    assert [h["name"] for h in item["hosts"]] == ["plant1-build-02"]
    assert (item["total"], item["item"]["vulns"]) == (1, [PYGMENTS_CVE])
    rows = _csv(_get(client, built, "plant1-viewer", "/api/plan.csv").text)
    assert {r["host"] for r in rows} == set(PLANT1)
    assert len(_csv(_get(client, built, "viewer-user", "/api/plan.csv").text)) > len(rows)
    files = _get(client, built, "plant1-viewer", "/api/plan/ansible?format=json").json()
    text = "\n".join(files["files"].values())
    assert all(name in text for name in PLANT1) and PLANT2 not in text
    for url in ("/api/plan/windows-kbs.csv", "/api/plan/windows-updates.ps1"):
        assert PLANT2 not in _get(client, built, "plant1-viewer", url).text

    # The pages: the plan and its downloads.
    sign_in(client, "plant1-viewer", "plant1-password")
    page = client.get("/plan")
    assert page.status_code == 200
    assert all(name in page.text for name in PLANT1) and PLANT2 not in page.text
    # The group filter offers the user's own groups only.
    assert 'value="plant1"' in page.text and 'value="plant2"' not in page.text
    assert {r["host"] for r in _csv(client.get("/plan.csv").text)} == set(PLANT1)
    fragment = client.get(f"/plan/items/{key}/hosts")
    assert "plant1-build-02" in fragment.text and PLANT2 not in fragment.text


def test_reports_and_exports_hold_plant1_only(site: tuple[TestClient, dict[str, Any]],
                                              tmp_path: Path) -> None:
    client, built = site
    # The technical CSV: one row per open finding of plant1.
    rows = _csv(_get(client, built, "plant1-viewer",
                     "/api/reports/technical?format=csv").text)
    assert len(rows) == 11 and {r["asset"] for r in rows} == set(PLANT1)
    everyone = _csv(_get(client, built, "viewer-user",
                         "/api/reports/technical?format=csv").text)
    assert len(everyone) == 22
    assets_csv = _csv(_get(client, built, "plant1-viewer",
                           "/api/reports/executive?format=csv").text)
    assert {r["asset"] for r in assets_csv} == set(PLANT1)
    book = load_workbook(io.BytesIO(_get(client, built, "plant1-viewer",
                                         "/api/reports/technical?format=xlsx").content))
    assert {c.value for c in book["Findings"]["A"][1:]} == set(PLANT1)
    assert {c.value for c in book["Assets"]["A"][1:]} == set(PLANT1)

    # The technical PDF: plant1's hosts, not plant2's.
    pdf = _pdf_text(_get(client, built, "plant1-viewer",
                         "/api/reports/technical?format=pdf").content, tmp_path)
    assert all(name in pdf for name in PLANT1) and PLANT2 not in pdf
    assert "Your part of the estate" in pdf
    assert PLANT2 in _pdf_text(_get(client, built, "viewer-user",
                                    "/api/reports/technical?format=pdf").content, tmp_path)
    # The executive PDF's tiles: 11 open findings on 2 assets.
    executive = _pdf_text(_get(client, built, "plant1-viewer",
                               "/api/reports/executive?format=pdf").content, tmp_path)
    tiles = executive.splitlines()[next(i for i, line in enumerate(executive.splitlines())
                                        if "Open findings" in line) - 1].split()
    assert (tiles[0], tiles[-1]) == ("11", "2"), executive

    # The reports page downloads the same.
    sign_in(client, "plant1-viewer", "plant1-password")
    page = client.get("/reports")
    assert page.status_code == 200 and "Your part of the estate" in page.text
    assert 'value="group:plant2"' not in page.text
    download = client.get("/reports/download?kind=technical&format=csv")
    assert {r["asset"] for r in _csv(download.text)} == set(PLANT1)


def test_report_jobs_are_built_within_the_scope_and_seen_by_their_owner(
        site: tuple[TestClient, dict[str, Any]], engine: Engine) -> None:
    client, built = site
    started = client.post("/api/reports/jobs", headers=_auth(built, "plant1-viewer"),
                          json={"kind": "technical", "format": "csv"})
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["total"] == 11  # the findings the export will write: plant1's
    other = client.post("/api/reports/jobs", headers=_auth(built, "viewer-user"),
                        json={"kind": "technical", "format": "csv"}).json()
    assert other["total"] == 22
    while worker.run_once(engine, kinds=(REPORT_FILE,)) is not None:
        pass
    mine = _get(client, built, "plant1-viewer", job["status"]).json()
    assert (mine["state"], mine["rows"]) == ("done", 11)
    rows = _csv(_get(client, built, "plant1-viewer", mine["download"]).text)
    assert len(rows) == 11 and {r["asset"] for r in rows} == set(PLANT1)
    # An unscoped viewer sees every job; a scoped user, their own only.
    assert _get(client, built, "viewer-user", job["status"]).json()["state"] == "done"
    for url in (other["status"], f"{other['status']}/file"):
        assert client.get(url, headers=_auth(built, "plant1-viewer")).status_code == 404
    for url in (job["status"], f"{job['status']}/file"):
        assert client.get(url, headers=_auth(built, "plant1-analyst")).status_code == 404
    everyone = _csv(_get(client, built, "viewer-user", f"{other['status']}/file").text)
    assert len(everyone) == 22

    # The pages: the user's own jobs, their progress and file.
    sign_in(client, "plant1-viewer", "plant1-password")
    listed = client.get("/reports").text
    assert f'href="/reports/jobs/{job["id"]}"' in listed
    assert f'href="/reports/jobs/{other["id"]}"' not in listed
    assert client.get(f"/reports/jobs/{other['id']}").status_code == 404
    assert client.get(f"/reports/jobs/{job['id']}/progress").status_code == 200
    page_file = client.get(f"/reports/jobs/{job['id']}/file")
    assert {r["asset"] for r in _csv(page_file.text)} == set(PLANT1)
    csrf = page_csrf(client.get("/reports").text)
    posted = client.post("/reports/jobs", data={"kind": "executive", "format": "csv",
                                                "csrf": csrf})
    assert posted.status_code == 303
    job_id = int(posted.headers["location"].rsplit("/", 1)[1])
    with engine.connect() as conn:
        payload = json.loads(conn.execute(select(jobs.c.payload)
                                          .where(jobs.c.id == job_id)).scalar_one())
    assert (payload["by"], payload["scopes"]) == ("plant1-viewer", [["group", "plant1"]])


def test_report_schedules_within_the_scope(site: tuple[TestClient, dict[str, Any]],
                                           engine: Engine) -> None:
    client, built = site
    with engine.begin() as conn:
        for group in ("plant1", "plant2", None):
            add_schedule(conn, "admin-user", kind="executive", fmt="pdf", lang="en",
                         cron="0 8 1 * *", timezone="UTC", recipients=["a@plant.example"],
                         group=group)
    listed = _get(client, built, "plant1-viewer", "/api/report-schedules").json()
    assert [s["group"] for s in listed] == ["plant1"]
    assert len(_get(client, built, "viewer-user", "/api/report-schedules").json()) == 3


def test_a_sweep_shows_plant1s_hosts_to_the_scoped_user(
        site: tuple[TestClient, dict[str, Any]], engine: Engine) -> None:
    client, built = site
    with engine.begin() as conn:  # two hosts an SSH scan may confirm: one in plant1
        conn.execute(update(assets).where(assets.c.name.in_(("plant1-app-07", PLANT2)))
                     .values(ssh_target="scan@host.example"))
    started = client.post("/api/sweeps", headers=_auth(built, "analyst-user"),
                          json={"vuln": PYGMENTS_CVE})
    assert started.status_code == 201, started.text
    sweep = started.json()
    assert {r["name"] for r in sweep["results"] if r["initial"] == "affected"} == {
        "plant1-build-02", PLANT2}
    assert sweep["jobs"] == 2

    everything = _get(client, built, "viewer-user", f"/api/sweeps/{sweep['id']}").json()
    assert {r["name"] for r in everything["results"]} == set(PLANT1) | set(OUTSIDE)
    scoped = _get(client, built, "plant1-viewer", f"/api/sweeps/{sweep['id']}").json()
    assert {r["name"] for r in scoped["results"]} == set(PLANT1)
    assert (scoped["initial"], scoped["jobs"]) == (
        {"affected": 1, "not_affected": 1, "unknown": 0}, 1)
    assert sum(scoped["status"].values()) == 2
    listed = _get(client, built, "plant1-viewer", "/api/sweeps").json()
    assert [(s["id"], s["initial"]) for s in listed] == [(sweep["id"], scoped["initial"])]
    # The counts a live view sends are plant1's too (the sweep is still pending on its
    # two SSH targets: close the stream after its first event).
    with client.stream("GET", f"/api/sweeps/{sweep['id']}/events",
                       headers=_auth(built, "plant1-viewer")) as events:
        first = next(line for line in events.iter_lines() if line.startswith("data:"))
    assert json.loads(first.removeprefix("data:"))["initial"] == scoped["initial"]

    # A sweep the scoped analyst starts covers -- and asks to confirm -- plant1 only.
    own = client.post("/api/sweeps", headers=_auth(built, "plant1-analyst"),
                      json={"vuln": PYGMENTS_CVE}).json()
    assert {r["name"] for r in own["results"]} == set(PLANT1)
    with engine.connect() as conn:
        asked = [json.loads(p)["asset_id"] for p in conn.execute(
            select(jobs.c.payload).where(jobs.c.kind == SSH_JOB)).scalars()
            if json.loads(p)["sweep_id"] == own["id"]]
    assert asked == [built["assets"]["plant1-app-07"]]

    # The pages: the list, the sweep, a sweep started from the form.
    sign_in(client, "plant1-analyst", "plant1-password")
    page = client.get(f"/sweeps/{sweep['id']}")
    assert page.status_code == 200
    assert "plant1-build-02" in page.text and PLANT2 not in page.text
    assert client.get("/sweeps").status_code == 200
    csrf = page_csrf(client.get("/sweeps").text)
    posted = client.post("/sweeps", data={"vuln": PYGMENTS_CVE, "csrf": csrf})
    assert posted.status_code == 303
    shown = client.get(posted.headers["location"])
    assert "plant1-build-02" in shown.text and PLANT2 not in shown.text
