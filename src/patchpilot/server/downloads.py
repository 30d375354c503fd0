"""File downloads: the ``Content-Disposition`` header, a report (made now, streamed, or
handed to a report job) and a report job's file as answers.

Shared by the API (``GET /api/reports/{kind}``, ``/api/reports/jobs/{id}/file``,
``/api/plan.csv``, ``/api/plan/ansible``, ``/api/plan/windows-kbs.csv``,
``/api/plan/windows-updates.ps1``) and the dashboard's pages, which must not call
each other's routes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from urllib.parse import quote

from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlalchemy.engine import Engine

from patchpilot.assets.groups import reach_ids, resolve_scope
from patchpilot.cells import csv_chunks
from patchpilot.clock import now_utc
from patchpilot.config import load_settings
from patchpilot.reports.ansible import write_zip
from patchpilot.reports.generate import (
    MIME,
    Report,
    check_request,
    generate,
    needs_job,
    report_filename,
    stream_csv,
)
from patchpilot.reports.jobs import JobFile, start_report_job
from patchpilot.reports.windows_updates import (
    CSV_NAME,
    SCRIPT_NAME,
    kb_csv_chunks,
    powershell,
)
from patchpilot.scans import plan_store
from patchpilot.scans.plan import PLAN_COLUMNS, WINDOWS_UPDATE
from patchpilot.scans.plan_store import PlanQuery


def content_disposition(filename: str) -> str:
    """``attachment`` with the file name, safe for any group or service name.

    A header is Latin-1; a Japanese group name is not.  RFC 6266 §4.3: send an ASCII
    ``filename`` for old clients and the exact name as RFC 8187 ``filename*``.
    """
    ascii_name = "".join(c if c.isascii() and c not in '"\\' else "_" for c in filename)
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


def report_response(report: Report) -> Response:
    """The report as a download."""
    return Response(report.content, media_type=report.mime,
                    headers={"Content-Disposition": content_disposition(report.filename)})


def report_or_job(engine: Engine, actor: str, kind: str, fmt: str, lang: str,
                  group: str | None, service: str | None, *,
                  scopes: Sequence[tuple[str, str]] = ()) -> Response | int:
    """A report asked for now (``GET /api/reports/{kind}``, the page's download): the file,
    or -- when it is too large to make while the request waits -- the id of the report job
    started for it.

    * CSV streams row by row from a server-side cursor at any size (flat memory);
    * a technical PDF, HTML or XLSX of more than ``PATCHPILOT_REPORT_SYNC_FINDINGS`` open
      findings in scope becomes a job (``reports.jobs``: a child process under the memory
      ceiling); everything else -- the executive report, small scopes -- is made at once.

    The request is checked first (422 for a bad option, 404 for an unknown group or
    service), so a streamed answer never starts for a report that cannot be made.
    ``scopes``: those of a user limited to part of the estate, whose report -- made now
    or by a job -- covers that part only.
    """
    scope = check_request(kind, fmt, lang, group, service)
    now = now_utc()
    with engine.connect() as conn:
        resolve_scope(conn, scope)
        reach = reach_ids(conn, scopes)
        if fmt == "csv":
            # The stream has a connection of its own: it outlives this one.
            return StreamingResponse(
                stream_csv(engine, kind, lang, scope, reach=reach), media_type=MIME["csv"],
                headers={"Content-Disposition": content_disposition(
                    report_filename(kind, fmt, lang, scope, now))})
        if not needs_job(conn, kind, fmt, scope, load_settings().report_sync_findings,
                         reach=reach):
            return report_response(generate(conn, kind, fmt, lang, scope, now=now,
                                            reach=reach))
    with engine.begin() as conn:
        return start_report_job(conn, actor, kind, fmt, lang, scope.group, scope.service,
                                scopes=scopes)


def job_file_response(made: JobFile) -> FileResponse:
    """A report job's file as a download (read from disk as it is sent)."""
    return FileResponse(made.path, media_type=made.mime,
                        headers={"Content-Disposition": content_disposition(made.filename)})


def plan_csv_response(engine: Engine, query: PlanQuery) -> StreamingResponse:
    """The stored patch plan of ``query`` as a CSV download, one row per host of each item,
    written to the response an item at a time (memory flat at any estate size)."""
    def chunks() -> Iterator[bytes]:
        with engine.connect() as conn:
            rows = plan_store.csv_rows(conn, plan_store.status(conn), query)
            yield from csv_chunks(rows, PLAN_COLUMNS)

    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": content_disposition("plan.csv")})


def plan_ansible_response(engine: Engine, query: PlanQuery) -> StreamingResponse:
    """The stored patch plan of ``query`` as an Ansible playbook with its inventory,
    zipped through a temporary file and streamed from it."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)
    with engine.connect() as conn:
        state = plan_store.status(conn)
        write_zip(plan_store.iter_items(conn, state, query), state.generated_at or now_utc(),
                  spool)  # type: ignore[arg-type]
    spool.seek(0)

    def chunks() -> Iterator[bytes]:
        with spool:
            while chunk := spool.read(1 << 16):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/zip", headers={
        "Content-Disposition": content_disposition("plan-ansible.zip")})


# The media type of a PowerShell script (what IIS and PowerShell Gallery serve it as).
PS1_MIME = "text/plain; charset=utf-8"


def plan_windows_response(engine: Engine, query: PlanQuery, name: str) -> Response:
    """The stored plan's Windows KBs per host of ``query``: ``windows-kbs.csv`` (host, kb,
    title, restart) or ``windows-updates.ps1`` (the PowerShell script installing them).
    Only the Windows items' pending hosts: a few thousand lines at most, made at once."""
    with engine.connect() as conn:
        state = plan_store.status(conn)
        items = plan_store.iter_items(conn, state, query, manager=WINDOWS_UPDATE)
        if name == CSV_NAME:
            return Response(b"".join(kb_csv_chunks(items)),
                            media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": content_disposition(name)})
        text = powershell(items, state.generated_at or now_utc())
    return Response(text.encode("utf-8"), media_type=PS1_MIME,
                    headers={"Content-Disposition": content_disposition(SCRIPT_NAME)})
