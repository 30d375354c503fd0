"""A Windows host through the upload page and on its asset page (issue 16): a real
``systeminfo`` uploaded with no asset name becomes the asset it names, whose page shows
product, edition, release, build ("UBR unknown" from systeminfo), architecture and the
KBs (collapsed when long, with their count); an end-of-life warning in the stored
inventory shows as a banner.  SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from patchpilot.db.tables import assets, audit_log
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.windows import inventory_of, read_windows_bytes
from tests.builders.sessions import role_client, sign_in

FOLDER = "windows/systeminfo"


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with role_client(engine, monkeypatch) as c:
        yield c


def _upload(client: TestClient, csrf: str, shared_data: Path, name: str, asset: str = ""
            ) -> object:
    data = (shared_data / FOLDER / name).read_bytes()
    return client.post("/assets/upload", data={"csrf": csrf, "asset": asset},
                       files={"file": (name, data)})


def _text(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:dd|span|div)>', html, re.S)
    assert found is not None, element_id
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def test_a_systeminfo_upload_shows_the_windows_host(client: TestClient, engine: Engine,
                                                    shared_data: Path) -> None:
    csrf = sign_in(client, "analyst-user", "analyst-password")
    assert 'id="upload-windows-hint"' in client.get("/assets/upload").text
    answer = _upload(client, csrf, shared_data, "srv_2022_systeminfo.txt")
    assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
    with engine.connect() as conn:
        asset_id = conn.execute(select(assets.c.id).where(
            assets.c.name == "WIN-RIBN7SM07BK")).scalar_one()
        action, target = conn.execute(select(audit_log.c.action, audit_log.c.target).where(
            audit_log.c.action == "inventory.upload")).one()
    assert answer.headers["location"] == f"/assets/{asset_id}"  # type: ignore[attr-defined]
    assert (action, target) == ("inventory.upload", "WIN-RIBN7SM07BK")
    html = client.get(f"/assets/{asset_id}").text
    assert _text(html, "windows-product") == "Microsoft Windows Server 2022 Standard"
    assert _text(html, "windows-edition") == "Standard"
    assert _text(html, "windows-release") == "21H2"
    assert _text(html, "windows-build") == "10.0.20348 (UBR unknown — from systeminfo)"
    assert _text(html, "windows-arch") == "x64"
    assert _text(html, "windows-kb-count") == "3"
    assert '<details id="windows-kbs" open>' in html  # a short list is shown
    assert "<li>KB5004330</li><li>KB5005039</li><li>KB5005552</li>" in html
    assert 'id="end-of-life"' not in html
    # In Japanese.
    client.cookies.set("pp_lang", "ja")
    ja = client.get(f"/assets/{asset_id}", headers={"Accept-Language": "ja"}).text
    assert "インストール済み更新プログラム（KB）" in ja and "UBR 不明 — systeminfo より" in ja


def test_a_long_kb_list_is_collapsed_and_a_cut_short_one_says_so(
        client: TestClient, engine: Engine, shared_data: Path) -> None:
    csrf = sign_in(client, "analyst-user", "analyst-password")
    # German systeminfo of a Windows 7 host: 242 KBs printed, the list cut short.
    assert _upload(client, csrf, shared_data, "7_sp1_x64_ultimaten_de_systeminfo.txt",
                   asset="oli7-pc").status_code == 303  # type: ignore[attr-defined]
    with engine.connect() as conn:
        asset_id = conn.execute(select(assets.c.id).where(
            assets.c.name == "OLI7-PC")).scalar_one()
    html = client.get(f"/assets/{asset_id}").text
    assert '<details id="windows-kbs">' in html  # collapsed
    assert _text(html, "windows-kb-count") == "242"
    assert "The list was cut short by systeminfo" in html
    assert _text(html, "windows-build") == "6.1.7601 (UBR unknown — from systeminfo)"


def test_an_upload_naming_another_host_is_refused(client: TestClient, engine: Engine,
                                                  shared_data: Path) -> None:
    csrf = sign_in(client, "analyst-user", "analyst-password")
    answer = _upload(client, csrf, shared_data, "srv_2022_systeminfo.txt", asset="web-01")
    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert ("srv_2022_systeminfo.txt: the file is of host 'WIN-RIBN7SM07BK', not 'web-01': "
            "a Windows file names its own host; leave the asset name empty or give "
            "'WIN-RIBN7SM07BK'") in unescape(answer.text)  # type: ignore[attr-defined]
    answer = _upload(client, csrf, shared_data,
                     "10_1803_x64_proforworkstations_en-us_A_20190305_qfe.txt")
    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert ("10_1803_x64_proforworkstations_en-us_A_20190305_qfe.txt: the file names no host "
            "(a QFE list without its CSName column): name the asset") in \
        unescape(answer.text)  # type: ignore[attr-defined]
    with engine.connect() as conn:
        assert conn.execute(select(assets.c.id)).all() == []


def test_an_end_of_life_warning_shows_a_banner(client: TestClient, engine: Engine,
                                               shared_data: Path) -> None:
    facts = read_windows_bytes(
        (shared_data / FOLDER / "xp_sp3_x86_professional_en-us_systeminfo.txt").read_bytes(),
        "xp.txt")
    # The warning the matcher writes for a product no longer in Microsoft's documents.
    eol = "Windows XP is past its end of life: no security update is published for it"
    inventory = inventory_of(dataclasses.replace(facts, warnings=(*facts.warnings, eol)))
    asset_id = ingest_inventory(engine, inventory).asset_id
    sign_in(client, "viewer-user", "viewer-password")
    html = client.get(f"/assets/{asset_id}").text
    assert "End of life: Microsoft no longer publishes security updates" in \
        _text(html, "end-of-life")
    assert eol in _text(html, "end-of-life")
    assert _text(html, "windows-product") == "Microsoft Windows XP Professional"
