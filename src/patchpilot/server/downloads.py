"""File downloads: the ``Content-Disposition`` header and a generated report as an answer.

Shared by the API (``GET /api/reports/{kind}``) and the dashboard's report page, which
must not call each other's routes.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi.responses import Response

from patchpilot.reports.generate import Report


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
