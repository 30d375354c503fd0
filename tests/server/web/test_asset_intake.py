"""The assets pages' intake forms: a CMDB export (admins) and an SBOM or lock file
(analysts), uploaded as a browser does (multipart), on SQLite and PostgreSQL.

The estate is the page tests' (tests/builders/web_data.py): plant2-ws-11 (firefox and
Pygments 2.14.0) and plant1-build-02 (Pygments), with ALSA-2022:0818 and PYSEC-2023-117
loaded; two Go advisories are added for the vendor SBOM.  The uploads are real files of
../shared/data/inventories, the CMDB export is the repository's examples/cmdb.csv.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from patchpilot.db.tables import (
    asset_context,
    asset_packages,
    assets,
    audit_log,
    findings,
    inventories,
    jobs,
)
from patchpilot.knowledge.update import update_from
from patchpilot.server.security import Role, create_api_token
from tests.builders.jobs import run_jobs
from tests.builders.sessions import role_client, sign_in
from tests.builders.web_data import INV, POETRY_LOCK, load

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "cmdb.csv"
NPM_LOCK = f"{INV}/npm-package-lock/syft__npm-lock__package-lock.json"
PROTON_SBOM = f"{INV}/cyclonedx/bom-examples__SBOM__proton-bridge__proton-bridge-v1.8.0.bom.json"
GO_FEEDS = {"osv/GO-2021-0052.json": "osv/go/GO-2021-0052.json",
            "osv/GO-2022-0603.json": "osv/go/GO-2022-0603.json"}


@pytest.fixture
def client(engine: Engine, shared_data: Path, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The page tests' estate (``web_data.load``), one user per role, a client."""
    load(engine, shared_data, tmp_path / "feeds")
    with role_client(engine, monkeypatch) as c:
        yield c


