"""CSV and XLSX exports of findings and of assets.

The columns and the sheets' names are stable English keys (a spreadsheet or a script
reads them, whatever the report language); the values PatchPilot words itself -- the
priority reason, severity, yes/no, the exploit summary -- are in the report's language.
XLSX sheets have a bold header row, frozen panes below it and an autofilter over the
data, so a sheet of 10,000 rows is usable as soon as it opens.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache, partial
from typing import Any, BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import case, func, literal, select
from sqlalchemy.engine import Connection

from patchpilot.assets.groups import Reach, Scope, narrow, resolve_scope
from patchpilot.cells import csv_chunks, safe_values
from patchpilot.clock import iso
from patchpilot.db.tables import asset_context, assets, finding_priority, findings
from patchpilot.findings.phrases import localise
from patchpilot.reports.data import (
    TechnicalFinding,
    TechnicalRow,
    in_scope,
    installations_line,
)
from patchpilot.reports.i18n import translator
from patchpilot.scoring.reasons import reason_text

FINDING_COLUMNS = ("asset", "service", "priority", "priority_reason", "due_date", "vuln_id",
                   "cve", "name", "package", "ecosystem", "installed_version",
                   "installations", "affected_range", "cvss_score", "cvss_vector", "severity",
                   "known_exploited", "exploit", "fixed_version", "fix_command",
                   "workaround")
ASSET_COLUMNS = ("asset", "fqdn", "os", "criticality", "environment", "exposure", "service",
                 "owner", "last_seen", "open", "p1", "p2", "p3", "p4", "known_exploited")


# The words of a report repeat from row to row (a reason, an advisory's title, a phrase):
# each distinct one is rendered once, in caches this large per export.
WORD_CACHE = 8192


def finding_values(rows: Iterable[TechnicalFinding | TechnicalRow], lang: str = "en"
                   ) -> Iterator[list[Any]]:
    """Each finding's cells in :data:`FINDING_COLUMNS` order, one at a time (the streamed
    exports): the words PatchPilot writes (the priority reason, the severity, yes/no, the
    exploit summary, the fixed phrases) in ``lang``, the advisories' own text as it is.

    Rendering a reason or looking a phrase up costs more than the rest of a row, and a
    million rows hold a few thousand distinct ones: they go through bounded caches.  A list
    in column order, not a dict, because an export of a million rows feels every step.
    """
    _ = translator(lang).gettext
    word = lru_cache(maxsize=WORD_CACHE)(_)
    reason = lru_cache(maxsize=WORD_CACHE)(partial(reason_text, gettext=_))
    phrase = lru_cache(maxsize=WORD_CACHE)(partial(localise, gettext=_))
    moment = lru_cache(maxsize=WORD_CACHE)(iso)  # due dates repeat too (one per day)
    # And a package's installed and fixed versions across the hosts that have it.
    copies = lru_cache(maxsize=WORD_CACHE)(installations_line)
    yes, no = _("yes"), _("no")
    for r in rows:
        yield [r.asset, r.service or "", f"P{r.priority}" if r.priority else "",
               reason(r.reason), moment(r.due_date) or "", r.vuln_id, r.cve or "",
               phrase(r.name), r.package, r.ecosystem, r.installed_version or "",
               copies(r.installations), r.affected_range,
               r.cvss_score if r.cvss_score is not None else "", r.cvss_vector or "",
               word(r.severity), yes if r.known_exploited else no, phrase(r.exploit),
               r.fixed_version or "", r.fix_command or "", phrase(r.workaround)]


def iter_finding_rows(rows: Iterable[TechnicalFinding], lang: str = "en"
                      ) -> Iterator[dict[str, Any]]:
    """:func:`finding_values` keyed by :data:`FINDING_COLUMNS`."""
    for values in finding_values(rows, lang):
        yield dict(zip(FINDING_COLUMNS, values, strict=True))


def finding_rows(rows: Iterable[TechnicalFinding], lang: str = "en") -> list[dict[str, Any]]:
    """Every finding's row (:func:`iter_finding_rows`) in a list."""
    return list(iter_finding_rows(rows, lang))


def asset_rows(conn: Connection, scope: Scope | None = None, *, reach: Reach = None
               ) -> list[dict[str, Any]]:
    """One dict per asset of ``scope`` (within ``reach``, the reader's part of the estate)
    with its open findings per priority (one query)."""
    ids = narrow(resolve_scope(conn, scope or Scope()), reach)
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


# The rows an XLSX column's width is judged by (the first ones).
WIDTH_SAMPLE = 200

# A sheet: its title, its rows (cells in the columns' order), its columns.
Sheet = tuple[str, Iterable[Sequence[Any]], tuple[str, ...]]


def in_columns(rows: Iterable[Mapping[str, Any]], columns: tuple[str, ...]
               ) -> Iterator[list[Any]]:
    """Rows keyed by column as lists of cells in ``columns`` order (a missing key: "")."""
    for row in rows:
        yield [row.get(c, "") for c in columns]


def to_csv(rows: Iterable[Mapping[str, Any]], columns: tuple[str, ...]) -> str:
    """Rows keyed by column as CSV text (:func:`csv_chunks`, joined: for the small ones)."""
    return b"".join(csv_chunks(in_columns(rows, columns), columns)).decode("utf-8")


def write_xlsx(target: str | os.PathLike[str] | BinaryIO, sheets: Iterable[Sheet]) -> int:
    """Sheets of rows as an XLSX workbook written to ``target`` (a path or a binary file):
    bold header row, frozen panes, autofilter, column widths from the first rows.  The
    rows written in all.

    openpyxl's write-only mode: each row goes to the sheet's temporary file as it is
    appended and strings are written inline, so memory stays flat for a million rows
    (the ordinary mode keeps every cell as an object, ~1 KB each).  Each sheet's rows are
    only iterated once; the first :data:`WIDTH_SAMPLE` are held to size the columns, which
    must be declared before the first row.  openpyxl stores any text starting with ``=``
    as a formula: every text cell goes through :func:`patchpilot.cells.safe_cell`.
    """
    book = Workbook(write_only=True)
    bold = Font(bold=True)
    written = 0
    for title, rows, columns in sheets:
        sheet = book.create_sheet(title)
        rest = iter(rows)
        head = list(itertools.islice(rest, WIDTH_SAMPLE))
        for i, column in enumerate(columns, 1):
            # Wide enough for the header and typical values, capped so summaries wrap.
            longest = max([len(column), *(len(str(r[i - 1])) for r in head)])
            sheet.column_dimensions[get_column_letter(i)].width = min(max(longest + 2, 8), 60)
        sheet.freeze_panes = "A2"
        header = []
        for column in columns:
            cell = WriteOnlyCell(sheet, value=column)
            cell.font = bold
            header.append(cell)
        sheet.append(header)
        count = 0
        for row in itertools.chain(head, rest):
            sheet.append(safe_values(row))
            count += 1
        # The autofilter is written after the rows (the sheet's tail), so it can be set now.
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{count + 1}"
        written += count
    book.save(target)
    return written


def to_xlsx(sheets: Iterable[Sheet]) -> bytes:
    """Sheets of rows as XLSX bytes (:func:`write_xlsx` into memory: for the small ones)."""
    out = io.BytesIO()
    write_xlsx(out, sheets)
    return out.getvalue()
