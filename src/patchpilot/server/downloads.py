"""File downloads: the ``Content-Disposition`` header and a generated report as an answer.

Shared by the API (``GET /api/reports/{kind}``, ``/api/plan.csv``, ``/api/plan/ansible``)
and the dashboard's pages, which must not call each other's routes.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi.responses import Response

from patchpilot.reports.ansible import zip_archive
from patchpilot.reports.generate import Report
from patchpilot.scans.plan import PatchPlan, plan_csv


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


def plan_csv_response(plan: PatchPlan) -> Response:
    """The patch plan as a CSV download, one row per host of each item."""
    return Response(plan_csv(plan), media_type="text/csv",
                    headers={"Content-Disposition": content_disposition("plan.csv")})


def plan_ansible_response(plan: PatchPlan) -> Response:
    """The patch plan as an Ansible playbook with its inventory, zipped, as a download."""
    return Response(zip_archive(plan), media_type="application/zip",
                    headers={"Content-Disposition": content_disposition("plan-ansible.zip")})
