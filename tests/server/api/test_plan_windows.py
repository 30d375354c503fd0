"""GET /api/plan with Windows items, /api/plan/windows-kbs.csv and
/api/plan/windows-updates.ps1, on the mixed estate (tests/builders/windows_plan_estate.py)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from patchpilot.knowledge.update import update_from
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token
from tests.builders.windows_plan_estate import WINDOWS_FEEDS, build_windows_estate


@pytest.fixture
def client(engine: Engine, feed_dir) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    update_from(engine, [feed_dir(WINDOWS_FEEDS)])
    build_windows_estate(engine)
    with TestClient(create_app(engine)) as c:
        yield c


def test_windows_downloads(client: TestClient, engine: Engine) -> None:
    viewer = {"Authorization": "Bearer " + create_api_token(engine, user="v",
                                                            role=Role.VIEWER)[0]}
    plan = client.get("/api/plan", headers=viewer).json()
    windows = [(i["summary"], i["manager"], i["command"], i["reboot"], i["pending"])
               for i in plan["items"] if i["ecosystem"] == "Windows"]
    assert windows == [
        ("KB5078766 fixes 67 CVEs on 3 hosts; restart", "windows-update",
         "install KB5078766 (2026-03 cumulative update), restart required", True, 3),
        ("KB5077465 fixes 2 CVEs on 1 host", "windows-update",
         "install KB5077465 (2026-03 security update)", False, 1)]

    answer = client.get("/api/plan/windows-kbs.csv", headers=viewer,
                        params={"group": "windows-servers"})
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == 'attachment; filename="windows-kbs.csv"'
    assert list(csv.DictReader(io.StringIO(answer.text))) == [
        {"host": h, "kb": "KB5078766",
         "title": "2026-03 cumulative update for Windows Server 2022", "restart": "yes"}
        for h in ("win-app-02", "win-dc-01")]

    script = client.get("/api/plan/windows-updates.ps1", headers=viewer)
    assert script.headers["content-type"] == "text/plain; charset=utf-8"
    assert script.headers["content-disposition"] == (
        'attachment; filename="windows-updates.ps1"')
    assert ("if ($me -eq 'win-sql-03') {\n"
            "    # KB5078766: 2026-03 cumulative update for Windows Server 2022, restart "
            "required\n"
            "    # KB5077465: 2026-03 security update for Microsoft SQL Server 2022\n"
            "    Install-WindowsUpdate -KBArticleID 'KB5078766','KB5077465' -AcceptAll "
            "-AutoReboot\n") in script.text

    archive = zipfile.ZipFile(io.BytesIO(client.get("/api/plan/ansible", headers=viewer)
                                         .content))
    plays = yaml.safe_load(archive.read("playbook.yml"))
    assert plays[-1]["tasks"][0]["ansible.windows.win_updates"]["accept_list"] == [
        "KB5078766", "KB5077465"]
    assert client.get("/api/plan/windows-kbs.csv").status_code == 401
