"""CSV and XLSX exports of findings and of assets.

The columns and the sheets' names are stable English keys (a spreadsheet or a script
reads them, whatever the report language); the values PatchPilot words itself -- the
priority reason, severity, yes/no, the exploit summary -- are in the report's language.
XLSX sheets have a bold header row, frozen panes below it and an autofilter over the
data, so a sheet of 10,000 rows is usable as soon as it opens.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.engine import Connection

from patchpilot.assets.groups import Scope, resolve_scope
from patchpilot.cells import safe_cell, safe_record
from patchpilot.clock import iso
from patchpilot.db.tables import asset_context, assets, finding_priority, findings
from patchpilot.findings.phrases import localise
from patchpilot.reports.data import TechnicalFinding, in_scope
from patchpilot.reports.i18n import translator
from patchpilot.scoring.reasons import reason_text

FINDING_COLUMNS = ("asset", "service", "priority", "priority_reason", "due_date", "vuln_id",
                   "cve", "name", "package", "ecosystem", "installed_version",
                   "installations", "affected_range", "cvss_score", "cvss_vector", "severity",
                   "known_exploited", "exploit", "fixed_version", "fix_command",
                   "workaround")
ASSET_COLUMNS = ("asset", "fqdn", "os", "criticality", "environment", "exposure", "service",
                 "owner", "last_seen", "open", "p1", "p2", "p3", "p4", "known_exploited")


def finding_rows(rows: list[TechnicalFinding], lang: str = "en") -> list[dict[str, Any]]:
    """One dict per finding, keyed by :data:`FINDING_COLUMNS`; the words PatchPilot writes
    (the priority reason, the severity, yes/no, the exploit summary, the fixed phrases)
    in ``lang``, the advisories' own text as it is."""
    _ = translator(lang).gettext
    return [{
        "asset": r.asset, "service": r.service or "",
        "priority": f"P{r.priority}" if r.priority else "",
        "priority_reason": reason_text(r.reason, _),
        "due_date": iso(r.due_date) or "", "vuln_id": r.vuln_id, "cve": r.cve or "",
        "name": localise(r.name, _), "package": r.package, "ecosystem": r.ecosystem,
        "installed_version": r.installed_version or "",
        "installations": r.installations_text, "affected_range": r.affected_range,
        "cvss_score": r.cvss_score if r.cvss_score is not None else "",
        "cvss_vector": r.cvss_vector or "", "severity": _(r.severity),
        "known_exploited": _("yes") if r.known_exploited else _("no"),
        "exploit": localise(r.exploit, _),
        "fixed_version": r.fixed_version or "", "fix_command": r.fix_command or "",
        "workaround": localise(r.workaround, _)} for r in rows]


def asset_rows(conn: Connection, scope: Scope | None = None) -> list[dict[str, Any]]:
    """One dict per asset of ``scope`` with its open findings per priority (one query)."""
    ids = resolve_scope(conn, scope or Scope())
    f, fp = findings, finding_priority
    one = literal(1)
    is_open = f.c.state == "open"

    def count(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, one), else_=0)), 0)

    per_asset = (select(f.c.asset_id,
                        count(is_open).label("open"),
                        *(count(is_open & (fp.c.priority == p)).label(f"p{p}")
                          for p in (1, 2, 3, 4)),
                        count(is_open & f.c.known_exploited.is_(True)).label("kev"))
                 .select_from(f.outerjoin(fp, fp.c.finding_id == f.c.id))
                 .group_by(f.c.asset_id).subquery())
    stmt = (select(assets.c.name, assets.c.fqdn, assets.c.os, assets.c.last_seen,
                   asset_context.c.criticality, asset_context.c.environment,
                   asset_context.c.exposure, asset_context.c.service, asset_context.c.owner,
                   per_asset.c.open, per_asset.c.p1, per_asset.c.p2, per_asset.c.p3,
                   per_asset.c.p4, per_asset.c.kev)
            .outerjoin(asset_context, asset_context.c.asset_id == assets.c.id)
            .outerjoin(per_asset, per_asset.c.asset_id == assets.c.id)
            .where(in_scope(assets.c.id, ids)).order_by(assets.c.name, assets.c.id))
    return [{"asset": r.name, "fqdn": r.fqdn or "", "os": r.os or "",
             "criticality": r.criticality if r.criticality is not None else "",
             "environment": r.environment or "", "exposure": r.exposure or "",
             "service": r.service or "", "owner": r.owner or "",
             "last_seen": iso(r.last_seen) or "", "open": int(r.open or 0),
             "p1": int(r.p1 or 0), "p2": int(r.p2 or 0), "p3": int(r.p3 or 0),
             "p4": int(r.p4 or 0), "known_exploited": int(r.kev or 0)} for r in conn.execute(stmt)]


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """Rows as CSV text with a header line (``\\n`` line ends); text cells that start like
    a formula are neutralised (:mod:`patchpilot.cells`)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(safe_record(r) for r in rows)
    return out.getvalue()


def to_xlsx(sheets: list[tuple[str, list[dict[str, Any]], tuple[str, ...]]]) -> bytes:
    """Sheets of rows as an XLSX workbook: header row, frozen panes, autofilter.

    openpyxl stores any text starting with ``=`` as a formula: every text cell goes
    through :func:`patchpilot.cells.safe_cell` so an asset's name can never run as one.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, rows, columns in sheets:
        sheet = book.create_sheet(title)
        sheet.append(list(columns))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append([safe_cell(row.get(c, "")) for c in columns])
        sheet.freeze_panes = "A2"
        last = get_column_letter(len(columns))
        sheet.auto_filter.ref = f"A1:{last}{max(len(rows) + 1, 1)}"
        for i, column in enumerate(columns, 1):
            # Wide enough for the header and typical values, capped so summaries wrap.
            longest = max([len(column), *(len(str(r.get(column, ""))) for r in rows[:200])])
            sheet.column_dimensions[get_column_letter(i)].width = min(max(longest + 2, 8), 60)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
