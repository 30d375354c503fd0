"""Report jobs: a report too large to build while a request waits, built by a worker under
a memory ceiling and kept as a file for a while.

The flow: :func:`start_report_job` (``POST /api/reports/jobs``, the reports page, or a
synchronous download past ``PATCHPILOT_REPORT_SYNC_FINDINGS``) queues a ``report_file``
job; a worker's report lane (``worker.start_pool``: a thread of its own, so a report never
holds the scans or an upload's match) runs :func:`run_report_file`, which builds the file
with :func:`build_report` under ``PATCHPILOT_HOME/reports/<job id>/``; the job's row holds
its progress while it runs and the file's name, size and expiry once done
(:func:`report_job`); the file is downloaded with :func:`report_job_file` and removed
``PATCHPILOT_REPORT_KEEP_HOURS`` after the job finished (:func:`remove_expired`, in the
workers' upkeep).  The scheduled mail (``reports.mail.run_report``) builds its attachment
with the same :func:`build_report`.

**The memory ceiling.**  A report is built in a child process (``multiprocessing``'s
*spawn*: a fresh interpreter, nothing shared with the server's threads) that the worker
watches: past ``PATCHPILOT_REPORT_MEMORY_MB`` of resident memory (``VmRSS`` of
``/proc/<pid>/status``, read every 0.1 s) it is killed, and the job fails with
:class:`ReportTooLarge`, which names the report, the limit and what to do.  Resident
memory rather than ``RLIMIT_AS``: the address space counts what is only reserved -- each
thread's glibc arena (64 MiB), mapped fonts and libraries -- so a ceiling on it fails
reports that use a fraction of it, or must be set so high it protects nothing.  A
``MemoryError`` inside the child (an allocation the system refused) fails the job with the
same message.  Whatever happens in the child, the server process's memory is untouched.

Report jobs are visible to every viewer (a report shows what the pages already show) --
but for users limited to part of the estate (issue 18): their jobs are built of that part
only (the job keeps the user's scopes, resolved when it is built), and they see their own
jobs only, never another's file.  Jobs are tried once: a report that failed for its size
would fail again, and asking anew is one click.
"""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from patchpilot import queue
from patchpilot.assets.groups import Scope, reach_ids, resolve_scope
from patchpilot.audit import audit
from patchpilot.clock import aware, iso, now_utc
from patchpilot.config import Settings, load_settings
from patchpilot.db.engine import make_engine
from patchpilot.db.tables import jobs
from patchpilot.errors import Conflict, NotFound, PatchPilotError
from patchpilot.reports.data import open_findings
from patchpilot.reports.generate import MIME, check_request, write_report

log = logging.getLogger(__name__)

REPORT_FILE = "report_file"
# How often the worker looks at the child: its memory, its progress.
WATCH_SECONDS = 0.1
# How often the progress is written to the job's row.
PROGRESS_SECONDS = 1.0
# The states a report job shows: the queue's, with "running" for a leased job and
# "expired" for a done one whose file was removed.
STATES = ("queued", "running", "done", "failed", "expired")


class ReportJobNotFound(NotFound):
    """A job id that names no report job."""


class ReportNotReady(Conflict):
    """A report job's file asked for before it is done, after it failed or expired."""


class ReportTooLarge(PatchPilotError):
    """A report that needed more memory than ``PATCHPILOT_REPORT_MEMORY_MB``."""


class ReportBuildFailed(PatchPilotError):
    """A report whose child process failed (its error) or died without a word."""


ScopePairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """What a report job builds: the options of ``GET /api/reports/{kind}``, and the
    scopes of the user it is for (``("group", "plant1")`` …; empty: the whole estate),
    which the report is narrowed to."""

    kind: str
    fmt: str
    lang: str
    group: str | None = None
    service: str | None = None
    scopes: ScopePairs = ()

    @property
    def scope(self) -> Scope:
        """The report's scope."""
        return Scope(group=self.group, service=self.service)

    @property
    def label(self) -> str:
        """"the technical report (xlsx) of group site-1": the report, for a message."""
        where = (f" of group {self.group}" if self.group
                 else f" of service {self.service}" if self.service else " of the estate")
        if self.scopes:
            where += " within " + ", ".join(f"{k} {n}" for k, n in self.scopes)
        return f"the {self.kind} report ({self.fmt}){where}"

    def to_payload(self) -> dict[str, Any]:
        """The job's payload fields (``scopes`` only when there are some)."""
        out: dict[str, Any] = {"kind": self.kind, "format": self.fmt, "lang": self.lang,
                               "group": self.group, "service": self.service}
        if self.scopes:
            out["scopes"] = [list(s) for s in self.scopes]
        return out

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ReportRequest:
        """Back from a job's payload."""
        return cls(payload["kind"], payload["format"], payload["lang"],
                   payload.get("group"), payload.get("service"),
                   _pairs(payload.get("scopes")))


