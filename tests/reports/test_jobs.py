"""Streamed exports and report jobs on the report tests' estate (tests/reports/conftest.py),
on SQLite and PostgreSQL.

* The streamed CSV is byte for byte what the in-memory export wrote before (its code is
  kept below as the oracle), in English and Japanese, of the estate and of a group.
* The write-only XLSX holds the same rows as the CSV, with its header, frozen panes and
  autofilter.
* A report job goes queued -> done through a real worker round (the child process and
  all), its file downloads, expires and is removed; one over the memory ceiling fails
  with the message that says what to do; a synchronous download past the threshold
  answers 202 with a job.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import astuple, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from patchpilot import cells, queue, worker
from patchpilot.assets.groups import Scope
from patchpilot.cells import safe_record
from patchpilot.clock import now_utc
from patchpilot.db.tables import audit_log, jobs
from patchpilot.reports import exports
from patchpilot.reports.data import (
    TechnicalFinding,
    TechnicalRow,
    iter_technical_rows,
    technical_findings,
)
from patchpilot.reports.generate import stream_csv, write_report
from patchpilot.reports.jobs import REPORT_FILE, remove_expired
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def old_csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """The export as it was built in memory before it streamed (the oracle)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(safe_record(r) for r in rows)
    return out.getvalue()


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_streamed_csv_is_the_old_export_exactly(estate: dict[str, int], engine: Engine,
                                                lang: str) -> None:
    for scope in (Scope(), Scope(group="plant1"), Scope(service="lab")):
        with engine.connect() as conn:
            rows = exports.finding_rows(technical_findings(conn, scope), lang)
            assets = exports.asset_rows(conn, scope)
        streamed = b"".join(stream_csv(engine, "technical", lang, scope)).decode()
        assert streamed == old_csv(rows, exports.FINDING_COLUMNS), scope
        assert len(streamed.splitlines()) == {None: 113, "plant1": 102, "lab": 12}[
            scope.group or scope.service]
        streamed_assets = b"".join(stream_csv(engine, "executive", lang, scope)).decode()
        assert streamed_assets == old_csv(assets, exports.ASSET_COLUMNS)
    if lang == "ja":
        assert "はい" in streamed and "いいえ" in streamed  # known exploited, in Japanese


def test_the_streamed_rows_are_the_findings(estate: dict[str, int], engine: Engine) -> None:
    """The exports' tuples (TechnicalRow) carry the PDF's findings (TechnicalFinding), field
    for field, in the same order."""
    assert TechnicalRow._fields == tuple(f.name for f in fields(TechnicalFinding))
    with engine.connect() as conn:
        found = technical_findings(conn)
        rows = list(iter_technical_rows(conn))
    assert len(rows) == len(found) == 112
    assert [astuple(f) for f in found] == [tuple(r) for r in rows]
    assert [f.installations_text for f in found] == [r.installations_text for r in rows]


