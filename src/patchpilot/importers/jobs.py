"""Imports as background jobs (an upload through the API or the dashboard) and the watched
folder (a scanner's scheduled export dropped where PatchPilot picks it up).

An upload is spooled to the server's home (``imports/``, 0700), recognised at once -- a
file no importer reads is refused while the user waits, not later in a job -- recorded as
an ``imports`` row (queued) and given to a worker as an ``import`` job.  The job reports
its progress (bytes read) on the row, and leaves the summary or the reason it failed
there; the spooled file is removed either way.

The watched folder: every regular file in it is claimed by renaming it into
``processing/`` (so two workers never import one file), imported, and moved to ``done/``
or to ``failed/`` with ``<name>.error.txt`` beside it saying why.  A file still being
written (changed within the last few seconds) is left for the next round.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, insert, select, update

from patchpilot import queue
from patchpilot.clock import now_utc
from patchpilot.db.tables import imports
from patchpilot.errors import NotFound, PatchPilotError
from patchpilot.importers import registry
from patchpilot.importers.apply import (
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    ImportSummary,
    file_digest,
    import_file,
    remove_quietly,
)

log = logging.getLogger(__name__)

IMPORT = "import"  # the job kind

# A file in the watched folder changed more recently than this is still being written.
SETTLE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One ``imports`` row, for the API and the dashboard."""

    id: int
    file_name: str
    format: str | None
    producer: str | None
    scope: str | None
    status: str
    created_by: str | None
    created_at: datetime
    finished_at: datetime | None
    progress: int
    total: int | None
    summary: dict[str, Any] | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601)."""
        return {"id": self.id, "file_name": self.file_name, "format": self.format,
                "producer": self.producer, "scope": self.scope, "status": self.status,
                "created_by": self.created_by, "created_at": self.created_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "progress": self.progress, "total": self.total, "summary": self.summary,
                "error": self.error}


def _row(r: Any) -> ImportRow:
    return ImportRow(id=r.id, file_name=r.file_name, format=r.format, producer=r.producer,
                     scope=r.scope, status=r.status, created_by=r.created_by,
                     created_at=r.created_at, finished_at=r.finished_at,
                     progress=r.progress or 0, total=r.total,
                     summary=orjson.loads(r.summary) if r.summary else None, error=r.error)


def queue_import(engine: Engine, spooled: Path, name: str, *, format: str | None = None,
                 scope: str | None = None, asset: str | None = None,
                 actor: str) -> ImportRow:
    """Record an uploaded file (already spooled) and queue its import job.

    The format is checked now: ``--format`` must name one, else the content must be
    recognised (``registry.UnknownFormat`` otherwise, and the spooled file is removed).
    """
    try:
        with spooled.open("rb") as stream:
            fmt = registry.by_name(format) if format else registry.detect(
                registry.sniff(stream, name))
        digest, size = file_digest(spooled)
    except Exception:
        remove_quietly(spooled)
        raise
    now = now_utc()
    with engine.begin() as conn:
        import_id = int(conn.execute(insert(imports).values(
            file_name=name[:500], format=fmt.name, producer=None, scope=scope, asset=asset,
            digest=digest, size=size, status=QUEUED, created_by=actor, created_at=now,
            progress=0, total=size, spool=str(spooled)).returning(imports.c.id)).scalar_one())
        queue.enqueue(conn, IMPORT, {"import_id": import_id})
    return get_import(engine, import_id)


def get_import(engine: Engine, import_id: int) -> ImportRow:
    """One import's row, or NotFound."""
    with engine.connect() as conn:
        r = conn.execute(select(imports).where(imports.c.id == import_id)).first()
    if r is None:
        raise NotFound(f"import {import_id}: no such import")
    return _row(r)


