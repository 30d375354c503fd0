"""What the actions that change the estate or start work share (``set_priority``,
``assign``, ``tag``, ``rescan``, ``sweep``, ``report``).

* Their templates run in Jinja2's sandbox over the queued payload, as the mail's do.
* They act as ``playbook:<name>`` in audit rows and events, so the log says which
  playbook raised a priority or started a sweep.
* Each counts under one rate-limit target per kind (``patchpilot:sweep``): a runaway
  playbook is held back estate-wide, not per finding.
* The ones that start work (a scan job, a sweep, a report job) record what they started on
  their own outbox row (``outbox.outcome``) in the transaction that starts it; a delivery
  taken again after a worker died reads it back instead of starting the work twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from patchpilot.automation.actions import Delivery, DeliveryError, Problem
from patchpilot.db.tables import outbox

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def actor_of(delivery: Delivery) -> str:
    """Who the action acts as: ``playbook:<name>``."""
    return f"playbook:{delivery.playbook}"


def target_of(action: str) -> str:
    """The rate-limit key of an estate action."""
    return f"patchpilot:{action}"


def unknown_keys(with_: Mapping[str, Any], allowed: Iterable[str]) -> Problem:
    """The first setting not in ``allowed``, as a Problem naming the ones that are."""
    names = list(allowed)
    unknown = sorted(set(with_) - set(names))
    if unknown:
        settings = ", ".join(names) if names else "none"
        return unknown[0], f"unknown setting (settings: {settings})"
    return None


def compiles(key: str, text: Any) -> Problem:
    """Whether ``text`` is a template that compiles (text), as a Problem on ``key``."""
    if not isinstance(text, str):
        return key, "must be text (a template)"
    try:
        _env.parse(text)
    except TemplateError as exc:
        return key, f"template does not compile: {exc}"
    return None


def render(action: str, key: str, template: str, payload: Mapping[str, Any]) -> str:
    """``template`` rendered over the payload, stripped; DeliveryError naming the action
    and the setting when it cannot be (a key the event's context lacks)."""
    try:
        return _env.from_string(template).render(**payload).strip()
    except TemplateError as exc:
        raise DeliveryError(f"{action}: {key}: template: {exc}") from exc


def subject_id(payload: Mapping[str, Any], what: str) -> int | None:
    """The id of the event's ``finding`` or ``asset`` (None when it names none)."""
    value = (payload.get(what) or {}).get("id")
    return int(value) if value is not None else None


def started(conn: Connection, delivery: Delivery) -> dict[str, Any] | None:
    """What an earlier delivery of this outbox row started, or None."""
    text = conn.execute(select(outbox.c.outcome)
                        .where(outbox.c.id == delivery.outbox_id)).scalar()
    value = orjson.loads(text) if text else None
    return value if isinstance(value, dict) else None


def record_started(conn: Connection, delivery: Delivery, detail: dict[str, Any]) -> None:
    """Keep what this delivery started on its outbox row, in the caller's transaction."""
    conn.execute(update(outbox).where(outbox.c.id == delivery.outbox_id)
                 .values(outcome=orjson.dumps(detail).decode()))