def test_csv_streams_in_pieces(estate: dict[str, int], engine: Engine,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of about CSV_CHUNK_CHARS, each whole rows, as the rows come."""
    monkeypatch.setattr(cells, "CSV_CHUNK_CHARS", 2000)
    pieces = list(stream_csv(engine, "technical", "en"))
    assert len(pieces) == 19  # 112 findings, ~350 characters a row
    assert all(p.endswith(b"\n") for p in pieces)
    # Each piece but the last as soon as it holds 2000 characters: one row over at most.
    assert all(2000 <= len(p.decode()) < 2000 + 1000 for p in pieces[:-1])


def test_xlsx_holds_the_csv_rows(estate: dict[str, int], engine: Engine,
                                 tmp_path: Path) -> None:
    scope = Scope(group="plant1")
    with engine.connect() as conn:
        made = write_report(conn, "technical", "xlsx", "ja", scope, tmp_path)
    assert made.path == tmp_path / made.filename and made.size == made.path.stat().st_size
    assert not list(tmp_path.glob("*.part"))
    rows = list(csv.reader(io.StringIO(
        b"".join(stream_csv(engine, "technical", "ja", scope)).decode())))
    book = load_workbook(made.path)
    assert book.sheetnames == ["Findings", "Assets", "Coverage"]
    sheet = book["Findings"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:U102"
    assert sheet["A1"].font.bold
    cells = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(
        values_only=True)]
    assert cells == rows and len(cells) == 102


def _client(engine: Engine) -> tuple[TestClient, dict[str, str]]:
    token, _ = create_api_token(engine, user="mori", role=Role.VIEWER)
    return TestClient(create_app(engine)), {"Authorization": f"Bearer {token}"}


def test_a_report_job_is_built_kept_and_removed(estate: dict[str, int], engine: Engine,
                                                tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path))
    client, viewer = _client(engine)
    with client:
        started = client.post("/api/reports/jobs", headers=viewer, json={
            "kind": "technical", "format": "xlsx", "lang": "en", "group": "plant1"})
        assert started.status_code == 202, started.text
        job = started.json()
        assert started.headers["location"] == job["status"] == f"/api/reports/jobs/{job['id']}"
        assert {k: job[k] for k in ("state", "kind", "format", "group", "requested_by",
                                    "total", "percent", "download", "error")} == {
            "state": "queued", "kind": "technical", "format": "xlsx", "group": "plant1",
            "requested_by": "mori", "total": 101, "percent": None, "download": None,
            "error": None}
        early = client.get(f"/api/reports/jobs/{job['id']}/file", headers=viewer)
        assert (early.status_code, early.json()["detail"]) == (
            409, f"report job {job['id']} is still queued")

        ran = worker.run_once(engine, kinds=(REPORT_FILE,))
        assert ran is not None and ran.id == job["id"]
        done = client.get(job["status"], headers=viewer).json()
        assert {k: done[k] for k in ("state", "rows", "total", "percent", "error")} == {
            "state": "done", "rows": 101, "total": 101, "percent": 100, "error": None}
        assert done["download"] == f"/api/reports/jobs/{job['id']}/file"
        assert done["file"].startswith("patchpilot-technical-plant1-en-")
        answer = client.get(done["download"], headers=viewer)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == XLSX
        assert answer.headers["content-disposition"] == f'attachment; filename="{done["file"]}"'
        assert len(answer.content) == done["bytes"]
        sheet = load_workbook(io.BytesIO(answer.content))["Findings"]
        assert sheet.max_row == 102
        assert {sheet.cell(r, 1).value for r in range(2, 103)} == {"plant1-web-01",
                                                                   "plant1-web-02"}
        folder = tmp_path / "reports" / str(job["id"])
        assert [p.name for p in folder.iterdir()] == [done["file"]]

        # Kept PATCHPILOT_REPORT_KEEP_HOURS (24), then removed by the upkeep.
        assert remove_expired(engine) == 0 and folder.is_dir()
        later = now_utc() + timedelta(hours=24, minutes=1)
        assert remove_expired(engine, now=later) == 1 and not folder.exists()
        gone = client.get(done["download"], headers=viewer)
        assert gone.status_code == 409
        assert "is no longer there; start it again" in gone.json()["detail"]
    with engine.connect() as conn:
        audited = conn.execute(select(audit_log.c.actor, audit_log.c.action,
                                      audit_log.c.target)
                               .where(audit_log.c.action == "report.job.start")).all()
    assert [tuple(a) for a in audited] == [("mori", "report.job.start", f"job:{job['id']}")]
    # The child's resident memory, recorded: above 64 MB (the next test's ceiling).
    with engine.connect() as conn:
        result = orjson.loads(conn.execute(select(jobs.c.result)
                                           .where(jobs.c.id == job["id"])).scalar_one())
    assert result["peak_mb"] > 64 and result["rows"] == 101


def test_a_report_over_the_memory_ceiling_fails_saying_what_to_do(
        estate: dict[str, int], engine: Engine, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path))
    monkeypatch.setenv("PATCHPILOT_REPORT_MEMORY_MB", "64")
    client, viewer = _client(engine)
    with client:
        job = client.post("/api/reports/jobs", headers=viewer, json={
            "kind": "technical", "format": "pdf", "lang": "en"}).json()
        worker.run_once(engine, kinds=(REPORT_FILE,))
        failed = client.get(job["status"], headers=viewer).json()
        message = ("the technical report (pdf) of the estate needed more than the report "
                   "memory limit of 64 MB (PATCHPILOT_REPORT_MEMORY_MB) and was stopped: "
                   "narrow its scope to an asset group or a business service, or download "
                   "it as CSV, which streams in flat memory at any size")
        assert (failed["state"], failed["error"]) == ("failed", f"ReportTooLarge: {message}")
        refused = client.get(f"{job['status']}/file", headers=viewer)
        assert (refused.status_code, refused.json()["detail"]) == (
            409, f"report job {job['id']} failed: ReportTooLarge: {message}")
    assert not (tmp_path / "reports" / str(job["id"])).exists()  # nothing left behind


def test_a_large_download_becomes_a_job(estate: dict[str, int], engine: Engine,
                                        tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past PATCHPILOT_REPORT_SYNC_FINDINGS open findings a technical XLSX answers 202 with
    the job started for it; a smaller scope, a CSV and the executive report answer now."""
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path))
    monkeypatch.setenv("PATCHPILOT_REPORT_SYNC_FINDINGS", "50")
    client, viewer = _client(engine)
    with client:
        big = client.get("/api/reports/technical", headers=viewer,
                         params={"format": "xlsx", "group": "plant1"})
        assert big.status_code == 202
        assert big.headers["location"] == big.json()["status"]
        assert (big.json()["state"], big.json()["total"]) == ("queued", 101)
        small = client.get("/api/reports/technical", headers=viewer,
                           params={"format": "xlsx", "service": "lab"})
        assert (small.status_code, small.headers["content-type"]) == (200, XLSX)
        streamed = client.get("/api/reports/technical", headers=viewer,
                              params={"format": "csv"})
        assert streamed.status_code == 200
        assert streamed.headers["content-type"] == "text/csv; charset=utf-8"
        assert len(streamed.text.splitlines()) == 113
        assert client.get("/api/reports/executive", headers=viewer,
                          params={"format": "xlsx"}).status_code == 200
        unknown = client.get("/api/reports/technical", headers=viewer,
                             params={"format": "csv", "group": "nope"})
        assert unknown.status_code == 404
        assert client.get("/api/reports/jobs/999999", headers=viewer).status_code == 404