def _context(engine: Engine) -> dict[str, tuple[object, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(select(assets.c.name, asset_context.c.criticality,
                                   asset_context.c.owner, asset_context.c.source)
                            .join(asset_context, asset_context.c.asset_id == assets.c.id))
        return {r.name: (r.criticality, r.owner, r.source) for r in rows}


# --- CMDB import ------------------------------------------------------------------------

def test_cmdb_import_lists_unmatched_rows(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "admin-user", "admin-password")
    form = client.get("/assets/import").text
    assert 'id="cmdb-import-form"' in form and 'enctype="multipart/form-data"' in form
    assert 'id="cmdb-import-link"' in client.get("/assets").text
    answer = client.post("/assets/import", data={"csrf": csrf},
                         files={"file": ("cmdb.csv", EXAMPLE.read_bytes(), "text/csv")})
    assert answer.status_code == 200, answer.text
    page = unescape(answer.text)
    # Of the five rows only plant2-ws-11 is a scanned asset: the other four are listed.
    assert ('<p id="import-summary">1 assets updated, 0 created, 1 changed; 4 rows '
            "unmatched, 0 ambiguous.</p>") in page
    assert re.findall(r'<tr class="unmatched"><td>(.*?)</td><td>(.*?)</td></tr>', page) == [
        ("cmdb.csv:2", "fqdn=plant1-app-07.plant1.example.jp hostname=plant1-app-07 "
                       "ip=10.1.0.17"),
        ("cmdb.csv:3", "fqdn=plant1-db-01.plant1.example.jp hostname=plant1-db-01 "
                       "ip=10.1.0.21"),
        ("cmdb.csv:5", "fqdn=plant3-web-02.plant3.example.jp hostname=plant3-web-02 "
                       "ip=10.3.0.12"),
        ("cmdb.csv:6", "hostname=plant3-ci ip=10.3.0.40")]
    assert '<td>cmdb.csv:4</td><td><a href="/assets/1">hostname=plant2-ws-11 ' \
           "ip=10.2.0.111</a></td><td>hostname</td><td>yes</td>" in page
    # plant1-build-02, which the CMDB lacks, gets the default tier 3.
    assert "1 assets the CMDB does not describe were given the default criticality." in page
    assert _context(engine) == {"plant2-ws-11": (3, "Plant 2 IT", "cmdb-import"),
                                "plant1-build-02": (3, None, "default")}
    with engine.connect() as conn:
        entry = conn.execute(select(audit_log).where(
            audit_log.c.action == "assets.import")).one()
    assert (entry.actor, entry.target) == ("admin-user", "cmdb.csv")
    assert orjson.loads(entry.detail)["unmatched"] == ["cmdb.csv:2", "cmdb.csv:3",
                                                       "cmdb.csv:5", "cmdb.csv:6"]


def test_cmdb_import_can_create_the_missing_assets(client: TestClient,
                                                   engine: Engine) -> None:
    csrf = sign_in(client, "admin-user", "admin-password")
    answer = client.post("/assets/import", data={"csrf": csrf, "create_missing": "yes"},
                         files={"file": ("cmdb.csv", EXAMPLE.read_bytes(), "text/csv")})
    assert answer.status_code == 200
    assert ('<p id="import-summary">1 assets updated, 4 created, 5 changed; 0 rows '
            "unmatched, 0 ambiguous.</p>") in answer.text
    assert 'name="create_missing" value="yes" checked' in answer.text
    assert _context(engine) == {
        "plant2-ws-11": (3, "Plant 2 IT", "cmdb-import"),
        "plant1-build-02": (3, None, "default"),
        "plant1-app-07": (1, "Sato", "cmdb-import"),
        "plant1-db-01": (1, "Kenji Ito", "cmdb-import"),
        "plant3-web-02": (2, "Plant 3 IT", "cmdb-import"),
        "plant3-ci": (4, "Dev team", "cmdb-import")}


def test_a_bad_cmdb_row_is_named_and_nothing_is_stored(client: TestClient,
                                                       engine: Engine) -> None:
    csrf = sign_in(client, "admin-user", "admin-password")
    bad = EXAMPLE.read_bytes().replace(b"plant3-web-02,plant3-web-02.plant3.example.jp,"
                                       b"10.3.0.12,2,", b"plant3-web-02,plant3-web-02.plant3."
                                       b"example.jp,10.3.0.12,high,")
    answer = client.post("/assets/import", data={"csrf": csrf, "create_missing": "yes"},
                         files={"file": ("plants.csv", bad, "text/csv")})
    assert answer.status_code == 422
    assert ("<p>Nothing was imported:</p>\n  <ul><li>plants.csv:5: criticality must be 1-4, "
            "got &#39;high&#39;</li></ul>") in answer.text
    answer = client.post("/assets/import", data={"csrf": csrf},
                         files={"file": ("cmdb.xlsx", b"PK\x03\x04", "application/zip")})
    assert answer.status_code == 422
    assert ("cmdb.xlsx: unknown format &#39;.xlsx&#39;; use .csv, .json, .yaml or .yml"
            in answer.text)
    answer = client.post("/assets/import", data={"csrf": csrf},
                         files={"file": ("cmdb.csv", "hostname\n\xff".encode("latin-1"),
                                         "text/csv")})
    assert answer.status_code == 422
    assert "cmdb.csv: cannot be read: &#39;utf-8&#39; codec can&#39;t decode" in answer.text
    answer = client.post("/assets/import", data={"csrf": csrf})
    assert answer.status_code == 422 and "Choose a file." in answer.text
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(assets)).scalar() == 2
        assert conn.execute(select(asset_context)).first() is None
        assert conn.execute(select(audit_log)).first() is None


def test_only_admins_import_and_csrf_is_needed(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "analyst-user", "analyst-password")
    assert client.get("/assets/import").status_code == 403
    assert 'id="cmdb-import-link"' not in client.get("/assets").text
    answer = client.post("/assets/import", data={"csrf": csrf},
                         files={"file": ("cmdb.csv", EXAMPLE.read_bytes(), "text/csv")})
    assert answer.status_code == 403 and "requires the admin role" in answer.text
    sign_in(client, "admin-user", "admin-password")
    answer = client.post("/assets/import", data={"csrf": "forged"},
                         files={"file": ("cmdb.csv", EXAMPLE.read_bytes(), "text/csv")})
    assert answer.status_code == 403
    assert _context(engine) == {}


def test_import_page_in_japanese(client: TestClient) -> None:
    csrf = sign_in(client, "admin-user", "admin-password")
    client.post("/language", data={"lang": "ja", "csrf": csrf, "next": "/assets"})
    answer = client.post("/assets/import", data={"csrf": csrf},
                         files={"file": ("cmdb.csv", EXAMPLE.read_bytes(), "text/csv")})
    assert "<h1>CMDB からインポート</h1>" in answer.text
    assert ("資産 1 件を更新、0 件を作成、1 件が変更。照合できない行 4 件、曖昧な行 0 件。"
            in answer.text)


# --- SBOM and lock file upload -------------------------------------------------------------

def _upload(client: TestClient, csrf: str, shared_data: Path, path: str, asset: str,
            **fields: str) -> object:
    data = (shared_data / path).read_bytes()
    return client.post("/assets/upload", data={"csrf": csrf, "asset": asset, **fields},
                       files={"file": (Path(path).name.rsplit("__", 1)[-1], data)})


def _asset(engine: Engine, name: str) -> tuple[int, list[tuple[str, str, str]]]:
    with engine.connect() as conn:
        asset_id = conn.execute(select(assets.c.id).where(assets.c.name == name)).scalar_one()
        packages = conn.execute(select(asset_packages.c.ecosystem, asset_packages.c.name,
                                       asset_packages.c.version)
                                .where(asset_packages.c.asset_id == asset_id)
                                .order_by(asset_packages.c.name)).all()
    return asset_id, [tuple(p) for p in packages]


def _open_findings(engine: Engine, asset_id: int) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(findings.c.vuln_id, findings.c.package, findings.c.installed_version)
            .where(findings.c.asset_id == asset_id, findings.c.state == "open")
            .order_by(findings.c.vuln_id))]


