"""The plan page with device items: the firmware upgrade in English and Japanese, and the
vendor's image as the step (never a package manager's command)."""

from __future__ import annotations

from collections.abc import Iterator
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from patchpilot import worker
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.knowledge.update import update_from
from patchpilot.queue import Job
from tests.builders.devices import FEEDS, FORTIOS, device
from tests.builders.sessions import page_csrf, role_client, sign_in


@pytest.fixture
def client(engine: Engine, feed_dir,  # type: ignore[no-untyped-def]
           monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    update_from(engine, [feed_dir(FEEDS)])
    for host, firmware in (("fw-osaka", "7.2.4"), ("fw-tokyo", "7.2.4")):
        stored = ingest_inventory(engine, device(*FORTIOS, firmware, host=host))
        worker.HANDLERS["match"](engine, Job(0, "match", {"inventory_id": stored.inventory_id},
                                             1, None, None, None, None))
    with role_client(engine, monkeypatch) as c:
        sign_in(c, "viewer-user", "viewer-password")
        yield c


def test_plan_page_devices(client: TestClient) -> None:
    html = unescape(client.get("/plan").text)
    assert ("Upgrade the firmware of FortiOS 7.2.4 to 7.2.7: fixes 1 CVE on 2 devices"
            in html)
    assert "<code>upgrade the firmware to FortiOS 7.2.7 or later</code>" in html
    client.post("/language", data={"lang": "ja", "csrf": page_csrf(html), "next": "/plan"})
    ja = unescape(client.get("/plan").text)
    assert ("FortiOS のファームウェアを 7.2.4 から 7.2.7 に更新: 2 台の機器で CVE 1 件を修正"
            in ja)
