"""POST /api/imports and the routes that follow an import, on SQLite and PostgreSQL: a real
Nessus report uploaded, imported by the job as a worker runs it, its exact summary read
back; an oversized report (413), a file no importer reads (422), a viewer (403); the
formats table and the generic format's templates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from patchpilot import worker
from patchpilot.db.tables import findings, imports, jobs
from patchpilot.importers import registry
from patchpilot.server.app import create_app
from patchpilot.server.limits import FORM_OVERHEAD, body_limit
from patchpilot.server.security import Role, create_api_token

NESSUS = "reports/tenable/nessus__nessus_with_cwe-.nessus"  # 1.3 MB, 1 host, 15 CVEs
LIMIT = 4 << 20  # the import limit of these tests


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def client(engine: Engine, home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(engine, max_import=LIMIT)) as c:
        yield c


def _auth(engine: Engine, role: Role) -> dict[str, str]:
    token = create_api_token(engine, user=f"{role.value}-u", role=role)[0]
    return {"Authorization": f"Bearer {token}"}


def _finding_id(engine: Engine, vuln_id: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(findings.c.id).where(findings.c.vuln_id == vuln_id)
                                ).scalar_one())


def _run_jobs(engine: Engine) -> list[str]:
    """Run the queued jobs in-process as a worker does; their kinds."""
    ran = []
    while (job := worker.run_once(engine, "test-worker")) is not None:
        ran.append(job.kind)
    return ran


def test_an_uploaded_nessus_report_is_imported_by_its_job(
        client: TestClient, engine: Engine, home: Path, shared_data: Path) -> None:
    analyst = _auth(engine, Role.ANALYST)
    with (shared_data / NESSUS).open("rb") as report:
        answer = client.post("/api/imports", headers=analyst,
                             files={"file": ("weekly.nessus", report)},
                             data={"scope": "plant1"})
    assert answer.status_code == 202, answer.text
    queued = answer.json()
    assert answer.headers["location"] == queued["url"] == f"/api/imports/{queued['id']}"
    assert (queued["file_name"], queued["format"], queued["scope"], queued["status"],
            queued["created_by"], queued["total"], queued["summary"]) == (
        "weekly.nessus", "nessus", "plant1", "queued", "analyst-u", 1_326_274, None)
    # Spooled under the home until the job has run.
    assert len(list((home / "imports").iterdir())) == 1
    assert _run_jobs(engine) == ["import"]
    assert list((home / "imports").iterdir()) == []
    done = client.get(queued["url"], headers=_auth(engine, Role.VIEWER)).json()
    assert (done["status"], done["producer"], done["progress"], done["error"]) == (
        "done", "importer:tenable:plant1", 1_326_274, None)
    summary = done["summary"]
    assert (summary["assets"], summary["assets_created"], summary["findings"], summary["new"],
            summary["reopened"], summary["fixed"], summary["unchanged"],
            summary["informational"], summary["skipped"]) == (
        1, ["testphp"], 15, 15, 0, 0, 0, 0, {})  # the FQDN's first label
    assert done["created_at"].endswith("Z") and done["finished_at"].endswith("Z")  # RFC 3339
    with engine.connect() as conn:
        stored = conn.execute(select(findings.c.vuln_id, findings.c.producer,
                                     findings.c.data)).all()
    assert len(stored) == 15
    assert {r.producer for r in stored} == {"importer:tenable:plant1"}
    php = orjson.loads(next(r.data for r in stored if r.vuln_id == "CVE-2006-1015"))
    assert php["solution"] == "Upgrade to PHP version 5.2.0 or later."
    assert php["sources"] == ["importer:tenable:plant1"]
    # The finding's API answer carries the report's fields.
    detail = client.get(f"/api/findings/{_finding_id(engine, 'CVE-2006-1015')}",
                        headers=analyst).json()
    assert (detail["solution"], detail["exploit_reported"], detail["sources"]) == (
        "Upgrade to PHP version 5.2.0 or later.", False, ["importer:tenable:plant1"])
    assert detail["field_sources"]["name"] == "report"
    assert detail["evidence"]["detail"].startswith(
        "Version source : http://testphp.vulnweb.com/secured/phpinfo.php")
    # Listed, newest first, with the summary.
    listed = client.get("/api/imports", headers=analyst).json()
    assert [(i["id"], i["status"], i["summary"]["new"]) for i in listed] == [
        (queued["id"], "done", 15)]


def test_a_report_over_the_limit_is_413_and_nothing_stays(
        client: TestClient, engine: Engine, home: Path) -> None:
    answer = client.post("/api/imports", headers=_auth(engine, Role.ANALYST),
                         files={"file": ("big.nessus", b"<" * (LIMIT + 1))})
    assert answer.status_code == 413
    assert answer.json()["detail"] == ("big.nessus: The file is larger than 4 MB. "
                                       "(the import limit: PATCHPILOT_MAX_IMPORT_MB)")
    assert list((home / "imports").iterdir()) == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(imports)).scalar_one() == 0


def test_a_file_no_importer_reads_is_422_naming_the_formats(
        client: TestClient, engine: Engine, home: Path) -> None:
    analyst = _auth(engine, Role.ANALYST)
    answer = client.post("/api/imports", headers=analyst,
                         files={"file": ("notes.txt", b"hello, this is not a report\n")})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail.startswith("notes.txt: no importer recognises this text file; tried "
                             "nessus, tenable-csv, openvas,")
    assert all(name in detail for name in registry.names())
    # A format no importer has, and a scope that cannot be a producer's part.
    answer = client.post("/api/imports", headers=analyst, data={"format": "nmap"},
                         files={"file": ("scan.xml", b"<nmaprun/>")})
    assert (answer.status_code, answer.json()["detail"][:30]) == (
        422, "no report format 'nmap'; the f")
    answer = client.post("/api/imports", headers=analyst, data={"scope": "a:b"},
                         files={"file": ("scan.nessus", b"<NessusClientData_v2/>")})
    assert answer.json()["detail"] == "The scope: at most 64 characters, no spaces or colons."
    assert list((home / "imports").iterdir()) == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(imports)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(jobs)).scalar_one() == 0


def test_a_viewer_cannot_upload(client: TestClient, engine: Engine, home: Path,
                                shared_data: Path) -> None:
    viewer = _auth(engine, Role.VIEWER)
    answer = client.post("/api/imports", headers=viewer,
                         files={"file": ("weekly.nessus", (shared_data / NESSUS).read_bytes())})
    assert answer.status_code == 403
    assert answer.json()["detail"] == "requires the analyst role; you are viewer"
    assert not (home / "imports").exists()  # refused before a byte was spooled
    assert client.get("/api/imports", headers=viewer).json() == []


def test_formats_and_templates(client: TestClient, engine: Engine, shared_data: Path) -> None:
    viewer = _auth(engine, Role.VIEWER)
    formats = client.get("/api/imports/formats", headers=viewer).json()
    assert [f["name"] for f in formats] == [f.name for f in registry.FORMATS]
    assert formats[0] == {"name": "nessus", "producer": "tenable",
                          "title": "Nessus .nessus v2 (Tenable)",
                          "extensions": [".nessus", ".xml"],
                          "notes": registry.by_name("nessus").notes}
    source = Path(registry.__file__).parent / "templates"
    for name, kind in (("generic-findings.csv", "text/csv; charset=utf-8"),
                       ("generic-findings.json", "application/json")):
        answer = client.get(f"/api/imports/templates/{name}", headers=viewer)
        assert answer.status_code == 200
        assert (answer.headers["content-type"], answer.headers["content-disposition"]) == (
            kind, f'attachment; filename="{name}"')
        assert answer.content == (source / name).read_bytes()
    # What was downloaded is what the importer reads: the JSON template is recognised.
    with (source / "generic-findings.json").open("rb") as stream:
        assert registry.detect(registry.sniff(stream, "t.json")).name == "generic-json"
    missing = client.get("/api/imports/templates/passwd", headers=viewer)
    assert missing.status_code == 404
    assert client.get("/api/imports/999", headers=viewer).status_code == 404


def test_the_import_limit_not_the_upload_limit_bounds_a_report(
        engine: Engine, home: Path, shared_data: Path) -> None:
    """A 1.3 MB report passes under a 1 MiB upload limit (the SBOM uploads') when the
    import limit is 4 MiB; a body declared over the import limit is refused unread."""
    assert body_limit("/api/imports", 1 << 20, LIMIT) == LIMIT + FORM_OVERHEAD
    assert body_limit("/imports", 1 << 20, LIMIT) == LIMIT + FORM_OVERHEAD
    assert body_limit("/api/inventories", 1 << 20, LIMIT) == (1 << 20) + FORM_OVERHEAD
    with TestClient(create_app(engine, max_upload=1 << 20, max_import=LIMIT)) as client:
        analyst = _auth(engine, Role.ANALYST)
        answer = client.post("/api/imports", headers=analyst,
                             files={"file": ("weekly.nessus", (shared_data / NESSUS).read_bytes())})
        assert (answer.status_code, answer.json()["total"]) == (202, 1_326_274)
        over = client.post("/api/imports", headers={**analyst, "content-type":
                                                    "multipart/form-data; boundary=x"},
                           content=b"-" * (LIMIT + FORM_OVERHEAD + 1))
        assert over.status_code == 413
        # Refused by its Content-Length, before a byte is read: the route speaks first.
        assert over.json()["detail"] == ("The file is larger than 4 MB. "
                                         "(the import limit: PATCHPILOT_MAX_IMPORT_MB)")
