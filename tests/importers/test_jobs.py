"""The watched folder and the import job (a spooled upload), on both databases."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import orjson
from sqlalchemy import Engine, func, select

from patchpilot.db.tables import finding_events, findings, imports
from patchpilot.importers import jobs
from patchpilot.importers.apply import spool_dir
from patchpilot.pipeline import HANDLERS, SLOW_KINDS
from patchpilot.queue import lease

NESSUS = "tenable/nessus__nessus_with_cwe-.nessus"


def _old(path: Path) -> Path:
    """Make ``path`` look settled (written a minute ago)."""
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def test_watched_folder_imports_and_files_away(engine: Engine, shared_data: Path,
                                               tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    _old(Path(shutil.copy(shared_data / "reports" / NESSUS, folder / "weekly.nessus")))
    broken = folder / "notes.txt"
    broken.write_text("hello\n", encoding="utf-8")
    _old(broken)
    fresh = folder / "being-written.nessus"
    fresh.write_text("<NessusClientData_v2>", encoding="utf-8")  # changed just now
    results = jobs.scan_folder(engine, folder)
    assert [(r.file, r.summary.new if r.summary else None, r.error is not None)
            for r in results] == [("notes.txt", None, True), ("weekly.nessus", 15, False)]
    assert sorted(p.name for p in (folder / "done").iterdir()) == ["weekly.nessus"]
    assert sorted(p.name for p in (folder / "failed").iterdir()) == [
        "notes.txt", "notes.txt.error.txt"]
    reason = (folder / "failed" / "notes.txt.error.txt").read_text(encoding="utf-8")
    assert reason.startswith("notes.txt: no importer recognises this text file; tried nessus")
    assert fresh.exists()  # left for the next round
    assert list((folder / "processing").iterdir()) == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(findings)).scalar_one() == 15
    # The next round: nothing new settled, nothing done.
    assert jobs.scan_folder(engine, folder) == []


def test_spooled_upload_becomes_a_job_with_progress_and_summary(
        engine: Engine, shared_data: Path, tmp_path: Path) -> None:
    spooled = spool_dir(tmp_path / "home") / "upload-1"
    shutil.copy(shared_data / "reports" / NESSUS, spooled)
    row = jobs.queue_import(engine, spooled, "scan.nessus", actor="alice")
    assert (row.status, row.format, row.total, row.progress) == (
        "queued", "nessus", spooled.stat().st_size, 0)
    assert jobs.IMPORT in SLOW_KINDS
    job = lease(engine, "test-worker", kinds=(jobs.IMPORT,), seconds=60)
    assert job is not None and job.payload == {"import_id": row.id}
    result = HANDLERS[job.kind](engine, job)
    assert result["status"] == "done"
    done = jobs.get_import(engine, row.id)
    assert (done.status, done.producer, done.created_by, done.progress, done.total) == (
        "done", "importer:tenable", "alice", row.total, row.total)
    assert done.summary is not None
    assert (done.summary["new"], done.summary["assets"]) == (15, 1)
    with engine.connect() as conn:
        event = conn.execute(select(finding_events).where(
            finding_events.c.kind == "import_finished")).one()
    assert (event.producer, event.actor, orjson.loads(event.detail)) == (
        "importer:tenable", "alice", {"import_id": row.id, "file": "scan.nessus",
                                      "format": "nessus", "assets": 1, "findings": 15,
                                      "new": 15, "reopened": 0, "fixed": 0})
    assert not spooled.exists()
    assert [r.id for r in jobs.list_imports(engine)] == [row.id]


def test_a_job_whose_file_fails_says_why(engine: Engine, tmp_path: Path) -> None:
    spooled = spool_dir(tmp_path / "home") / "upload-2"
    spooled.write_text('{"SchemaVersion": 2, "ArtifactName": "x", "Results": [', "utf-8")
    row = jobs.queue_import(engine, spooled, "cut.json", actor="alice")
    assert row.format == "trivy"
    result = jobs.run_import_job(engine, row.id)
    assert result["status"] == "failed"
    failed = jobs.get_import(engine, row.id)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.startswith("cut.json")
    assert "malformed JSON" in failed.error
    assert not spooled.exists()
    with engine.connect() as conn:
        assert conn.execute(select(imports.c.spool)).scalar_one() is None
