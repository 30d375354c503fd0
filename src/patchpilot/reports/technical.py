"""The technical report of one asset group or business service, for the patch team.

Organised by patch (:mod:`patchpilot.reports.technical_data`): per item of the patch
plan, the change, the hosts and their windows, and the vulnerabilities it fixes with
their priority and the eight report fields (name, summary, affected range, CVE, CVSS,
exploit, fix, workaround) once each; then what no fix removes yet.  At most
``PATCHPILOT_REPORT_MAX_FINDINGS`` vulnerability blocks are detailed: past them the
report says what it leaves out and points to the CSV/XLSX export.  HTML or PDF, English
or Japanese.  (The field values come from the advisories and stay in their language; the
labels are translated -- except that a Japanese report gives JVN iPedia's Japanese title,
overview and solution of the vulnerabilities JVN describes: ``knowledge.jvn_text``.)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from patchpilot.assets.groups import Reach, Scope
from patchpilot.config import load_settings
from patchpilot.knowledge.jvn_text import JvnText, jvn_texts
from patchpilot.reports import html
from patchpilot.reports.executive import scope_label
from patchpilot.reports.i18n import translator
from patchpilot.reports.technical_data import TechnicalReport, technical_report


def render_html(report: TechnicalReport, lang: str,
                jvn: dict[str, JvnText] | None = None) -> str:
    """The technical report as a standalone HTML page (``jvn``: JVN's Japanese text per
    vulnerability, shown in place of the English name and summary)."""
    t = translator(lang)
    return html.render("technical.html", t, r=report,
                       scope_label=scope_label(report.scope, t, report.limited),
                       coverage=[c.to_dict() for c in report.coverage], jvn=jvn or {})


def shown_vulns(report: TechnicalReport) -> list[str]:
    """The vulnerabilities the report details (its shown blocks)."""
    blocks = [v for s in report.sections for v in s.vulns]
    blocks += [v for u in report.unfixed for v in u.vulns]
    return [v.vuln_id for v in blocks]


def build(conn: Connection, scope: Scope | None = None, *, lang: str = "en",
          fmt: str = "pdf", now: datetime | None = None, limit: int | None = None,
          reach: Reach = None) -> bytes:
    """Gather and render the technical report (``fmt``: pdf or html) as bytes; ``limit``:
    the most vulnerability blocks detailed (default: the ``report_max_findings``
    setting); ``reach``: the assets its reader may see (None: no limit)."""
    translator(lang)  # an unknown language fails before any query runs
    if limit is None:
        limit = load_settings().report_max_findings
    report = technical_report(conn, scope, limit=limit, now=now, reach=reach)
    # JVN's Japanese text for a Japanese reader only (one query for the shown blocks).
    jvn = jvn_texts(conn, shown_vulns(report)) if lang == "ja" else {}
    page = render_html(report, lang, jvn)
    return page.encode("utf-8") if fmt == "html" else html.to_pdf(page)
