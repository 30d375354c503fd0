"""The playbooks page, on SQLite and PostgreSQL: the list, the editor's validation (the
field and a condition's position) and dry run over real stored events (a Nessus report
imported, its server in the CMDB), saving (admins), enable/disable, the shipped examples,
and the dead letters -- made by real deliveries refused as internal targets -- retried
and discarded; what each role sees and may do; the page in Japanese."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.deliver import MAX_ATTEMPTS, backoff, deliver_due
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.automation.store import save_playbook
from patchpilot.clock import now_utc
from patchpilot.db.tables import audit_log, outbox, playbooks
from patchpilot.reports.mail import SmtpSettings
from patchpilot.server.web.pages.playbooks import EXAMPLES
from tests.builders.playbook_estate import CVE_2007, build_estate
from tests.builders.sessions import role_client, sign_in

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
BROKEN = TIER1.replace('finding.severity == "High"', 'finding.severity == == "High"')
LOOPBACK_HOOK = """\
name: loopback-hook
trigger: {events: [new]}
condition: finding.vuln_id in ["CVE-2007-0448", "CVE-2007-5424"]
actions:
  - type: webhook
    with: {url: "http://127.0.0.1:9/hook", secret_env: PP_TEST_HOOK_KEY}
"""


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with role_client(engine, monkeypatch) as c:
        yield c


def _rows(html: str, cls: str) -> list[str]:
    return re.findall(rf'<tr class="{cls}"[^>]*>', html)


def test_the_editor_validates_and_previews(client: TestClient, engine: Engine,
                                           shared_data: Path) -> None:
    build_estate(engine, shared_data)  # 16 stored events, no playbook
    csrf = sign_in(client, "analyst-user", "analyst-password")
    page = client.get("/playbooks")
    assert page.status_code == 200
    assert '<a href="/playbooks">Playbooks</a>' in page.text  # the navigation entry
    assert 'id="no-playbooks"' in page.text and 'id="no-dead-letters"' in page.text
    assert 'id="playbook-validate"' in page.text and 'id="playbook-preview"' in page.text
    assert 'id="playbook-save"' not in page.text  # saving is for admins
    # The shipped examples are offered and load into the editor.
    names = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
    assert "critical-on-tier1-mail-owner.yaml" in names
    assert re.findall(r'<option value="([^"]+)">', page.text) == names
    loaded = client.get("/playbooks/example",
                        params={"name": "critical-on-tier1-mail-owner.yaml"})
    assert loaded.status_code == 200
    assert loaded.text.startswith('<textarea name="document" id="playbook-document"')
    assert unescape(loaded.text).split(">\n", 1)[1].removesuffix("</textarea>") == (
        EXAMPLES / "critical-on-tier1-mail-owner.yaml").read_text()
    assert client.get("/playbooks/example", params={"name": "../../etc/passwd"}
                      ).status_code == 404
    # Validate: the summary, or the field and the position.
    valid = client.post("/playbooks/validate", data={"document": TIER1, "csrf": csrf})
    assert valid.status_code == 200 and 'id="playbook-valid"' in valid.text
    assert "<strong>high-on-tier1</strong>" in valid.text
    assert "<dd>new, reopened</dd>" in valid.text and "<dd>email, webhook</dd>" in valid.text
    refused = client.post("/playbooks/validate", data={"document": BROKEN, "csrf": csrf})
    assert refused.status_code == 200 and 'id="playbook-problem"' in refused.text
    assert '<code class="field">condition</code>' in refused.text
    assert "condition: does not compile at line 1, column 21:" in refused.text
    # Preview: what it would have done over the last 30 days, nothing stored.
    run = client.post("/playbooks/preview", data={"document": TIER1, "days": "30",
                                                  "csrf": csrf})
    assert run.status_code == 200
    assert ("Dry run over the last 30 days: 6 events would fire, 12 actions. Nothing was "
            "sent.") in run.text
    assert _rows(run.text, "dry-run-row") == [
        f'<tr class="dry-run-row" data-event="{e}">' for e in range(10, 16) for _ in (0, 1)]
    cells = re.findall(r'<tr class="dry-run-row" data-event="10"><td>10</td><td>[^<]*</td>'
                       r'<td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>'
                       r'<td>([^<]*)</td>', run.text)
    assert cells == [("new", "testphp", CVE_2007[0], "High", "0: email"),
                     ("new", "testphp", CVE_2007[0], "High", "1: webhook")]
    none = client.post("/playbooks/preview", data={"document": TIER1.replace(
        "CVE-2007-", "CVE-2099-"), "days": "30", "csrf": csrf})
    assert 'id="dry-run-none"' in none.text
    assert client.post("/playbooks/preview", data={"document": TIER1}).status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(outbox)).first() is None
        assert conn.execute(select(playbooks)).first() is None


def test_only_admins_save_and_toggle(client: TestClient, engine: Engine) -> None:
    for name in ("viewer", "analyst"):
        csrf = sign_in(client, f"{name}-user", f"{name}-password")
        assert client.post("/playbooks/save", data={"document": TIER1, "csrf": csrf}
                           ).status_code == 403
    csrf = sign_in(client, "viewer-user", "viewer-password")
    assert client.post("/playbooks/validate", data={"document": TIER1, "csrf": csrf}
                       ).status_code == 403
    page = client.get("/playbooks").text
    assert 'id="playbook-validate"' not in page and "readonly" in page
    csrf = sign_in(client, "admin-user", "admin-password")
    assert client.post("/playbooks/save", data={"document": TIER1}).status_code == 403
    saved = client.post("/playbooks/save", data={"document": TIER1, "csrf": csrf})
    assert (saved.status_code, saved.headers["location"]) == (
        303, "/playbooks?edit=high-on-tier1&saved=1")
    page = client.get(saved.headers["location"]).text
    assert 'id="playbook-saved"' in page and "Saved: version 1." in page
    assert _rows(page, "playbook") == ['<tr class="playbook" data-name="high-on-tier1">']
    assert "<h2 id=\"editor\">Playbook high-on-tier1</h2>" in page
    assert unescape(page).count(TIER1) == 1  # in the editor
    # A refused save keeps what was typed and names the field.
    refused = client.post("/playbooks/save", data={"document": BROKEN, "csrf": csrf})
    assert refused.status_code == 422
    assert 'id="playbook-error"' in refused.text
    assert '<code class="field">condition</code>' in refused.text
    assert BROKEN in unescape(refused.text)
    # A second version, then the first shown again from the versions.
    second = TIER1.replace("lang: ja", "lang: en")
    assert client.post("/playbooks/save", data={"document": second, "csrf": csrf}
                       ).headers["location"] == "/playbooks?edit=high-on-tier1&saved=2"
    page = client.get("/playbooks", params={"edit": "high-on-tier1", "version": 1}).text
    assert "Showing version 1; saving it makes it the current version again." in page
    assert unescape(page).count(TIER1) == 1
    assert client.get("/playbooks", params={"edit": "nope"}).status_code == 404
    # Disable and enable from the list.
    off = client.post("/playbooks/high-on-tier1/disable", data={"csrf": csrf})
    assert (off.status_code, off.headers["location"]) == (303, "/playbooks")
    page = client.get("/playbooks").text
    assert 'action="/playbooks/high-on-tier1/enable"' in page
    assert client.post("/playbooks/high-on-tier1/enable", data={"csrf": csrf}
                       ).status_code == 303
    with engine.connect() as conn:
        assert conn.execute(select(playbooks.c.enabled, playbooks.c.version)).one() == (
            True, 2)
        assert [tuple(r) for r in conn.execute(
            select(audit_log.c.actor, audit_log.c.action).order_by(audit_log.c.id))] == [
            ("admin-user", "playbook.add"), ("admin-user", "playbook.update"),
            ("admin-user", "playbook.disable"), ("admin-user", "playbook.enable")]


def test_dead_letters_are_retried_and_discarded(client: TestClient, engine: Engine,
                                                shared_data: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PP_TEST_HOOK_KEY", "k")
    build_estate(engine, shared_data, LOOPBACK_HOOK)
    assert evaluate_events(engine).queued == 2
    now = now_utc()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        deliver_due(engine, DeliverySettings(SmtpSettings()), now)
        now += backoff(attempt)
    csrf = sign_in(client, "viewer-user", "viewer-password")
    page = client.get("/playbooks").text
    assert _rows(page, "dead-letter") == ['<tr class="dead-letter" data-id="1">',
                                          '<tr class="dead-letter" data-id="2">']
    assert "testphp, CVE-2007-0448" in page and "http://127.0.0.1:9" in page
    assert "127.0.0.1 resolves to 127.0.0.1, an internal address; refused" in page
    assert "PP_TEST_HOOK_KEY" not in page and "/hook" not in page
    assert 'action="/outbox/1/retry"' not in page  # viewers see no buttons
    assert 'class="dead">2</td>' in page  # the playbook's count
    assert client.post("/outbox/1/retry", data={"csrf": csrf}).status_code == 403
    csrf = sign_in(client, "admin-user", "admin-password")
    page = client.get("/playbooks").text
    assert 'action="/outbox/1/retry"' in page and 'action="/outbox/2/discard"' in page
    retried = client.post("/outbox/1/retry", data={"csrf": csrf})
    assert (retried.status_code, retried.headers["location"]) == (
        303, "/playbooks#dead-letters")
    assert client.post("/outbox/2/discard", data={"csrf": csrf}).status_code == 303
    page = client.get("/playbooks").text
    assert 'id="no-dead-letters"' in page
    assert "queued 1 · sent 0 · failed 0 · dead 0 · discarded 1" in page
    again = client.post("/outbox/2/discard", data={"csrf": csrf})
    assert again.status_code == 409
    assert "outbox row 2 is discarded; only a failed or dead row can be discarded" in again.text
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(
            select(outbox.c.id, outbox.c.state, outbox.c.attempts).order_by(outbox.c.id))
        ] == [(1, "queued", 0), (2, "discarded", MAX_ATTEMPTS)]
        assert [tuple(r) for r in conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.target)
            .where(audit_log.c.action.startswith("outbox.")).order_by(audit_log.c.id))] == [
            ("admin-user", "outbox.retry", "outbox:1"),
            ("admin-user", "outbox.discard", "outbox:2")]


def test_the_page_in_japanese(client: TestClient, engine: Engine) -> None:
    with engine.begin() as conn:
        save_playbook(conn, "sato", TIER1)
    sign_in(client, "admin-user", "admin-password")
    page = client.get("/playbooks", headers={"Accept-Language": "ja"}).text
    assert '<a href="/playbooks">プレイブック</a>' in page
    assert "<h2 id=\"dead-letters\">配信不能キュー</h2>" in page
    assert ">プレビュー</button>" in page and ">保存</button>" in page
    assert ">無効にする</button>" in page