def _pairs(scopes: Any) -> ScopePairs:
    """Scopes as stored in a payload (a list of ``[kind, name]``) as sorted pairs."""
    return tuple(sorted((str(k), str(n)) for k, n in scopes or ()))


@dataclass(frozen=True, slots=True)
class BuiltReport:
    """A report file a child process wrote, and what it took."""

    path: Path
    filename: str
    mime: str
    size: int
    rows: int
    peak_mb: int
    seconds: float


def too_large_message(request: ReportRequest, limit_mb: int) -> str:
    """What a report over the memory ceiling tells its user: which, the limit, what to
    do."""
    advice = ("narrow its scope to an asset group or a business service, or download it "
              "as CSV, which streams in flat memory at any size")
    if request.fmt == "csv":
        advice = "narrow its scope to an asset group or a business service"
    return (f"{request.label} needed more than the report memory limit of {limit_mb} MB "
            f"(PATCHPILOT_REPORT_MEMORY_MB) and was stopped: {advice}")


# --- the child process ---------------------------------------------------------------------

def _child(url: str, payload: dict[str, Any], folder: str, now: str, rows: Any,
           answer: Pipe) -> None:
    """The child's work: build the report into ``folder``, answer what was made (or the
    error) on ``answer``.  Module level, so that a spawned interpreter can import it."""
    request = ReportRequest.from_payload(payload)
    engine = make_engine(url)

    def counted(n: int) -> None:
        rows.value = n

    try:
        with engine.connect() as conn:
            # The user's part of the estate as it is now (a group's members may have
            # changed since the job was asked for; a scope gone adds nothing).
            reach = reach_ids(conn, request.scopes)
            made = write_report(conn, request.kind, request.fmt, request.lang, request.scope,
                                Path(folder), now=datetime.fromisoformat(now),
                                progress=counted, reach=reach)
        answer.send({"filename": made.filename, "mime": made.mime, "bytes": made.size})
    except MemoryError:
        answer.send({"memory": True})
    except Exception as exc:  # noqa: BLE001 - relayed to the worker, which fails the job
        answer.send({"error": f"{exc.__class__.__name__}: {exc}"})
    finally:
        engine.dispose()


