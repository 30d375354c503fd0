"""Scheduled reports: a cron schedule in a time zone generates a report and mails it.

* Schedules live in ``report_schedules``.  :func:`tick_reports` (called by
  ``pipeline.tick``, so the server's scheduler thread and idle workers both run it)
  claims each due schedule with a compare-and-set on ``next_run_at`` -- the same rule
  as ``scans.scheduler.tick``, so a run is enqueued exactly once by any number of
  processes -- and enqueues a ``report`` job; a worker generates and sends it.
* Mail goes over SMTP with :mod:`smtplib`: ``PATCHPILOT_SMTP_HOST`` (default
  localhost), ``_PORT`` (25), ``_STARTTLS`` (true/false, default false), ``_USER`` and
  ``_PASSWORD`` (login only when both are set; the password is never logged or
  stored), ``_FROM`` (default ``patchpilot@<host name>``).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, delete, insert, select, true, update
from sqlalchemy.engine import Connection

from patchpilot import queue
from patchpilot.assets.groups import Reach, Scope, resolve_scope
from patchpilot.audit import audit
from patchpilot.clock import iso, now_utc
from patchpilot.config import Settings, load_settings
from patchpilot.db.tables import report_schedules
from patchpilot.errors import NotFound, PatchPilotError
from patchpilot.reports.data import ReportError, ReportNotFound
from patchpilot.reports.generate import FORMATS, KINDS, Report, generate
from patchpilot.reports.i18n import translator
from patchpilot.reports.jobs import ReportRequest, build_report
from patchpilot.scans.schedules import CRON, ScheduleError, next_run, validate_schedule

log = logging.getLogger(__name__)

REPORT_JOB = "report"
SMTP_TIMEOUT = 30.0


class MailError(PatchPilotError):
    """A report that could not be mailed (names the server, never a credential)."""


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to send mail.  ``repr`` hides the password."""

    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    sender: str = "patchpilot@localhost"

    def __repr__(self) -> str:
        return (f"SmtpSettings(host={self.host!r}, port={self.port}, "
                f"starttls={self.starttls}, user={self.user!r}, sender={self.sender!r})")

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SmtpSettings:
        """The ``smtp_*`` fields of ``settings`` (default: :func:`load_settings`)."""
        settings = settings or load_settings()
        return cls(host=settings.smtp_host, port=settings.smtp_port,
                   starttls=settings.smtp_starttls, user=settings.smtp_user,
                   password=settings.smtp_password, sender=settings.smtp_sender)


def subject(report: Report, scope: Scope, now: datetime) -> str:
    """The mail subject in the report's language: "PatchPilot: <title> (<scope>) <date>"."""
    t = translator(report.lang)
    title = t.gettext("Vulnerability risk report" if report.kind == "executive"
                      else "Technical report")
    where = f" ({scope.label})" if scope.label else ""
    return f"PatchPilot: {title}{where} {t.date(now)}"


def message(report: Report, recipients: list[str], sender: str, scope: Scope,
            now: datetime) -> EmailMessage:
    """The mail carrying ``report`` as an attachment."""
    t = translator(report.lang)
    title = t.gettext("Vulnerability risk report" if report.kind == "executive"
                      else "Technical report")
    msg = EmailMessage()
    msg["Subject"] = subject(report, scope, now)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(t.gettext("The {title} is attached.", title=title) + "\n")
    maintype, _, subtype = report.mime.partition(";")[0].partition("/")
    msg.add_attachment(report.content, maintype=maintype, subtype=subtype,
                       filename=report.filename)
    return msg


def send(msg: EmailMessage, settings: SmtpSettings) -> None:
    """Send one message over SMTP (STARTTLS and login when configured)."""
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT) as smtp:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.user and settings.password:
                smtp.login(settings.user, settings.password)
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        # The exception text of smtplib never holds the password; the settings' repr
        # would not either, but name only the server anyway.
        raise MailError(f"SMTP {settings.host}:{settings.port}: "
                        f"{exc.__class__.__name__}: {exc}") from exc


def send_report(conn: Connection, *, kind: str, fmt: str, lang: str, scope: Scope,
                recipients: list[str], settings: SmtpSettings | None = None,
                now: datetime | None = None) -> Report:
    """Generate a report now and mail it to ``recipients``; the report sent."""
    if not recipients:
        raise ReportError("to: at least one recipient is needed")
    now = now or now_utc()
    settings = settings or SmtpSettings.from_settings()
    report = generate(conn, kind, fmt, lang, scope, now=now)
    send(message(report, recipients, settings.sender, scope, now), settings)
    log.info("report %s (%s, %s) mailed to %d recipients", report.filename, fmt, lang,
             len(recipients))
    return report


# --- schedules ---------------------------------------------------------------------------

def _row(r: Any) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind, "format": r.format, "lang": r.lang,
            "group": r.group_name, "service": r.service, "cron": r.cron,
            "timezone": r.timezone, "recipients": orjson.loads(r.recipients),
            "enabled": bool(r.enabled), "next_run_at": iso(r.next_run_at),
            "last_run_at": iso(r.last_run_at)}