def test_upload_a_package_lock(client: TestClient, engine: Engine,
                               shared_data: Path) -> None:
    csrf = sign_in(client, "analyst-user", "analyst-password")
    assert 'id="upload-link"' in client.get("/assets").text
    assert 'id="upload-form"' in client.get("/assets/upload").text
    answer = _upload(client, csrf, shared_data, NPM_LOCK, "plant1-orders-node")
    asset_id, packages = _asset(engine, "plant1-orders-node")
    assert (answer.status_code, answer.headers["location"]) == (303, f"/assets/{asset_id}")
    assert packages == [("npm", "collapse-white-space", "2.0.0"),
                        ("npm", "end-of-stream", "1.4.4"), ("npm", "insert-css", "2.0.0"),
                        ("npm", "once", "1.4.0"), ("npm", "pump", "3.0.0"),
                        ("npm", "wrappy", "1.0.2")]
    with engine.connect() as conn:
        inventory = conn.execute(select(inventories).where(
            inventories.c.asset_id == asset_id)).one()
        job = conn.execute(select(jobs).where(jobs.c.asset_id == asset_id)).one()
        entry = conn.execute(select(audit_log).where(
            audit_log.c.action == "inventory.upload")).one()
    assert (inventory.collector, inventory.packages) == ("file", 6)
    assert (job.kind, job.state, orjson.loads(job.payload)) == (
        "match", "queued", {"inventory_id": inventory.id})
    assert (entry.actor, entry.target, orjson.loads(entry.detail)) == (
        "analyst-user", "plant1-orders-node",
        {"asset_id": asset_id, "inventory_id": inventory.id, "file": "package-lock.json",
         "packages": 6, "job_id": job.id})
    page = client.get(f"/assets/{asset_id}").text
    assert 'id="matching-notice"' in page
    assert "<td>file</td><td>6</td>" in page
    assert run_jobs(engine) == 1
    assert 'id="matching-notice"' not in client.get(f"/assets/{asset_id}").text
    assert _open_findings(engine, asset_id) == []  # no npm advisory is loaded


def test_upload_a_poetry_lock_and_see_its_findings(client: TestClient, engine: Engine,
                                                   shared_data: Path) -> None:
    csrf = sign_in(client, "analyst-user", "analyst-password")
    answer = _upload(client, csrf, shared_data, POETRY_LOCK, "plant3-docs-build")
    asset_id, packages = _asset(engine, "plant3-docs-build")
    assert answer.status_code == 303
    assert len(packages) == 21 and ("PyPI", "pygments", "1.6") in packages
    assert run_jobs(engine) == 1
    # PYSEC-2023-117 (CVE-2022-40896): Pygments before 2.15.0.
    assert _open_findings(engine, asset_id) == [("CVE-2022-40896", "pygments", "1.6")]
    page = client.get(f"/assets/{asset_id}").text
    assert "<h2>Open findings (1)</h2>" in page and ">CVE-2022-40896</a>" in page


