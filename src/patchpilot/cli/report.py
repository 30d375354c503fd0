"""``patchpilot report``: executive and technical reports, now or on a schedule."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from patchpilot.cli.common import cli_actor, console, fail, in_db, open_engine, print_json, wide
from patchpilot.errors import PatchPilotError

report_app = typer.Typer(help="Reports: executive (one page for management) and technical "
                              "(per group or service); PDF, HTML, CSV, XLSX; en or ja.",
                         no_args_is_help=True)
report_schedule_app = typer.Typer(help="Reports generated on a schedule and mailed.",
                                  no_args_is_help=True)
report_app.add_typer(report_schedule_app, name="schedule")


class ReportKind(StrEnum):
    """The reports of ``patchpilot report``."""

    executive = "executive"
    technical = "technical"


class ReportFormat(StrEnum):
    """Formats of ``patchpilot report``."""

    pdf = "pdf"
    html = "html"
    csv = "csv"
    xlsx = "xlsx"


class ReportLang(StrEnum):
    """Report languages."""

    en = "en"
    ja = "ja"


def _report_scope(group: str | None, service: str | None):  # type: ignore[no-untyped-def]
    from patchpilot.assets.groups import Scope

    if group and service:
        fail(PatchPilotError("give --group or --service, not both"))
    return Scope(group=group, service=service)


def _write_report(kind: ReportKind, group: str | None, service: str | None,
                  fmt: ReportFormat, lang: ReportLang, output: Path | None) -> None:
    from patchpilot.reports.generate import generate

    scope = _report_scope(group, service)
    try:
        with open_engine().connect() as conn:
            report = generate(conn, kind.value, fmt.value, lang.value, scope)
    except PatchPilotError as exc:
        fail(exc)
        return
    target = output or Path(report.filename)
    target.write_bytes(report.content)
    console.print(f"wrote {target} ({len(report.content):,} bytes)")


_GROUP_OPT = typer.Option(help="Only the assets of this asset group.")
_SERVICE_OPT = typer.Option(help="Only the assets of this business service.")
_FORMAT_OPT = typer.Option("--format", help="pdf, html, csv or xlsx.")
_LANG_OPT = typer.Option("--lang", help="Report language.")
_OUT_OPT = typer.Option("-o", "--output", help="File to write (default: a dated name).")


@report_app.command("executive")
def report_executive(
    group: Annotated[str | None, _GROUP_OPT] = None,
    service: Annotated[str | None, _SERVICE_OPT] = None,
    fmt: Annotated[ReportFormat, _FORMAT_OPT] = ReportFormat.pdf,
    lang: Annotated[ReportLang, _LANG_OPT] = ReportLang.en,
    output: Annotated[Path | None, _OUT_OPT] = None,
) -> None:
    """The one-page risk posture for management (csv/xlsx: the assets)."""
    _write_report(ReportKind.executive, group, service, fmt, lang, output)


@report_app.command("technical")
def report_technical(
    group: Annotated[str | None, _GROUP_OPT] = None,
    service: Annotated[str | None, _SERVICE_OPT] = None,
    fmt: Annotated[ReportFormat, _FORMAT_OPT] = ReportFormat.pdf,
    lang: Annotated[ReportLang, _LANG_OPT] = ReportLang.en,
    output: Annotated[Path | None, _OUT_OPT] = None,
) -> None:
    """Every open finding with its eight report fields (csv/xlsx: the findings)."""
    _write_report(ReportKind.technical, group, service, fmt, lang, output)


@report_app.command("send-now")
def report_send_now(
    kind: Annotated[ReportKind, typer.Option(help="executive or technical.")],
    to: Annotated[list[str], typer.Option(help="A recipient (repeat for more).")],
    group: Annotated[str | None, _GROUP_OPT] = None,
    service: Annotated[str | None, _SERVICE_OPT] = None,
    fmt: Annotated[ReportFormat, _FORMAT_OPT] = ReportFormat.pdf,
    lang: Annotated[ReportLang, _LANG_OPT] = ReportLang.en,
) -> None:
    """Generate a report and mail it now (SMTP from PATCHPILOT_SMTP_* variables)."""
    from patchpilot.reports.mail import send_report

    scope = _report_scope(group, service)
    try:
        with open_engine().connect() as conn:
            report = send_report(conn, kind=kind.value, fmt=fmt.value, lang=lang.value,
                                 scope=scope, recipients=to)
    except PatchPilotError as exc:
        fail(exc)
        return
    console.print(f"mailed {report.filename} to {', '.join(to)}")


@report_schedule_app.command("add")
def report_schedule_add(
    cron: Annotated[str, typer.Option(help='A cron expression, e.g. "0 8 1 * *".')],
    to: Annotated[list[str], typer.Option(help="A recipient (repeat for more).")],
    kind: Annotated[ReportKind, typer.Option(help="executive or technical.")
                    ] = ReportKind.executive,
    tz: Annotated[str, typer.Option(help="IANA time zone the cron is read in.")] = "UTC",
    group: Annotated[str | None, _GROUP_OPT] = None,
    service: Annotated[str | None, _SERVICE_OPT] = None,
    fmt: Annotated[ReportFormat, _FORMAT_OPT] = ReportFormat.pdf,
    lang: Annotated[ReportLang, _LANG_OPT] = ReportLang.en,
) -> None:
    """Mail a report on a schedule; prints it with its first run."""
    from patchpilot.reports.mail import add_schedule

    stored = in_db(lambda conn: add_schedule(
        conn, cli_actor(), kind=kind.value, fmt=fmt.value, lang=lang.value, cron=cron,
        timezone=tz, recipients=to, group=group, service=service), write=True)
    console.print(f"report schedule {stored['id']}: {stored['kind']} ({stored['format']}, "
                  f"{stored['lang']}) {stored['cron']!r} ({stored['timezone']}) to "
                  f"{', '.join(stored['recipients'])}; next run {stored['next_run_at']}")


@report_schedule_app.command("list")
def report_schedule_list(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every report schedule with its next run."""
    from patchpilot.reports.mail import list_schedules

    found = in_db(list_schedules)
    if json_:
        print_json(found)
        return
    table = Table("id", "kind", "format", "lang", "scope", "cron", "time zone", "to",
                  "next run (UTC)")
    for s in found:
        table.add_row(str(s["id"]), s["kind"], s["format"], s["lang"],
                      s["group"] or s["service"] or "estate", s["cron"], s["timezone"],
                      ", ".join(s["recipients"]), s["next_run_at"] or "-")
    wide.print(table)


@report_schedule_app.command("remove")
def report_schedule_remove(
    schedule_id: Annotated[int, typer.Argument(help="The report schedule's id.")],
) -> None:
    """Remove a report schedule."""
    from patchpilot.reports.mail import delete_schedule

    in_db(lambda conn: delete_schedule(conn, cli_actor(), schedule_id), write=True)
    console.print(f"report schedule {schedule_id} removed")
