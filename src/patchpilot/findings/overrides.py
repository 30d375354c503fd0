"""What a person or a playbook set on a finding by hand: a priority, an assignee, tags.

One ``finding_overrides`` row per finding, written in the caller's transaction with its
audit row.  The priority is not the finding's priority by itself: re-prioritisation
(``scoring.apply.reprioritise``) keeps the more urgent of it and the computed one, so a
playbook that raised a finding to P1 on an IDS alert is not undone by the next feed
update, and an override can never make a finding *less* urgent than the evidence says
(that is what triage decisions are for, with their reason and expiry).

Tags are a JSON list kept sorted and unique, so adding the same tag twice changes nothing
and two writers' tags compare equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from patchpilot.audit import audit
from patchpilot.clock import aware, iso, now_utc
from patchpilot.db.tables import finding_overrides, findings
from patchpilot.errors import InvalidInput, NotFound

PRIORITIES = (1, 2, 3, 4)
MAX_TAG = 100


@dataclass(frozen=True, slots=True)
class Override:
    """A finding's override row."""

    finding_id: int
    priority: int | None
    assignee: str | None
    tags: tuple[str, ...]
    reason: str | None
    set_by: str
    set_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the finding API's ``override``)."""
        return {"priority": f"P{self.priority}" if self.priority else None,
                "assignee": self.assignee, "tags": list(self.tags), "reason": self.reason,
                "set_by": self.set_by, "set_at": iso(self.set_at)}


def parse_priority(value: Any) -> int:
    """1-4 from ``1``..``4`` or ``"P1"``..``"P4"`` (any case); InvalidInput naming
    ``priority`` otherwise."""
    text = str(value).strip().upper() if isinstance(value, str | int) and \
        not isinstance(value, bool) else ""
    number = text[1:] if text.startswith("P") else text
    if number.isdigit() and int(number) in PRIORITIES:
        return int(number)
    raise InvalidInput(f"priority: {value!r} must be 1-4 or P1-P4", field="priority")


def tags_json(tags: Iterable[str]) -> str:
    """The stored form: a sorted JSON list without duplicates."""
    return orjson.dumps(sorted(set(tags))).decode()


def _require_finding(conn: Connection, finding_id: int) -> None:
    if conn.execute(select(findings.c.id).where(findings.c.id == finding_id)).first() is None:
        raise NotFound(f"finding_id: no finding {finding_id}", field="finding_id")


def _upsert(conn: Connection, finding_id: int, actor: str, now: datetime,
            values: dict[str, Any]) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(finding_overrides).values(
        finding_id=finding_id, set_by=actor, set_at=now, **values)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["finding_id"], set_={"set_by": actor, "set_at": now, **values}))


def get_override(conn: Connection, finding_id: int) -> Override | None:
    """The finding's override row, or None."""
    row = conn.execute(select(finding_overrides)
                       .where(finding_overrides.c.finding_id == finding_id)).first()
    if row is None:
        return None
    return Override(row.finding_id, row.priority, row.assignee,
                    tuple(orjson.loads(row.tags)) if row.tags else (), row.reason,
                    row.set_by, aware(row.set_at))  # type: ignore[arg-type]


def set_priority(conn: Connection, actor: str, finding_id: int, priority: Any,
                 reason: str | None = None, *, now: datetime | None = None) -> int:
    """Store the finding's override priority (1-4) with its reason; the priority.
    Audited.  The caller re-prioritises the finding for it to take effect."""
    value = parse_priority(priority)
    _require_finding(conn, finding_id)
    _upsert(conn, finding_id, actor, now or now_utc(), {"priority": value, "reason": reason})
    audit(conn, actor, "finding.override.priority", f"finding:{finding_id}",
          {"priority": value, "reason": reason})
    return value


def set_assignee(conn: Connection, actor: str, finding_id: int, assignee: str | None, *,
                 now: datetime | None = None) -> None:
    """Assign the finding to ``assignee`` (None or empty: to nobody).  Audited."""
    value = (assignee or "").strip() or None
    if value is not None and len(value) > 200:
        raise InvalidInput("assignee: at most 200 characters", field="assignee")
    _require_finding(conn, finding_id)
    _upsert(conn, finding_id, actor, now or now_utc(), {"assignee": value})
    audit(conn, actor, "finding.override.assign", f"finding:{finding_id}",
          {"assignee": value})


def add_tags(conn: Connection, actor: str, finding_id: int, tags: Iterable[str], *,
             now: datetime | None = None) -> list[str]:
    """Add ``tags`` to the finding's (kept sorted, unique); the tags it has now.
    Audited with the ones added."""
    wanted = {t.strip() for t in tags}
    bad = sorted(t for t in wanted if not t or len(t) > MAX_TAG)
    if bad:
        raise InvalidInput(f"tags: {bad[0]!r} must be 1-{MAX_TAG} characters", field="tags")
    _require_finding(conn, finding_id)
    current = get_override(conn, finding_id)
    have = set(current.tags) if current else set()
    merged = sorted(have | wanted)
    if current is not None and merged == sorted(have):
        return merged  # nothing new: the row (and who set it last) stays as it was
    _upsert(conn, finding_id, actor, now or now_utc(), {"tags": tags_json(merged)})
    audit(conn, actor, "finding.override.tag", f"finding:{finding_id}",
          {"added": sorted(wanted - have)})
    return merged