def _rss_mb(pid: int) -> int:
    """The resident memory of process ``pid`` in MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        return 0
    return 0


def build_report(engine: Engine, request: ReportRequest, folder: Path, *, limit_mb: int,
                 now: datetime | None = None,
                 on_progress: Callable[[int], None] | None = None) -> BuiltReport:
    """Build ``request`` into ``folder`` in a child process held under ``limit_mb`` of
    resident memory; :class:`ReportTooLarge` past it, :class:`ReportBuildFailed` when the
    child fails.  ``on_progress(rows)`` is told how far an export is, about once a second.
    """
    spawn = multiprocessing.get_context("spawn")
    rows = spawn.Value("q", 0, lock=False)
    receive, send = spawn.Pipe(duplex=False)
    url = engine.url.render_as_string(hide_password=False)
    started = time.monotonic()
    child = spawn.Process(target=_child, daemon=True, name="patchpilot-report",
                          args=(url, request.to_payload(), str(folder),
                                (now or now_utc()).isoformat(), rows, send))
    child.start()
    send.close()  # the child holds the other end: EOF once it exits
    peak, told, answer = 0, 0.0, None
    try:
        while answer is None:
            if receive.poll(WATCH_SECONDS):
                try:
                    answer = receive.recv()
                except EOFError:
                    child.join(5)
                    answer = {"error": f"the report process ended (exit code "
                                       f"{child.exitcode}) without a word"}
                break
            rss = _rss_mb(child.pid or 0)
            peak = max(peak, rss)
            if rss > limit_mb:
                child.kill()
                raise ReportTooLarge(too_large_message(request, limit_mb))
            if on_progress is not None and time.monotonic() - told >= PROGRESS_SECONDS:
                told = time.monotonic()
                on_progress(int(rows.value))
        child.join(30)
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join(5)
        child.close()
    if answer.get("memory"):
        raise ReportTooLarge(too_large_message(request, limit_mb))
    if "error" in answer:
        raise ReportBuildFailed(f"{request.label}: {answer['error']}")
    return BuiltReport(folder / answer["filename"], answer["filename"], answer["mime"],
                       answer["bytes"], int(rows.value), peak,
                       round(time.monotonic() - started, 2))


# --- the job -------------------------------------------------------------------------------

def start_report_job(conn: Connection, actor: str, kind: str, fmt: str, lang: str,
                     group: str | None = None, service: str | None = None, *,
                     scopes: Sequence[tuple[str, str]] = ()) -> int:
    """Queue a report job (checked as a download is: 422 for a bad option, 404 for an
    unknown group or service); its id.  Audited.  ``scopes``: those of the user asking,
    limited to part of the estate (empty: the whole estate) -- the report covers that part
    only."""
    scope = check_request(kind, fmt, lang, group, service)
    resolve_scope(conn, scope)
    request = ReportRequest(kind, fmt, lang, scope.group, scope.service, _pairs(scopes))
    # The findings an export will write, for its progress (the other kinds have none).
    total = (open_findings(conn, scope, reach=reach_ids(conn, request.scopes))
             if kind == "technical" else None)
    job_id = queue.enqueue(conn, REPORT_FILE, {**request.to_payload(), "by": actor,
                                                "total": total}, max_attempts=1)
    audit(conn, actor, "report.job.start", f"job:{job_id}", request.to_payload())
    return job_id


def job_folder(settings: Settings, job_id: int) -> Path:
    """Where report job ``job_id`` writes its file."""
    return settings.reports_dir / str(job_id)


def run_report_file(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """The ``report_file`` job: :func:`build_report` into the job's folder, the progress
    on the job's row as it goes; the file's name, type, size and expiry."""
    settings = load_settings()
    request = ReportRequest.from_payload(job.payload)
    total = job.payload.get("total")

    def tell(rows: int) -> None:
        # A note of progress is best effort: a database busy with another writer (a plan
        # rebuild holds SQLite's lock for seconds) skips it rather than fail the report.
        try:
            queue.progress(engine, job.id, {"progress": {"rows": rows, "total": total}})
        except OperationalError as exc:
            log.info("report job %s: progress not noted (%s)", job.id,
                     str(exc.orig).splitlines()[0] if exc.orig else exc)

    folder = job_folder(settings, job.id)
    try:
        built = build_report(engine, request, folder, limit_mb=settings.report_memory_mb,
                             on_progress=tell)
    except PatchPilotError:
        shutil.rmtree(folder, ignore_errors=True)  # a .part left behind is of no use
        raise
    expires = now_utc() + timedelta(hours=settings.report_keep_hours)
    log.info("report job %s: %s, %d bytes, %d rows, %.1f s, peak %d MB", job.id,
             built.filename, built.size, built.rows, built.seconds, built.peak_mb)
    return {"file": built.filename, "mime": built.mime, "bytes": built.size,
            "rows": built.rows, "total": total, "peak_mb": built.peak_mb,
            "seconds": built.seconds, "expires_at": iso(expires)}


@dataclass(frozen=True, slots=True)
class JobViewer:
    """Who looks at report jobs: a user limited to part of the estate (``scopes``) sees
    only their own jobs built within their scopes; an unscoped user, every job."""

    name: str
    scopes: ScopePairs = ()

    def sees(self, payload: dict[str, Any]) -> bool:
        """Whether this user may see the job of ``payload``."""
        if not self.scopes:
            return True
        built = _pairs(payload.get("scopes"))
        # A job narrowed to scopes the user still has all of shows nothing else.
        return (payload.get("by") == self.name and bool(built)
                and set(built) <= set(self.scopes))


def _job_row(conn: Connection, job_id: int, viewer: JobViewer | None = None) -> Any:
    row = conn.execute(select(jobs).where(jobs.c.id == job_id, jobs.c.kind == REPORT_FILE)
                       ).first()
    if row is None or (viewer is not None and not viewer.sees(orjson.loads(row.payload))):
        raise ReportJobNotFound(f"no report job {job_id}")
    return row


def report_job(conn: Connection, job_id: int, now: datetime | None = None, *,
               viewer: JobViewer | None = None) -> dict[str, Any]:
    """A report job as the API and the page show it: what it builds, its state, its
    progress (``rows`` of ``total``, ``percent``) and, once done, its file.  A job
    ``viewer`` may not see is a :class:`ReportJobNotFound`."""
    row = _job_row(conn, job_id, viewer)
    now = now or now_utc()
    payload = orjson.loads(row.payload)
    result = orjson.loads(row.result) if row.result else {}
    state = {queue.LEASED: "running"}.get(row.state, row.state)
    expires = result.get("expires_at") if row.state == queue.DONE else None
    if expires and datetime.fromisoformat(expires) <= now:
        state = "expired"
    progress = result.get("progress") or {}
    rows = result.get("rows", progress.get("rows"))
    total = payload.get("total")
    if state == "done" and total is not None:
        rows = total if rows is None else rows
    percent = None
    if total and rows is not None:
        percent = min(100, int(100 * rows / total))
    elif total == 0 and state == "done":
        percent = 100
    return {"id": row.id, "state": state, "kind": payload["kind"],
            "format": payload["format"], "lang": payload["lang"],
            "group": payload.get("group"), "service": payload.get("service"),
            "requested_by": payload.get("by"), "created_at": iso(row.created_at),
            "finished_at": iso(row.finished_at), "rows": rows, "total": total,
            "percent": percent, "file": result.get("file") if state == "done" else None,
            "bytes": result.get("bytes") if state == "done" else None,
            "expires_at": expires, "error": row.error if state == "failed" else None,
            "peak_mb": result.get("peak_mb"), "seconds": result.get("seconds")}


# Report jobs looked through for a scoped user's own latest ones.
_RECENT_SCAN = 500


def recent_report_jobs(conn: Connection, limit: int = 10, *,
                       viewer: JobViewer | None = None) -> list[dict[str, Any]]:
    """The latest report jobs ``viewer`` may see, newest first."""
    if viewer is None or not viewer.scopes:
        ids = list(conn.execute(select(jobs.c.id).where(jobs.c.kind == REPORT_FILE)
                                .order_by(jobs.c.id.desc()).limit(limit)).scalars())
    else:
        ids = [r.id for r in conn.execute(
            select(jobs.c.id, jobs.c.payload).where(jobs.c.kind == REPORT_FILE)
            .order_by(jobs.c.id.desc()).limit(_RECENT_SCAN))
            if viewer.sees(orjson.loads(r.payload))][:limit]
    now = now_utc()
    return [report_job(conn, int(i), now) for i in ids]


@dataclass(frozen=True, slots=True)
class JobFile:
    """A done report job's file, to send."""

    path: Path
    filename: str
    mime: str


