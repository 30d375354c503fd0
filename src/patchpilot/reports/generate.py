"""One entry point for every report × format: what the CLI, the mail job, the API and the
dashboard call.  Returns the bytes, a file name and a MIME type.

=========  ==========================  ==================================
kind       pdf / html                  csv / xlsx
=========  ==========================  ==================================
executive  the one-page risk posture   assets (xlsx: + summary, coverage sheets)
technical  the work by patch            findings (xlsx: + assets, coverage sheets)
=========  ==========================  ==================================

Each takes the ``reach`` of the user it is for (issue 18): the asset ids they may see, or
None for the whole estate.  A report then covers its scope's assets within the reach only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from patchpilot.assets.groups import Reach, Scope
from patchpilot.cells import csv_chunks
from patchpilot.clock import now_utc
from patchpilot.findings.coverage import estate_coverage
from patchpilot.reports import executive, exports, technical
from patchpilot.reports.data import (
    ReportError,
    executive_data,
    iter_technical_rows,
    open_findings,
    scope_ids,
)
from patchpilot.reports.i18n import LANGUAGES, translator

T = TypeVar("T")
# Told how many rows an export has written so far.
Progress = Callable[[int], None]

KINDS = ("executive", "technical")
FORMATS = ("pdf", "html", "csv", "xlsx")
MIME = {"pdf": "application/pdf", "html": "text/html; charset=utf-8",
        "csv": "text/csv; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@dataclass(frozen=True, slots=True)
class Report:
    """A generated report."""

    kind: str
    fmt: str
    lang: str
    content: bytes
    filename: str
    mime: str


def _summary_rows(conn: Connection, scope: Scope, now: datetime, reach: Reach
                  ) -> list[dict[str, object]]:
    d = executive_data(conn, scope, now=now, reach=reach)
    rows: list[tuple[str, object]] = [
        ("assets", d.assets), ("open_findings", d.open_total),
        *((f"open_{k.lower()}", v) for k, v in d.by_priority.items()),
        *((f"open_severity_{k.lower()}", v) for k, v in d.by_severity.items()),
        ("kev_findings", d.kev_findings), ("kev_cves", d.kev_cves),
        ("kev_assets", d.kev_assets), ("overdue", d.sla_overdue),
        ("fixed", d.sla_fixed), ("fixed_within_sla", d.sla_within),
        ("sla_compliance", "" if d.compliance is None else d.compliance),
        ("mttr_days", "" if d.mttr_days is None else d.mttr_days)]
    return [{"metric": k, "value": v} for k, v in rows]


COVERAGE_COLUMNS = ("ecosystem", "packages", "assets", "advisories", "covered")


def _coverage_rows(conn: Connection, scope: Scope, reach: Reach
                   ) -> list[dict[str, object]]:
    """The scope's ecosystems with the advisories loaded for each (``knowledge.coverage``),
    not covered first."""
    return [{**c.to_dict(), "covered": "yes" if c.covered else "no"}
            for c in estate_coverage(conn, scope_ids(conn, scope, reach))]


def check_request(kind: str, fmt: str, lang: str, group: str | None,
                  service: str | None) -> Scope:
    """The scope of a report request, or :class:`ReportError` (an InvalidInput) naming the
    parameter that cannot make a report.

    Checked before any query, so that what is left once the request passes -- a group or
    service the database does not know -- is told apart (UnknownScope, a NotFound).
    Empty ``group`` / ``service`` (a form's "whole estate" choice) mean none.
    """
    if kind not in KINDS:
        raise ReportError(f"kind: {kind!r} must be one of {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise ReportError(f"format: {fmt!r} must be one of {', '.join(FORMATS)}")
    if lang not in LANGUAGES:
        raise ReportError(f"lang: {lang!r} must be one of {', '.join(LANGUAGES)}")
    if group and service:
        raise ReportError("give a group or a service, not both")
    return Scope(group=group or None, service=service or None)


def request_report(conn: Connection, kind: str, fmt: str, lang: str, group: str | None,
                   service: str | None, *, reach: Reach = None) -> Report:
    """A report asked for by name (the API's and the dashboard's download): the request is
    checked (:func:`check_request`), then :func:`generate` builds it."""
    return generate(conn, kind, fmt, lang, check_request(kind, fmt, lang, group, service),
                    reach=reach)


def report_filename(kind: str, fmt: str, lang: str, scope: Scope, now: datetime) -> str:
    """``patchpilot-<kind>-<scope>-<lang>-<date>.<fmt>`` (the scope's characters that a
    file name cannot hold become ``-``)."""
    label = "".join(c if c.isalnum() or c in "-_" else "-" for c in scope.label)
    name = "-".join(p for p in ("patchpilot", kind, label, lang, now.strftime("%Y-%m-%d")) if p)
    return f"{name}.{fmt}"


def _check(kind: str, fmt: str, lang: str) -> None:
    if kind not in KINDS:
        raise ReportError(f"kind: {kind!r} must be one of {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise ReportError(f"format: {fmt!r} must be one of {', '.join(FORMATS)}")
    translator(lang)


# How often (in rows) a streamed export tells its ``progress`` callback how far it is.
PROGRESS_EVERY = 5000


def _counted(rows: Iterable[T], progress: Progress | None) -> Iterator[T]:
    """``rows`` as they are, calling ``progress(n)`` every :data:`PROGRESS_EVERY` rows
    and once at the end."""
    n = 0
    for n, row in enumerate(rows, 1):  # noqa: B007 - n is reported after the loop
        if progress is not None and n % PROGRESS_EVERY == 0:
            progress(n)
        yield row
    if progress is not None:
        progress(n)


def csv_stream(conn: Connection, kind: str, lang: str = "en", scope: Scope | None = None,
               *, progress: Progress | None = None, reach: Reach = None) -> Iterator[bytes]:
    """The CSV export of ``kind`` in UTF-8 pieces, as the rows come from the database: the
    findings of a technical report (over a server-side cursor), the assets of an executive
    one.  ``conn`` stays busy until the iterator ends."""
    _check(kind, "csv", lang)
    scope = scope or Scope()
    if kind == "technical":
        rows = exports.finding_values(
            _counted(iter_technical_rows(conn, scope, reach=reach), progress), lang)
        yield from csv_chunks(rows, exports.FINDING_COLUMNS)
    else:
        yield from csv_chunks(_cells(exports.asset_rows(conn, scope, reach=reach),
                                             exports.ASSET_COLUMNS), exports.ASSET_COLUMNS)


def stream_csv(engine: Engine, kind: str, lang: str = "en", scope: Scope | None = None,
               *, reach: Reach = None) -> Iterator[bytes]:
    """:func:`csv_stream` on a connection of its own, held while the iterator runs: the
    body of a streamed HTTP answer, which outlives the request handler's connection."""
    with engine.connect() as conn:
        yield from csv_stream(conn, kind, lang, scope, reach=reach)


def _cells(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[list[Any]]:
    """Rows keyed by column as lists in ``columns`` order (read now: they are small)."""
    return list(exports.in_columns(rows, columns))


def _xlsx_sheets(conn: Connection, kind: str, lang: str, scope: Scope, now: datetime,
                 progress: Progress | None, reach: Reach = None) -> list[exports.Sheet]:
    """The workbook's sheets; the findings are an iterator, read while the sheet is
    written (the others are small: one row per asset, per metric, per ecosystem)."""
    assets = ("Assets", _cells(exports.asset_rows(conn, scope, reach=reach),
                               exports.ASSET_COLUMNS), exports.ASSET_COLUMNS)
    coverage = ("Coverage", _cells(_coverage_rows(conn, scope, reach), COVERAGE_COLUMNS),
                COVERAGE_COLUMNS)
    if kind == "technical":
        rows = exports.finding_values(
            _counted(iter_technical_rows(conn, scope, reach=reach), progress), lang)
        return [("Findings", rows, exports.FINDING_COLUMNS), assets, coverage]
    summary = ("metric", "value")
    return [("Summary", _cells(_summary_rows(conn, scope, now, reach), summary), summary),
            assets, coverage]


@dataclass(frozen=True, slots=True)
class ReportFile:
    """A report written to a file (:func:`write_report`)."""

    kind: str
    fmt: str
    lang: str
    path: Path
    filename: str
    mime: str
    size: int


def write_report(conn: Connection, kind: str, fmt: str, lang: str, scope: Scope | None,
                 folder: Path, *, now: datetime | None = None,
                 progress: Progress | None = None, reach: Reach = None) -> ReportFile:
    """Build one report into ``folder`` (created), streaming what streams: CSV row by row,
    XLSX through openpyxl's write-only mode.  Written under a ``.part`` name and renamed
    when complete, so a file under the report's own name is always whole."""
    _check(kind, fmt, lang)
    scope = scope or Scope()
    now = now or now_utc()
    filename = report_filename(kind, fmt, lang, scope, now)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    part = folder / (filename + ".part")
    with part.open("wb") as out:
        if fmt in ("pdf", "html"):
            builder = executive.build if kind == "executive" else technical.build
            out.write(builder(conn, scope, lang=lang, fmt=fmt, now=now, reach=reach))
        elif fmt == "csv":
            for chunk in csv_stream(conn, kind, lang, scope, progress=progress, reach=reach):
                out.write(chunk)
        else:
            exports.write_xlsx(out, _xlsx_sheets(conn, kind, lang, scope, now, progress,
                                                 reach))
    part.replace(path)
    return ReportFile(kind, fmt, lang, path, filename, MIME[fmt], path.stat().st_size)


def generate(conn: Connection, kind: str, fmt: str = "pdf", lang: str = "en",
             scope: Scope | None = None, *, now: datetime | None = None,
             reach: Reach = None) -> Report:
    """Build one report of ``scope`` (within ``reach``) in ``lang`` and ``fmt``, in memory
    (the CLI, the small synchronous downloads; the large ones are files,
    :func:`write_report`)."""
    _check(kind, fmt, lang)
    scope = scope or Scope()
    now = now or now_utc()
    if fmt in ("pdf", "html"):
        builder = executive.build if kind == "executive" else technical.build
        content = builder(conn, scope, lang=lang, fmt=fmt, now=now, reach=reach)
    elif fmt == "csv":
        content = b"".join(csv_stream(conn, kind, lang, scope, reach=reach))
    else:
        content = exports.to_xlsx(_xlsx_sheets(conn, kind, lang, scope, now, None, reach))
    return Report(kind, fmt, lang, content, report_filename(kind, fmt, lang, scope, now),
                  MIME[fmt])


# What one finding costs a synchronous report, against the XLSX's: a technical PDF or
# HTML lays out a block of fields per finding (weasyprint held ~350 KB a finding: 15 GB for
# 43,000), so it goes to a job at a twentieth of the findings an XLSX may have.
SYNC_WEIGHT = {"xlsx": 1, "pdf": 20, "html": 20}


def needs_job(conn: Connection, kind: str, fmt: str, scope: Scope, limit: int, *,
              reach: Reach = None) -> bool:
    """Whether a report is too large to build while a request waits: a technical XLSX of
    more than ``limit`` open findings (``PATCHPILOT_REPORT_SYNC_FINDINGS``), a technical
    PDF or HTML of more than a twentieth of that (:data:`SYNC_WEIGHT`).

    A CSV streams in flat memory at any size, and an executive report is one page (its
    XLSX one row per asset), so those are always answered at once.
    """
    weight = SYNC_WEIGHT.get(fmt)
    return (kind == "technical" and weight is not None
            and open_findings(conn, scope, reach=reach) * weight > limit)
