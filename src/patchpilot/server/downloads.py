"""File downloads: the ``Content-Disposition`` header and a generated report as an answer.

Shared by the API (``GET /api/reports/{kind}``, ``/api/plan.csv``, ``/api/plan/ansible``)
and the dashboard's pages, which must not call each other's routes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from urllib.parse import quote

from fastapi.responses import Response, StreamingResponse
from sqlalchemy.engine import Engine

from patchpilot.clock import now_utc
from patchpilot.reports.ansible import write_zip
from patchpilot.reports.generate import Report
from patchpilot.scans import plan_store
from patchpilot.scans.plan import PLAN_COLUMNS, csv_chunks
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


def plan_csv_response(engine: Engine, query: PlanQuery) -> StreamingResponse:
    """The stored patch plan of ``query`` as a CSV download, one row per host of each item,
    written to the response an item at a time (memory flat at any estate size)."""
    def chunks() -> Iterator[bytes]:
        with engine.connect() as conn:
            rows = plan_store.csv_rows(conn, plan_store.status(conn), query)
            for text in csv_chunks(rows, PLAN_COLUMNS):
                yield text.encode("utf-8")

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
