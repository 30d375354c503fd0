"""Stored playbooks: add, update (a new version), list, get, enable, disable -- each in the
caller's transaction with its audit row.

The document is kept as given (YAML text) in every version, so ``show`` prints what its
author wrote; it is validated again whenever it is read for evaluation, so a playbook
stored by an older release that a newer one would refuse names its problem instead of
running half-understood.  Evaluation reads them through :func:`usable_playbooks`, which
sets such a playbook aside (logged, and named in the round's result) so that one broken
document does not stop every other playbook.

A playbook with a schedule trigger keeps its next due moment in ``playbooks.next_run_at``
(:mod:`.schedule`): set when it is stored or enabled, cleared when it is disabled.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from threading import Lock
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from patchpilot.audit import audit
from patchpilot.automation.actions.digest import NAME as DIGEST
from patchpilot.automation.playbook import Playbook, PlaybookError, parse_playbook
from patchpilot.automation.schedule import next_due
from patchpilot.clock import aware, iso, now_utc
from patchpilot.db.tables import finding_events, playbook_cursor, playbook_versions, playbooks
from patchpilot.errors import NotFound

log = logging.getLogger(__name__)

# Parsed documents by their text: evaluation reads every enabled playbook for each batch
# of events, and parsing (YAML, then compiling the CEL condition) costs about a
# millisecond each -- 50 playbooks over 20 batches would spend a second on it.  A
# Playbook is immutable, so one parse serves every reader; bounded, oldest out.
_PARSED: OrderedDict[str, Playbook] = OrderedDict()
_PARSED_MAX = 500
_PARSED_LOCK = Lock()


def parsed(document: str, source: str) -> Playbook:
    """The validated playbook of a stored document (parsed once per text)."""
    with _PARSED_LOCK:
        found = _PARSED.get(document)
        if found is not None:
            _PARSED.move_to_end(document)
            return found
    playbook = parse_playbook(document, source=source)
    with _PARSED_LOCK:
        _PARSED[document] = playbook
        while len(_PARSED) > _PARSED_MAX:
            _PARSED.popitem(last=False)
    return playbook


class UnknownPlaybook(NotFound):
    """No playbook has that name."""


@dataclass(frozen=True, slots=True)
class StoredPlaybook:
    """A stored playbook at its current version."""

    id: int
    name: str
    enabled: bool
    version: int
    document: str
    playbook: Playbook
    updated_by: str
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``list`` / ``show``."""
        p = self.playbook
        return {"id": self.id, "name": self.name, "enabled": self.enabled,
                "version": self.version, "description": p.description,
                "events": list(p.events),
                "schedule": ({"cron": p.schedule.cron, "timezone": p.schedule.timezone}
                             if p.schedule else None),
                "condition": p.condition, "actions": [a.type for a in p.actions],
                "updated_by": self.updated_by, "updated_at": iso(self.updated_at)}


def ensure_cursor(conn: Connection) -> int:
    """The id of the last finding event evaluated; the first time, the newest event's.

    Playbooks act on what happens from the moment the first one is stored, never on the
    history before it (a first playbook on a database of a year's findings must not mail
    400 owners about old news; ``simulate`` shows what it would have done)."""
    value = conn.execute(select(playbook_cursor.c.event_id)
                         .where(playbook_cursor.c.id == 1)).scalar()
    if value is not None:
        return int(value)
    newest = conn.execute(select(func.coalesce(func.max(finding_events.c.id), 0))).scalar_one()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(playbook_cursor).values(id=1, event_id=int(newest))
                 .on_conflict_do_nothing(index_elements=["id"]))
    return int(conn.execute(select(playbook_cursor.c.event_id)
                            .where(playbook_cursor.c.id == 1)).scalar_one())


def save_playbook(conn: Connection, actor: str, document: str, *,
                  source: str = "playbook", now: datetime | None = None
                  ) -> tuple[StoredPlaybook, bool]:
    """Store a playbook's YAML: a new playbook, or a new version of the one of its name
    (its ``enabled`` taken from the document); (the stored playbook, whether it is new).
    A document equal to the current version changes nothing.  Audited."""
    parsed = parse_playbook(document, source=source)
    _check_digest(parsed)
    now = now or now_utc()
    ensure_cursor(conn)
    row = conn.execute(select(playbooks).where(playbooks.c.name == parsed.name)).first()
    if row is None:
        playbook_id = conn.execute(insert(playbooks).values(
            name=parsed.name, enabled=parsed.enabled, version=1, created_by=actor,
            created_at=now, updated_by=actor, updated_at=now,
            next_run_at=_next_run(parsed, parsed.enabled, now))
            .returning(playbooks.c.id)).scalar_one()
        version, created = 1, True
    else:
        playbook_id, created = row.id, False
        current = conn.execute(select(playbook_versions.c.document).where(
            playbook_versions.c.playbook_id == row.id,
            playbook_versions.c.version == row.version)).scalar_one()
        if current == document and bool(row.enabled) == parsed.enabled:
            return get_playbook(conn, parsed.name), False
        version = row.version + 1
        conn.execute(update(playbooks).where(playbooks.c.id == row.id).values(
            enabled=parsed.enabled, version=version, updated_by=actor, updated_at=now,
            next_run_at=_next_run(parsed, parsed.enabled, now)))
    conn.execute(insert(playbook_versions).values(
        playbook_id=playbook_id, version=version, document=document, created_by=actor,
        created_at=now))
    audit(conn, actor, "playbook.add" if created else "playbook.update",
          f"playbook:{parsed.name}",
          {"version": version, "enabled": parsed.enabled, "events": list(parsed.events),
           "actions": [a.type for a in parsed.actions]})
    return get_playbook(conn, parsed.name), created


