"""The plan page with Windows items (tests/builders/windows_plan_estate.py): the KB's
summary with its restart in English and Japanese, and the Windows downloads it links."""

from __future__ import annotations

from collections.abc import Iterator
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from patchpilot.knowledge.update import update_from
from tests.builders.sessions import page_csrf, role_client, sign_in
from tests.builders.windows_plan_estate import WINDOWS_FEEDS, build_windows_estate


@pytest.fixture
def client(engine: Engine, feed_dir,  # type: ignore[no-untyped-def]
           monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    update_from(engine, [feed_dir(WINDOWS_FEEDS)])
    build_windows_estate(engine)
    with role_client(engine, monkeypatch) as c:
        sign_in(c, "viewer-user", "viewer-password")
        yield c


def test_plan_page_windows(client: TestClient) -> None:
    html = unescape(client.get("/plan").text)
    assert ("Install KB5078766 (Windows Server 2022): fixes 67 CVEs on 3 hosts; "
            '<span class="restart">restart required</span>') in html
    assert "Install KB5077465 (Microsoft SQL Server 2022): fixes 2 CVEs on 1 host</span>" in html
    assert '<code>install KB5078766 (2026-03 cumulative update), restart required</code>' in html
    assert 'id="plan-windows-kbs" href="/plan/windows-kbs.csv"' in html
    assert 'id="plan-windows-ps1" href="/plan/windows-updates.ps1"' in html
    csv_text = client.get("/plan/windows-kbs.csv", params={"group": "windows-servers"}).text
    assert csv_text.splitlines()[1:] == [
        "win-app-02,KB5078766,2026-03 cumulative update for Windows Server 2022,yes",
        "win-dc-01,KB5078766,2026-03 cumulative update for Windows Server 2022,yes"]
    assert "Install-WindowsUpdate -KBArticleID 'KB5078766','KB5077465'" in client.get(
        "/plan/windows-updates.ps1").text
    csrf = page_csrf(html)
    client.post("/language", data={"lang": "ja", "csrf": csrf, "next": "/plan"})
    ja = unescape(client.get("/plan").text)
    assert ("KB5078766 をインストール (Windows Server 2022): 3 台のホストで CVE 67 件を修正; "
            '<span class="restart">再起動が必要</span>') in ja