def test_upload_a_vendor_cyclonedx_sbom(client: TestClient, engine: Engine,
                                        shared_data: Path, feed_dir) -> None:  # type: ignore[no-untyped-def]
    assert {r.status for r in update_from(engine, [feed_dir(GO_FEEDS, "go")])} == {"loaded"}
    csrf = sign_in(client, "analyst-user", "analyst-password")
    answer = _upload(client, csrf, shared_data, PROTON_SBOM, "plant2-vpn-appliance")
    asset_id, packages = _asset(engine, "plant2-vpn-appliance")
    assert answer.status_code == 303
    assert len(packages) == 201
    assert ("Go", "github.com/gin-gonic/gin", "v1.4.0") in packages
    assert run_jobs(engine) == 1
    assert _open_findings(engine, asset_id) == [
        ("CVE-2020-28483", "github.com/gin-gonic/gin", "v1.4.0"),  # GO-2021-0052
        ("CVE-2022-28948", "gopkg.in/yaml.v3",  # GO-2022-0603
         "v3.0.0-20200313102051-9f266ea9e77c")]


def test_a_bad_upload_is_explained_on_the_page(client: TestClient, engine: Engine,
                                               shared_data: Path) -> None:
    csrf = sign_in(client, "analyst-user", "analyst-password")
    answer = client.post("/assets/upload", data={"csrf": csrf, "asset": "x"},
                         files={"file": ("notes.txt", b"hello, world\n")})
    assert answer.status_code == 422
    assert ("<li>notes.txt: not a package database, lock file, SBOM or inventory JSON "
            "PatchPilot knows (see --type)</li>") in answer.text
    assert 'value="x"' in answer.text  # the form keeps the asset name
    answer = client.post("/assets/upload", data={"csrf": csrf, "asset": "x"},
                         files={"file": ("package-lock.json", b"{\"lockfileVersion\": 2,")})
    assert answer.status_code == 422
    assert "<li>package-lock.json:" in answer.text
    answer = client.post("/assets/upload", data={"csrf": csrf, "asset": "x"},
                         files={"file": ("poetry.lock", b"  \n")})
    assert answer.status_code == 422 and "<li>poetry.lock: empty file</li>" in answer.text
    answer = _upload(client, csrf, shared_data, f"{INV}/apk-installed/"
                     "syft__alpine__multiple-2__lib__apk__db__installed", "x")
    assert answer.status_code == 422
    assert ("installed: apk database: cannot tell the Alpine release: the database has no "
            "alpine-release or alpine-base package") in answer.text
    answer = _upload(client, csrf, shared_data, NPM_LOCK, "x", type="nope")
    assert answer.status_code == 422 and "<li>type must be one of apk, " in answer.text
    answer = _upload(client, csrf, shared_data, NPM_LOCK, "")
    assert answer.status_code == 422 and "Name the asset the file describes." in answer.text
    answer = client.post("/assets/upload", data={"csrf": csrf, "asset": "x"})
    assert answer.status_code == 422 and "Choose a file." in answer.text
    # Over the limit by its Content-Length: refused before the body is read.
    answer = client.post("/assets/upload", content=b"x",
                         headers={"content-length": str(70 << 20),
                                  "content-type": "multipart/form-data; boundary=b"})
    assert answer.status_code == 413
    assert "The file is larger than 64 MB." in answer.text
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(assets)).scalar() == 2
        assert conn.execute(select(jobs)).first() is None


def test_a_distro_makes_an_apk_list_readable(client: TestClient, engine: Engine,
                                             shared_data: Path) -> None:
    csrf = sign_in(client, "analyst-user", "analyst-password")
    answer = _upload(client, csrf, shared_data, f"{INV}/apk-installed/"
                     "syft__alpine__multiple-2__lib__apk__db__installed", "plant4-gw",
                     distro="alpine:3.18")
    assert answer.status_code == 303
    _, packages = _asset(engine, "plant4-gw")
    assert packages and {p[0] for p in packages} == {"Alpine:3.18"}