def _check_digest(playbook: Playbook) -> None:
    # A digest collects until its playbook's schedule sends it: without a schedule it
    # would collect for ever.
    for i, step in enumerate(playbook.actions):
        if step.type == DIGEST and playbook.schedule is None:
            raise PlaybookError(f"actions[{i}]: a digest is sent on the playbook's "
                                "schedule: give trigger.schedule", field=f"actions[{i}]")


def _next_run(playbook: Playbook, enabled: bool, now: datetime) -> datetime | None:
    """The first due moment after ``now`` of an enabled scheduled playbook, else None."""
    if not enabled or playbook.schedule is None:
        return None
    return next_due(playbook.schedule, now)


def _stored(row: Any) -> StoredPlaybook:
    return StoredPlaybook(row.id, row.name, bool(row.enabled), row.version, row.document,
                          parsed(row.document, f"playbook {row.name}"),
                          row.updated_by, aware(row.updated_at))  # type: ignore[arg-type]


def _current() -> Any:
    p, v = playbooks, playbook_versions
    return (select(p.c.id, p.c.name, p.c.enabled, p.c.version, p.c.updated_by,
                   p.c.updated_at, v.c.document)
            .join(v, (v.c.playbook_id == p.c.id) & (v.c.version == p.c.version)))


def get_playbook(conn: Connection, name: str) -> StoredPlaybook:
    """The playbook called ``name`` at its current version; UnknownPlaybook otherwise."""
    row = conn.execute(_current().where(playbooks.c.name == name)).first()
    if row is None:
        raise UnknownPlaybook(f"name: no playbook named {name!r}", field="name")
    return _stored(row)


def list_playbooks(conn: Connection, *, enabled_only: bool = False) -> list[StoredPlaybook]:
    """Every playbook (or the enabled ones), by name."""
    stmt = _current().order_by(playbooks.c.name)
    if enabled_only:
        stmt = stmt.where(playbooks.c.enabled.is_(True))
    return [_stored(r) for r in conn.execute(stmt)]


def usable_playbooks(conn: Connection) -> tuple[list[StoredPlaybook], dict[str, str]]:
    """The enabled playbooks that still validate, by name, and the problem of each one
    that does not (by name).  Each problem is logged: a document stored by an older
    release, or naming an action no longer registered, is set aside rather than failing
    every evaluation."""
    usable: list[StoredPlaybook] = []
    problems: dict[str, str] = {}
    for row in conn.execute(_current().where(playbooks.c.enabled.is_(True))
                            .order_by(playbooks.c.name)):
        try:
            usable.append(_stored(row))
        except PlaybookError as exc:
            problems[row.name] = str(exc)
            log.warning("playbook %s (version %s) is set aside: %s", row.name, row.version,
                        exc)
    return usable, problems


def document_of(conn: Connection, playbook_id: int, version: int) -> str:
    """The YAML of one stored version (delivery reads the version that queued a row)."""
    return str(conn.execute(select(playbook_versions.c.document).where(
        playbook_versions.c.playbook_id == playbook_id,
        playbook_versions.c.version == version)).scalar_one())


def set_enabled(conn: Connection, actor: str, name: str, enabled: bool) -> StoredPlaybook:
    """Enable or disable a playbook (no new version: the document is unchanged).
    Audited."""
    current = get_playbook(conn, name)
    now = now_utc()
    # Enabled again: the schedule starts from now (a run missed while disabled is not
    # owed); disabled: no run is due.
    conn.execute(update(playbooks).where(playbooks.c.name == name).values(
        enabled=enabled, updated_by=actor, updated_at=now,
        next_run_at=_next_run(current.playbook, enabled, now)))
    audit(conn, actor, "playbook.enable" if enabled else "playbook.disable",
          f"playbook:{name}", {})
    return get_playbook(conn, name)
