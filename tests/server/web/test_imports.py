"""The imports page, and what the finding and asset pages show of an import, through the
app on SQLite and PostgreSQL: a real Nessus report uploaded with the page's form, its job
run as a worker runs it, the history read back; refusals shown on the form; the scanner's
output, solution and field sources on the finding; the informational items on the asset.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from patchpilot import worker
from patchpilot.db.tables import assets, findings
from patchpilot.importers import registry
from patchpilot.importers.apply import import_file
from patchpilot.server.web.pages.finding import fields_by_source
from patchpilot.server.web.render import SCANNERS, scanner_name
from tests.builders.sessions import role_client, sign_in

NESSUS = "reports/tenable/nessus__nessus_with_cwe-.nessus"  # 1 host, 15 CVEs
# 1 host (a Cisco PIX), no vulnerability, 7 informational items (severity 0).
NESSUS_INFO = "reports/tenable/nessus__nessus_many_vuln.xml"


@pytest.fixture
def client(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[TestClient]:
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    with role_client(engine, monkeypatch) as c:
        yield c


def _text(html: str, element_id: str) -> str:
    """The text of the element with ``element_id`` (tags dropped, spaces folded)."""
    found = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert found, element_id
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(2))).split())


def test_every_scanner_has_a_name() -> None:
    assert {f.producer for f in registry.FORMATS} == set(SCANNERS)
    assert scanner_name("importer:tenable") == "Tenable"
    assert scanner_name("importer:openvas:plant1") == "Greenbone/OpenVAS · plant1"
    assert scanner_name("importer:nmap") == "nmap"  # a producer no row names: as it is


def test_field_sources_are_grouped_the_report_first() -> None:
    data = {"field_sources": {"name": "report", "cvss": "knowledge base",
                              "exploit": "report + knowledge base", "summary": "report",
                              "fix": "knowledge base"}}
    assert fields_by_source(data) == [("report", ["name", "summary"]),
                                      ("report + knowledge base", ["exploit"]),
                                      ("knowledge base", ["cvss", "fix"])]
    assert fields_by_source({"sources": ["matcher"]}) == []  # a matched finding: none


def test_upload_on_the_page_then_the_history_and_the_finding(
        client: TestClient, engine: Engine, shared_data: Path) -> None:
    csrf = sign_in(client, "analyst-user", "analyst-password")
    page = client.get("/imports").text
    assert 'id="import-form"' in page
    assert '<option value="">detect from content</option>' in page
    assert page.count("<option value=") == len(registry.FORMATS) + 1
    assert 'href="/imports/templates/generic-findings.csv"' in page
    with (shared_data / NESSUS).open("rb") as report:
        answer = client.post("/imports", data={"csrf": csrf, "format": "", "scope": "plant1",
                                               "asset": ""},
                             files={"file": ("weekly.nessus", report)})
    assert (answer.status_code, answer.headers["location"]) == (303, "/imports")
    queued = client.get("/imports/history").text
    # Queued: the box polls itself until the import is settled.
    assert 'hx-get="/imports/history" hx-trigger="every 1s"' in queued
    assert 'data-status="queued"' in queued
    assert worker.run_once(engine, "test-worker") is not None
    done = client.get("/imports/history").text
    assert "hx-trigger" not in done
    row = _text(done, "import-1")
    assert row == ("1 weekly.nessus (scope plant1) nessus done 1 15 0 0 0 0 0 analyst-user "
                   + row.split("analyst-user ")[1])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", row.split("analyst-user ")[1])
    # The finding: who reported it, the scanner's output and solution, the fields' sources.
    with engine.connect() as conn:
        finding_id = conn.execute(select(findings.c.id).where(
            findings.c.vuln_id == "CVE-2006-1015")).scalar_one()
    page = client.get(f"/findings/{finding_id}").text
    assert _text(page, "reported-by") == "Tenable · plant1 (import)"
    assert _text(page, "report-solution") == "Upgrade to PHP version 5.2.0 or later."
    assert _text(page, "exploit-reported") == "no"
    # No fixed version: the Fix row says the report's remedy; a service has no
    # installations to list.
    assert "<dt>Fix</dt><dd>Upgrade to PHP version 5.2.0 or later.</dd>" in page
    assert 'id="installations"' not in page
    # An empty knowledge base: every field is the report's.
    assert _text(page, "field-sources") == "report: CVSS, Exploit, Fix, Name, Severity, Summary"
    assert _text(page, "scanner-output") == (
        "Version source : http://testphp.vulnweb.com/secured/phpinfo.php Installed version "
        ": 5.1.6 Fixed version : 5.2")
    # In Japanese.
    ja = client.get(f"/findings/{finding_id}", headers={"Accept-Language": "ja"}).text
    assert "報告元" in ja and "Tenable · plant1（インポート）" in ja
    assert _text(ja, "field-sources").startswith("レポート: CVSS, ")
    history = client.get("/imports", headers={"Accept-Language": "ja"}).text
    assert "スキャナーレポートのインポート" in history and "内容から判別" in history


def test_refusals_are_shown_on_the_form(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "analyst-user", "analyst-password")
    answer = client.post("/imports", data={"csrf": csrf},
                         files={"file": ("notes.txt", b"not a report at all\n")})
    assert answer.status_code == 422
    assert _text(answer.text, "import-errors").startswith(
        "The report was not imported: notes.txt: no importer recognises this text file; "
        "tried nessus, tenable-csv,")
    # The CSRF field must come first; without it nothing is read.
    assert client.post("/imports", files={"file": ("a.nessus", b"<x/>")}).status_code == 403
    csrf = sign_in(client, "viewer-user", "viewer-password")
    page = client.get("/imports").text
    assert 'id="import-form"' not in page and 'id="imports-table"' in page
    assert client.post("/imports", data={"csrf": csrf},
                       files={"file": ("a.nessus", b"<x/>")}).status_code == 403
    download = client.get("/imports/templates/generic-findings.csv")
    assert download.status_code == 200
    assert download.text.startswith("asset,vulnerability_id,title,")


def test_the_asset_page_lists_the_scanners_facts(client: TestClient, engine: Engine,
                                                 shared_data: Path) -> None:
    summary = import_file(engine, shared_data / NESSUS_INFO, actor="test")
    assert (summary.assets, summary.findings, summary.informational) == (1, 0, 7)
    with engine.connect() as conn:
        asset_id = conn.execute(select(assets.c.id).where(
            assets.c.name == "preprod")).scalar_one()  # the FQDN's first label
    sign_in(client, "viewer-user", "viewer-password")
    page = client.get(f"/assets/{asset_id}").text
    assert _text(page, "discovered-by") == "importer:tenable (Tenable)"
    facts = re.findall(r'<tr class="fact">(.*?)</tr>', page, re.S)
    assert len(facts) == 7
    assert "Informational (from scanners) (7)" in page
    rows = [" ".join(unescape(re.sub(r"<[^>]+>", " ", f)).split()) for f in facts]
    assert "Tenable nessus:54615 Device Type general" in " | ".join(rows)
