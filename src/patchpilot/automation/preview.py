"""What the API and the dashboard show of a playbook before and after it is stored: its
summary, its versions, and the dry run -- what it would have done over the stored events.

The dry run is :func:`.evaluate.simulate` (read only, sends and stores nothing) cut to
the first :data:`CAP` actions for an answer a browser can show, with the full counts
beside them, so a condition that would fire a thousand times says so instead of
drawing a thousand rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from patchpilot.automation.evaluate import Match, simulate
from patchpilot.automation.playbook import Playbook
from patchpilot.automation.store import get_playbook
from patchpilot.clock import aware, iso, now_utc
from patchpilot.db.tables import playbook_versions
from patchpilot.errors import InvalidInput, NotFound
from patchpilot.scans.schedules import ScheduleError, parse_duration

CAP = 200  # actions a dry run answers in full


def summary(playbook: Playbook) -> dict[str, Any]:
    """A validated playbook as JSON: its trigger, condition and actions (their types)."""
    return {"name": playbook.name, "description": playbook.description,
            "enabled": playbook.enabled, "events": list(playbook.events),
            "schedule": ({"cron": playbook.schedule.cron,
                          "timezone": playbook.schedule.timezone}
                         if playbook.schedule else None),
            "condition": playbook.condition, "actions": [a.type for a in playbook.actions]}


@dataclass(frozen=True, slots=True)
class Version:
    """One stored version of a playbook (its document read on demand)."""

    version: int
    created_by: str
    created_at: datetime


def versions(conn: Connection, name: str) -> list[Version]:
    """Every version of the playbook ``name``, newest first; UnknownPlaybook otherwise."""
    stored = get_playbook(conn, name)
    v = playbook_versions
    return [Version(r.version, r.created_by, aware(r.created_at))  # type: ignore[arg-type]
            for r in conn.execute(select(v.c.version, v.c.created_by, v.c.created_at)
                                  .where(v.c.playbook_id == stored.id)
                                  .order_by(v.c.version.desc()))]


class UnknownVersion(NotFound):
    """The playbook has no such version."""


def version_document(conn: Connection, name: str, version: int) -> tuple[Version, str]:
    """One version of the playbook ``name`` and its YAML as stored."""
    stored = get_playbook(conn, name)
    v = playbook_versions
    row = conn.execute(select(v.c.version, v.c.created_by, v.c.created_at, v.c.document)
                       .where(v.c.playbook_id == stored.id, v.c.version == version)).first()
    if row is None:
        raise UnknownVersion(f"version: playbook {name!r} has no version {version} (its "
                             f"latest is {stored.version})", field="version")
    return (Version(row.version, row.created_by, aware(row.created_at)),  # type: ignore[arg-type]
            str(row.document))


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The start of a dry run: a duration back from now (``30d``, ``12h``) or an ISO 8601
    moment (UTC when it names no zone); InvalidInput naming ``since`` otherwise."""
    text = text.strip()
    now = now or now_utc()
    try:
        return now - parse_duration(text)
    except ScheduleError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"since: {text!r} is neither a duration (30d, 12h) nor an ISO "
                           f"8601 moment (2026-01-31 or 2026-01-31T08:00:00+09:00)",
                           field="since") from None
    return aware(moment)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class DryRun:
    """A dry run: the first actions (``items``, at most :data:`CAP`), how many there are
    in all, and over how many events."""

    since: datetime
    total: int
    events: int
    items: list[dict[str, Any]]

    @property
    def capped(self) -> bool:
        """Whether ``items`` holds fewer than ``total``."""
        return len(self.items) < self.total

    def to_dict(self) -> dict[str, Any]:
        """The API's answer."""
        return {"since": self.since, "total": self.total, "events": self.events,
                "shown": len(self.items), "capped": self.capped, "items": self.items}


def _item(m: Match) -> dict[str, Any]:
    finding, asset = m.payload["finding"], m.payload["asset"]
    return {"event_id": m.event.id, "kind": m.event.kind, "at": iso(m.event.at),
            "subject": m.subject, "action_index": m.action_index, "action": m.action_type,
            "asset": asset["name"], "vuln_id": finding["vuln_id"],
            "severity": finding["severity"]}


def dry_run(conn: Connection, document: str, since: datetime, *, cap: int = CAP,
            source: str = "document") -> DryRun:
    """What ``document`` would have queued over the events since ``since`` (PlaybookError
    when it does not validate); stores and sends nothing."""
    found = simulate(conn, document, since, source=source)
    return DryRun(since, len(found), len({m.event.id for m in found}),
                  [_item(m) for m in found[:cap]])