def add_schedule(conn: Connection, actor: str, *, kind: str, fmt: str, lang: str, cron: str,
                 timezone: str, recipients: list[str], group: str | None = None,
                 service: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Store a report schedule (validated) with its first run; audited."""
    if kind not in KINDS:
        raise ReportError(f"kind: {kind!r} must be one of {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise ReportError(f"format: {fmt!r} must be one of {', '.join(FORMATS)}")
    translator(lang)
    if group and service:
        raise ReportError("give a group or a service, not both")
    bad = [r for r in recipients if "@" not in r]
    if not recipients or bad:
        raise ReportError(f"to: {bad[0]!r} is not a mail address" if bad
                          else "to: at least one recipient is needed")
    validate_schedule(CRON, cron, timezone)
    if group or service:
        # A scope nobody can resolve would fail at every run: refuse it now, naming it.
        resolve_scope(conn, Scope(group=group or None, service=service or None))
    now = now or now_utc()
    first = next_run(CRON, cron, timezone, now)
    new_id = conn.execute(insert(report_schedules).values(
        kind=kind, format=fmt, lang=lang, group_name=group, service=service, cron=cron,
        timezone=timezone, recipients=orjson.dumps(recipients).decode(), enabled=True,
        next_run_at=first, created_by=actor, created_at=now)
        .returning(report_schedules.c.id)).scalar_one()
    audit(conn, actor, "report.schedule.add", f"report_schedule:{new_id}",
          {"kind": kind, "cron": cron, "timezone": timezone, "recipients": len(recipients)})
    return _row(conn.execute(select(report_schedules)
                             .where(report_schedules.c.id == new_id)).one())


def list_schedules(conn: Connection, *, reach: Reach = None) -> list[dict[str, Any]]:
    """Every report schedule -- or, for a user who may see the assets of ``reach`` only,
    those of a group or service whose assets are all in it (a schedule of the estate, or
    one reaching beyond, mails what they may not see)."""
    rows = [_row(r) for r in conn.execute(select(report_schedules)
                                          .order_by(report_schedules.c.id))]
    return rows if reach is None else [r for r in rows if _within(conn, r, reach)]


def _within(conn: Connection, schedule: dict[str, Any], reach: frozenset[int]) -> bool:
    """Whether the schedule's group or service has assets, all of them in ``reach``."""
    if not (schedule["group"] or schedule["service"]):
        return False
    try:
        ids = resolve_scope(conn, Scope(schedule["group"], schedule["service"]))
    except NotFound:  # its group was removed: it covers nothing anybody may see
        return False
    return bool(ids) and set(ids or ()) <= reach


def delete_schedule(conn: Connection, actor: str, schedule_id: int) -> None:
    """Remove a report schedule; audited."""
    gone = conn.execute(delete(report_schedules)
                        .where(report_schedules.c.id == schedule_id)).rowcount
    if not gone:
        raise ReportNotFound(f"no report schedule {schedule_id}")
    audit(conn, actor, "report.schedule.remove", f"report_schedule:{schedule_id}", {})


def tick_reports(engine: Engine, now: datetime | None = None) -> int:
    """Enqueue a ``report`` job for every due schedule (exactly once); how many."""
    now = (now or now_utc()).astimezone(UTC)
    with engine.connect() as conn:
        due = conn.execute(select(report_schedules).where(
            report_schedules.c.enabled == true(), report_schedules.c.next_run_at <= now)
            .order_by(report_schedules.c.id)).all()
    queued = 0
    for row in due:
        try:
            # From now, not from the missed run: a week of downtime sends one report.
            following = next_run(CRON, row.cron, row.timezone, now)
        except ScheduleError as exc:
            log.warning("report schedule %s cannot run: %s", row.id, exc)
            continue
        with engine.begin() as conn:
            claimed = conn.execute(update(report_schedules).where(
                report_schedules.c.id == row.id,
                report_schedules.c.next_run_at == row.next_run_at)
                .values(next_run_at=following, last_run_at=now)).rowcount
            if claimed != 1:
                continue  # another process claimed this run first
            queue.enqueue(conn, REPORT_JOB, {"schedule_id": row.id, "at": iso(now)})
            queued += 1
    return queued


def run_report(engine: Engine, job: queue.Job) -> dict[str, Any]:
    """The ``report`` job: build the schedule's report and mail it.

    Built as a report job builds its file (:func:`patchpilot.reports.jobs.build_report`:
    a child process under ``PATCHPILOT_REPORT_MEMORY_MB``), into a temporary folder
    removed once the mail is sent, so a schedule can no more take the server down than a
    download can.
    """
    schedule_id = int(job.payload["schedule_id"])
    with engine.connect() as conn:
        row = conn.execute(select(report_schedules)
                           .where(report_schedules.c.id == schedule_id)).first()
    if row is None:
        raise ReportNotFound(f"report schedule {schedule_id} no longer exists")
    recipients = orjson.loads(row.recipients)
    if not recipients:
        raise ReportError("to: at least one recipient is needed")
    settings = load_settings()
    smtp = SmtpSettings.from_settings(settings)
    scope = Scope(row.group_name, row.service)
    now = now_utc()
    request = ReportRequest(row.kind, row.format, row.lang, row.group_name, row.service)
    with tempfile.TemporaryDirectory(prefix="patchpilot-mail-") as folder:
        built = build_report(engine, request, Path(folder),
                             limit_mb=settings.report_memory_mb, now=now)
        report = Report(row.kind, row.format, row.lang, built.path.read_bytes(),
                        built.filename, built.mime)
    send(message(report, recipients, smtp.sender, scope, now), smtp)
    log.info("report %s (%s, %s) mailed to %d recipients", report.filename, row.format,
             row.lang, len(recipients))
    return {"schedule_id": schedule_id, "file": report.filename, "bytes": len(report.content),
            "recipients": len(recipients)}
