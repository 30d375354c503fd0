"""Read-only questions about findings that the API, the pages and the CLI all ask.

One function per question, so that "which finding is this" is answered once: the API's
``GET /api/findings/{id}`` and the dashboard's finding page read the same row.  Each runs
in the caller's connection; an id that names nothing is a :class:`~patchpilot.errors.NotFound`
(the server answers 404).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection, Row

from patchpilot.db.tables import assets, finding_overrides, finding_priority, findings
from patchpilot.errors import NotFound
from patchpilot.findings.model import Installation


@dataclass(frozen=True, slots=True)
class FindingDetail:
    """One finding: its row (every ``findings`` column, the asset's name as ``asset``, and
    ``priority``, ``priority_reason``, ``due_date`` -- None before it is prioritised) and
    its report fields and evidence (``data``, the stored JSON decoded)."""

    row: Row[Any]
    data: dict[str, Any]


def finding_detail(conn: Connection, finding_id: int,
                   reach: frozenset[int] | None = None) -> FindingDetail:
    """Finding ``finding_id`` with its asset's name, its priority, what was set on it by
    hand or by a playbook (``override_*``: ``finding_overrides``, None without) and its
    report fields; NotFound (``no finding <id>``) when there is none -- or when its asset
    is not in ``reach`` (the asset ids a scoped user may see; None: any), with the same
    message, so an id outside a user's part of the estate reveals nothing."""
    row = conn.execute(
        select(findings, assets.c.name.label("asset"), finding_priority.c.priority,
               finding_priority.c.reason.label("priority_reason"),
               finding_priority.c.due_date,
               finding_overrides.c.finding_id.label("override_finding_id"),
               finding_overrides.c.priority.label("override_priority"),
               finding_overrides.c.assignee.label("override_assignee"),
               finding_overrides.c.tags.label("override_tags"),
               finding_overrides.c.reason.label("override_reason"),
               finding_overrides.c.set_by.label("override_set_by"),
               finding_overrides.c.set_at.label("override_set_at"))
        .join(assets, assets.c.id == findings.c.asset_id)
        .outerjoin(finding_priority, finding_priority.c.finding_id == findings.c.id)
        .outerjoin(finding_overrides, finding_overrides.c.finding_id == findings.c.id)
        .where(findings.c.id == finding_id)).first()
    if row is None or (reach is not None and row.asset_id not in reach):
        raise NotFound(f"no finding {finding_id}", field="finding_id")
    data = orjson.loads(row.data)
    data["installations"] = installations(row.installations, row.installed_version,
                                          row.fixed_version)
    return FindingDetail(row, data)


def installations(column: str | None, installed_version: str | None,
                  fixed_version: str | None) -> list[dict[str, str | None]]:
    """A finding's installations (``location``, ``installed_version``, ``fixed_version``,
    ``command``) from its ``findings.installations`` column; a row written before that
    column existed is the one copy its version columns describe."""
    if column is None:
        return [{"location": None, "installed_version": installed_version,
                 "fixed_version": fixed_version, "command": None}]
    return [dict(zip(_INSTALLATION_FIELDS, Installation.from_row(i).to_row(), strict=True))
            for i in orjson.loads(column)]


_INSTALLATION_FIELDS = ("location", "installed_version", "fixed_version", "command")


def finding_dates(conn: Connection, ids: Iterable[int]) -> dict[int, Any]:
    """For the findings ``ids``: ``epss_score``, ``last_seen``, ``fixed_at`` and
    ``new_from_feed`` by id (the fields the API's list adds to a search's rows)."""
    wanted = list(ids)
    if not wanted:
        return {}
    return {r.id: r for r in conn.execute(
        select(findings.c.id, findings.c.epss_score, findings.c.last_seen,
               findings.c.fixed_at, findings.c.new_from_feed)
        .where(findings.c.id.in_(wanted)))}