def test_the_asset_page_shows_the_latest_inventorys_warnings(
        client: TestClient, engine: Engine, shared_data: Path) -> None:
    # osv-scalibr's requirements example uploaded as base.txt: told by content, one pinned
    # requirement and twelve lines that are not checked, each named on the page.
    csrf = sign_in(client, "analyst-user", "analyst-password")
    data = (shared_data / INV / "pip-requirements"
            / "osv-scalibr__language__python__requirements__example.txt").read_bytes()
    answer = client.post("/assets/upload", data={"csrf": csrf, "asset": "plant3-docs"},
                         files={"file": ("base.txt", data)})
    assert answer.status_code == 303
    asset_id, packages = _asset(engine, "plant3-docs")
    assert packages == [("PyPI", "docopt", "0.6.1")]
    page = unescape(client.get(f"/assets/{asset_id}").text)
    with engine.connect() as conn:
        inventory_id = conn.execute(select(inventories.c.id).where(
            inventories.c.asset_id == asset_id)).scalar_one()
    assert '<h2 id="inventory-warnings">Warnings of the latest inventory (12)</h2>' in page
    assert f"What reading inventory #{inventory_id} skipped or inferred" in page
    assert "<li>base.txt:3: pytest is not pinned; not checked</li>" in page
    assert "<li>base.txt:21: included file 'other-requirements.txt' not read; scan it " \
           "too</li>" in page
    assert len(re.findall(r"<li>base\.txt:\d+: ", page)) == 12
    token = create_api_token(engine, user="viewer-user", role=Role.VIEWER)[0]
    detail = client.get(f"/api/assets/{asset_id}",
                        headers={"Authorization": f"Bearer {token}"}).json()
    assert len(detail["inventory_warnings"]) == 12
    assert detail["inventory_warnings"][0] == "base.txt:3: pytest is not pinned; not checked"
    # In Japanese the heading is translated; the warnings are the parser's own words.
    client.post("/language", data={"lang": "ja", "csrf": csrf, "next": "/assets"})
    page = unescape(client.get(f"/assets/{asset_id}").text)
    assert "最新のインベントリの警告 (12)" in page
    # A host without warnings shows no such section.
    assert 'id="inventory-warnings"' not in client.get("/assets/1").text


def test_viewers_cannot_upload(client: TestClient, engine: Engine,
                               shared_data: Path) -> None:
    csrf = sign_in(client, "viewer-user", "viewer-password")
    assert 'id="upload-link"' not in client.get("/assets").text
    assert client.get("/assets/upload").status_code == 403
    assert _upload(client, csrf, shared_data, NPM_LOCK, "x").status_code == 403
    csrf = sign_in(client, "analyst-user", "analyst-password")
    assert _upload(client, "forged", shared_data, NPM_LOCK, "x").status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(assets)).scalar() == 2


def test_an_upload_never_replaces_a_scanned_host(client: TestClient, engine: Engine,
                                                 shared_data: Path) -> None:
    csrf = sign_in(client, "analyst-user", "analyst-password")
    before = _asset(engine, "plant2-ws-11")
    opened = _open_findings(engine, before[0])
    answer = _upload(client, csrf, shared_data, NPM_LOCK, "plant2-ws-11")
    assert answer.status_code == 422
    assert ("asset: &#39;plant2-ws-11&#39; is scanned by its agent collector; a file uploaded "
            "under its name would replace that inventory and close its findings. Name the "
            "application instead, e.g. &#39;plant2-ws-11-app&#39;.") in answer.text
    assert _asset(engine, "plant2-ws-11") == before
    assert _open_findings(engine, before[0]) == opened and opened
    # An application asset made by an upload takes a newer upload under its name.
    assert _upload(client, csrf, shared_data, NPM_LOCK, "plant2-ws-11-app").status_code == 303
    assert _upload(client, csrf, shared_data, NPM_LOCK, "plant2-ws-11-app").status_code == 303