def test_a_progress_note_never_waits_long_on_a_busy_database(engine: Engine) -> None:
    """A report's progress note waits at most PROGRESS_WAIT_MS for SQLite's write lock (a
    plan rebuild holds it for seconds): the worker watching the child's memory must not
    stall, and the report goes on without the note (run_report_file skips it)."""
    with engine.begin() as conn:
        job_id = queue.enqueue(conn, REPORT_FILE, {"kind": "technical"})
    assert queue.lease(engine, "w", kinds=(REPORT_FILE,)) is not None
    if engine.dialect.name == "sqlite":
        holder = engine.raw_connection()
        try:
            holder.execute("BEGIN IMMEDIATE")  # another writer's long transaction
            started = time.monotonic()
            with pytest.raises(OperationalError, match="database is locked"):
                queue.progress(engine, job_id, {"progress": {"rows": 5000, "total": 9}})
            assert time.monotonic() - started < 2
        finally:
            holder.rollback()
            holder.close()
    assert queue.progress(engine, job_id, {"progress": {"rows": 5000, "total": 9}})
    with engine.connect() as conn:
        assert orjson.loads(conn.execute(select(jobs.c.result).where(jobs.c.id == job_id))
                            .scalar_one()) == {"progress": {"rows": 5000, "total": 9}}