def list_imports(engine: Engine, *, limit: int = 50) -> list[ImportRow]:
    """The latest imports, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(imports).order_by(imports.c.id.desc()).limit(limit)).all()
    return [_row(r) for r in rows]


def _progress_writer(engine: Engine, import_id: int) -> Callable[[int, int], None]:
    last = [0.0]

    def write(done: int, total: int) -> None:
        # At most twice a second, in a transaction of its own (the report is still being
        # read: the import's own transaction has not begun).
        now = time.monotonic()
        if now - last[0] < 0.5 and done < total:
            return
        last[0] = now
        with engine.begin() as conn:
            conn.execute(update(imports).where(imports.c.id == import_id)
                         .values(progress=done, total=total))

    return write


def run_import_job(engine: Engine, import_id: int) -> dict[str, Any]:
    """The ``import`` job: import the spooled file; the summary (or the failure) goes on
    the row, and the spooled file is removed."""
    with engine.begin() as conn:
        r = conn.execute(select(imports).where(imports.c.id == import_id)).first()
        if r is None:
            raise NotFound(f"import {import_id}: no such import")
        if r.status not in (QUEUED, RUNNING):
            return {"import_id": import_id, "status": r.status}  # already settled
        conn.execute(update(imports).where(imports.c.id == import_id)
                     .values(status=RUNNING, started_at=now_utc()))
    spool = Path(r.spool) if r.spool else None
    try:
        if spool is None or not spool.exists():
            raise PatchPilotError(f"{r.file_name}: the uploaded file is gone from the server "
                                  "(removed before its import ran); upload it again")
        summary = import_file(engine, spool, name=r.file_name, format=r.format,
                              scope=r.scope, asset=r.asset, actor=r.created_by or "api",
                              import_id=import_id,
                              progress=_progress_writer(engine, import_id))
    except PatchPilotError as exc:
        with engine.begin() as conn:
            conn.execute(update(imports).where(imports.c.id == import_id).values(
                status=FAILED, error=str(exc), finished_at=now_utc(), spool=None))
        remove_quietly(spool)
        return {"import_id": import_id, "status": FAILED, "error": str(exc)}
    remove_quietly(spool)
    return {"import_id": import_id, "status": DONE if not summary.duplicate else "duplicate",
            "summary": summary.to_dict()}


# --- the watched folder -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WatchResult:
    """One file the watched folder gave: its summary, or why it failed."""

    file: str
    summary: ImportSummary | None
    error: str | None


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    if not target.exists():
        return target
    stamp = now_utc().strftime("%Y%m%dT%H%M%S")
    return folder / f"{stamp}-{os.getpid()}-{name}"


def scan_folder(engine: Engine, folder: Path, *, scope: str | None = None,
                actor: str = "watched-folder", settle: float = SETTLE_SECONDS
                ) -> list[WatchResult]:
    """Import every settled file in ``folder`` once; move each to ``done/`` or
    ``failed/`` (with ``<name>.error.txt``)."""
    results: list[WatchResult] = []
    if not folder.is_dir():
        raise PatchPilotError(f"{folder}: the watched folder does not exist; create it or "
                              "give another (--watch DIR, PATCHPILOT_IMPORT_WATCH_DIR)")
    processing, done, failed = (folder / "processing", folder / "done", folder / "failed")
    for sub in (processing, done, failed):
        sub.mkdir(exist_ok=True)
    now = time.time()
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.name.endswith(".part"):
            continue
        try:
            if now - path.stat().st_mtime < settle:
                continue  # still being written
            claimed = _free_name(processing, path.name)
            os.rename(path, claimed)  # atomic: another worker that got here first wins
        except FileNotFoundError:
            continue
        try:
            summary = import_file(engine, claimed, name=path.name, scope=scope, actor=actor)
        except PatchPilotError as exc:
            target = _free_name(failed, path.name)
            shutil.move(claimed, target)
            target.with_name(target.name + ".error.txt").write_text(str(exc) + "\n",
                                                                     encoding="utf-8")
            log.warning("watched folder: %s failed: %s", path.name, exc)
            results.append(WatchResult(path.name, None, str(exc)))
            continue
        shutil.move(claimed, _free_name(done, path.name))
        results.append(WatchResult(path.name, summary, None))
    return results


_last_poll = [0.0]
_poll_lock = threading.Lock()
# How often idle workers look into the server's watched folder.
POLL_SECONDS = 30.0


def poll_watched_folder(engine: Engine, folder: Path | None) -> list[WatchResult]:
    """Scan the server's watched folder (``PATCHPILOT_IMPORT_WATCH_DIR``), at most every
    :data:`POLL_SECONDS` per process; nothing without a folder."""
    if folder is None:
        return []
    with _poll_lock:
        if time.monotonic() - _last_poll[0] < POLL_SECONDS:
            return []
        _last_poll[0] = time.monotonic()
    try:
        return scan_folder(engine, folder)
    except PatchPilotError as exc:
        log.warning("%s", exc)
        return []
