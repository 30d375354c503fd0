"""One entry point for every report × format: what the CLI, the mail job, the API and the
dashboard call.  Returns the bytes, a file name and a MIME type.

=========  ==========================  ==================================
kind       pdf / html                  csv / xlsx
=========  ==========================  ==================================
executive  the one-page risk posture   assets (xlsx: + summary, coverage sheets)
technical  every open finding          findings (xlsx: + assets, coverage sheets)
=========  ==========================  ==================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from patchpilot.assets.groups import Scope, resolve_scope
from patchpilot.clock import now_utc
from patchpilot.findings.coverage import estate_coverage
from patchpilot.reports import executive, exports, technical
from patchpilot.reports.data import ReportError, executive_data, technical_findings
from patchpilot.reports.i18n import LANGUAGES, translator

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


def _summary_rows(conn: Connection, scope: Scope, now: datetime) -> list[dict[str, object]]:
    d = executive_data(conn, scope, now=now)
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


def _coverage_rows(conn: Connection, scope: Scope) -> list[dict[str, object]]:
    """The scope's ecosystems with the advisories loaded for each (``knowledge.coverage``),
    not covered first."""
    return [{**c.to_dict(), "covered": "yes" if c.covered else "no"}
            for c in estate_coverage(conn, resolve_scope(conn, scope))]


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
                   service: str | None) -> Report:
    """A report asked for by name (the API's and the dashboard's download): the request is
    checked (:func:`check_request`), then :func:`generate` builds it."""
    return generate(conn, kind, fmt, lang, check_request(kind, fmt, lang, group, service))


def generate(conn: Connection, kind: str, fmt: str = "pdf", lang: str = "en",
             scope: Scope | None = None, *, now: datetime | None = None) -> Report:
    """Build one report of ``scope`` in ``lang`` and ``fmt``."""
    if kind not in KINDS:
        raise ReportError(f"kind: {kind!r} must be one of {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise ReportError(f"format: {fmt!r} must be one of {', '.join(FORMATS)}")
    translator(lang)
    scope = scope or Scope()
    now = now or now_utc()
    if fmt in ("pdf", "html"):
        builder = executive.build if kind == "executive" else technical.build
        content = builder(conn, scope, lang=lang, fmt=fmt, now=now)
    elif kind == "technical":
        rows = exports.finding_rows(technical_findings(conn, scope), lang)
        if fmt == "csv":
            content = exports.to_csv(rows, exports.FINDING_COLUMNS).encode("utf-8")
        else:
            content = exports.to_xlsx([
                ("Findings", rows, exports.FINDING_COLUMNS),
                ("Assets", exports.asset_rows(conn, scope), exports.ASSET_COLUMNS),
                ("Coverage", _coverage_rows(conn, scope), COVERAGE_COLUMNS)])
    else:
        assets = exports.asset_rows(conn, scope)
        if fmt == "csv":
            content = exports.to_csv(assets, exports.ASSET_COLUMNS).encode("utf-8")
        else:
            content = exports.to_xlsx([
                ("Summary", _summary_rows(conn, scope, now), ("metric", "value")),
                ("Assets", assets, exports.ASSET_COLUMNS),
                ("Coverage", _coverage_rows(conn, scope), COVERAGE_COLUMNS)])
    label = "".join(c if c.isalnum() or c in "-_" else "-" for c in scope.label)
    name = "-".join(p for p in ("patchpilot", kind, label, lang, now.strftime("%Y-%m-%d")) if p)
    return Report(kind, fmt, lang, content, f"{name}.{fmt}", MIME[fmt])
