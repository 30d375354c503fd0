"""The audit log: who did what, when, to what -- written by every stage.

It sits on the bottom floor (next to ``db``) so that any stage may record an action in the
caller's transaction without importing another stage: a triage decision, a token
revocation, a group change and an agent's binding are audited the same way, and an
action and its audit row commit or roll back together.  Details are JSON; secrets never
go in them (tokens are named by id, passwords not at all).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import insert
from sqlalchemy.engine import Connection

from patchpilot.clock import now_utc
from patchpilot.db.tables import audit_log


def audit(conn: Connection, actor: str, action: str, target: str | None,
          detail: dict[str, Any] | None = None) -> None:
    """Record that ``actor`` did ``action`` to ``target`` (with ``detail``), now, in the
    caller's transaction."""
    conn.execute(insert(audit_log).values(
        at=now_utc(), actor=actor, action=action, target=target,
        detail=orjson.dumps(detail or {}).decode()))