def report_job_file(conn: Connection, job_id: int, settings: Settings | None = None,
                    now: datetime | None = None, *,
                    viewer: JobViewer | None = None) -> JobFile:
    """The file of done report job ``job_id``; :class:`ReportNotReady` (409) while it is
    queued or running, after it failed or once it expired; :class:`ReportJobNotFound`
    for a job ``viewer`` may not see."""
    shown = report_job(conn, job_id, now, viewer=viewer)
    if shown["state"] != "done":
        why = {"queued": "is still queued", "running": "is still running",
               "failed": f"failed: {shown['error']}",
               "expired": "expired: its file was removed after "
                          "PATCHPILOT_REPORT_KEEP_HOURS; start it again"}[shown["state"]]
        raise ReportNotReady(f"report job {job_id} {why}")
    settings = settings or load_settings()
    path = job_folder(settings, job_id) / shown["file"]
    if not path.is_file():
        raise ReportNotReady(f"report job {job_id}: its file {shown['file']} is no longer "
                             "there; start it again")
    return JobFile(path, shown["file"], MIME.get(shown["format"], "application/octet-stream"))


def remove_expired(engine: Engine, settings: Settings | None = None,
                   now: datetime | None = None) -> int:
    """Remove the folders of report jobs that finished more than
    ``PATCHPILOT_REPORT_KEEP_HOURS`` ago, failed, or are no longer known; how many."""
    settings = settings or load_settings()
    root = settings.reports_dir
    if not root.is_dir():
        return 0
    now = now or now_utc()
    keep = timedelta(hours=settings.report_keep_hours)
    folders = {int(p.name): p for p in root.iterdir() if p.is_dir() and p.name.isdigit()}
    if not folders:
        return 0
    with engine.connect() as conn:
        known = {r.id: r for r in conn.execute(
            select(jobs.c.id, jobs.c.state, jobs.c.finished_at)
            .where(jobs.c.id.in_(list(folders)), jobs.c.kind == REPORT_FILE))}
    removed = 0
    for job_id, folder in folders.items():
        row = known.get(job_id)
        finished = aware(row.finished_at) if row is not None else None
        if (row is None or row.state == queue.FAILED
                or (finished is not None and finished + keep <= now)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
