"""The technical report of one asset group or business service, for the patch team.

Every open finding of the scope, grouped by asset and ordered by priority, each with the
eight report fields (name, summary, affected range, CVE, CVSS, exploit, fix, workaround)
and the reason its priority was derived -- HTML or PDF, English or Japanese.  (The
field values come from the advisories and stay in their language; the labels are
translated.)
"""

from __future__ import annotations

from datetime import datetime
from itertools import groupby

from sqlalchemy.engine import Connection

from patchpilot.assets.groups import Scope, resolve_scope
from patchpilot.clock import now_utc
from patchpilot.findings.coverage import estate_coverage
from patchpilot.knowledge.coverage import EcosystemCoverage
from patchpilot.reports import html
from patchpilot.reports.data import TechnicalFinding, technical_findings
from patchpilot.reports.executive import scope_label
from patchpilot.reports.i18n import translator


def render_html(rows: list[TechnicalFinding], scope: Scope, lang: str, *,
                now: datetime | None = None,
                coverage: list[EcosystemCoverage] | None = None) -> str:
    """The technical report of ``rows`` as a standalone HTML page; ``coverage``: the
    scope's ecosystems with the advisories loaded for each (its "Coverage" section)."""
    t = translator(lang)
    ordered = sorted(rows, key=lambda r: (r.asset, r.priority or 9, r.vuln_id, r.package))
    by_asset = [(asset, list(items)) for asset, items in groupby(ordered, key=lambda r: r.asset)]
    return html.render("technical.html", t, rows=rows, by_asset=by_asset,
                       scope_label=scope_label(scope, t), generated_at=now or now_utc(),
                       coverage=[c.to_dict() for c in coverage or ()])


def build(conn: Connection, scope: Scope | None = None, *, lang: str = "en",
          fmt: str = "pdf", now: datetime | None = None) -> bytes:
    """Gather and render the technical report (``fmt``: pdf or html) as bytes."""
    translator(lang)
    scope = scope or Scope()
    coverage = estate_coverage(conn, resolve_scope(conn, scope))
    page = render_html(technical_findings(conn, scope), scope, lang, now=now,
                       coverage=coverage)
    return page.encode("utf-8") if fmt == "html" else html.to_pdf(page)
