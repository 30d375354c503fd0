"""``escalate``: an escalation chain -- mail one set of people, then after a delay the
next, while the finding's SLA stays breached and nothing changed.

``with``::

    chain:                                   # the steps, in order
      - {after: "0",  to: ["{{ asset.owner }}"]}
      - {after: "4h", to: ["lead@example.com"]}
      - {after: "2d", to: ["manager@example.com"]}
    lang: ja                                 # en (default) or ja
    subject: …                               # optional templates replacing the defaults
    body: …

``after`` is counted from the event (``sla_breached``'s moment, for the usual trigger),
not from the step before: ``4h`` then ``2d`` mails the manager two days after the
breach.  The delays do not decrease.  Each step is mailed like the ``email`` action's
messages (its recipients are templates; the templates see the event's context and
``escalation``: ``step`` (1 first), ``steps``, ``due`` and ``next``, the next step's
moment or null).

The outbox row is delivered once per step: after a step the action answers the moment of
the next (``Outcome.again_at``) and delivery queues the row again for it.  Before every
step after the first the finding is read again, and the chain stops, mailing nobody,
when

* the finding has an event of a kind that changes it (``fixed``, ``triaged``,
  ``reopened``, ``priority_changed``, ``new``) after the one that started the chain --
  someone acted, or its due date moved;
* it is no longer open (fixed, accepted, false positive, not affected) or stored;
* its due date is no longer past (a new priority gave it a later one).

The outcome says which: ``{"stopped": "fixed" | "triaged" | "changed" | "not breached"
| …, "step": n}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from patchpilot.automation.actions import Delivery, DeliveryError, Outcome, Problem
from patchpilot.automation.actions.email import ACTION as EMAIL
from patchpilot.clock import aware, iso
from patchpilot.db.tables import finding_events, finding_priority, findings
from patchpilot.findings.events import (
    FIXED_EVENT,
    NEW,
    PRIORITY_CHANGED,
    REOPENED,
    TRIAGED_EVENT,
)
from patchpilot.scans.schedules import ScheduleError, parse_duration

KEYS = ("chain", "lang", "subject", "body")
# Events after the chain's own that mean "something changed": stop escalating.
CHANGES = (FIXED_EVENT, TRIAGED_EVENT, REOPENED, PRIORITY_CHANGED, NEW)
SUBJECTS = {
    "en": "PatchPilot escalation {{ escalation.step }}/{{ escalation.steps }}: "
          "{{ finding.vuln_id }} on {{ asset.name }} is past its SLA",
    "ja": "PatchPilot エスカレーション {{ escalation.step }}/{{ escalation.steps }}: "
          "{{ asset.name }} の {{ finding.vuln_id }} が対応期限を過ぎています",
}
BODIES = {
    "en": """The finding below is past its SLA due date and nothing has changed since \
{{ event.at }} (event {{ event.kind }}, playbook {{ playbook }}).

Asset:          {{ asset.name }} (owner {{ asset.owner or '-' }})
Vulnerability:  {{ finding.vuln_id }}, {{ finding.severity }}
Package:        {{ finding.package }} ({{ finding.ecosystem }})
Priority:       {{ ('P' ~ finding.priority) if finding.priority else '-' }}
Due:            {{ escalation.due or '-' }}
Escalation:     step {{ escalation.step }} of {{ escalation.steps }}{% if escalation.next %}; \
the next at {{ escalation.next }} unless it changes{% endif %}
""",
    "ja": """以下の検出は対応期限を過ぎ、{{ event.at }} 以降変化がありません\
（イベント {{ event.kind }}、プレイブック {{ playbook }}）。

資産:           {{ asset.name }}（担当 {{ asset.owner or '-' }}）
脆弱性:         {{ finding.vuln_id }}、{{ finding.severity }}
パッケージ:     {{ finding.package }}（{{ finding.ecosystem }}）
優先度:         {{ ('P' ~ finding.priority) if finding.priority else '-' }}
期限:           {{ escalation.due or '-' }}
エスカレーション: {{ escalation.steps }} 段階中 {{ escalation.step }} 段階目\
{% if escalation.next %}（変化がなければ次は {{ escalation.next }}）{% endif %}
""",
}


def delay(text: Any) -> timedelta:
    """A step's ``after``: ``0`` (at once) or a duration ``4h``, ``90m``, ``2d``;
    ScheduleError otherwise."""
    if text in (0, "0"):
        return timedelta(0)
    return parse_duration(str(text))


def _email_settings(with_: Mapping[str, Any], to: Any) -> dict[str, Any]:
    """The e-mail action's settings of one step."""
    lang = with_.get("lang", "en")
    return {"to": to, "lang": lang,
            "subject": with_.get("subject", SUBJECTS.get(lang, SUBJECTS["en"])),
            "body": with_.get("body", BODIES.get(lang, BODIES["en"]))}


def _stop_reason(delivery: Delivery, finding_id: int | None) -> str | None:
    """Why the chain stops before a later step, or None to go on."""
    if finding_id is None:
        return "no finding"
    e = finding_events
    with delivery.engine.connect() as conn:
        changed = conn.execute(select(e.c.kind).where(
            e.c.finding_id == finding_id, e.c.id > delivery.event_id,
            e.c.kind.in_(CHANGES)).order_by(e.c.id).limit(1)).scalar()
        row = conn.execute(select(findings.c.state, finding_priority.c.due_date)
                           .select_from(findings.outerjoin(
                               finding_priority, finding_priority.c.finding_id == findings.c.id))
                           .where(findings.c.id == finding_id)).first()
    if changed is not None:
        return {FIXED_EVENT: "fixed", TRIAGED_EVENT: "triaged"}.get(changed, "changed")
    if row is None:
        return "no longer stored"
    if row.state != "open":
        return "fixed" if row.state == "fixed" else "triaged"
    due = aware(row.due_date)
    if due is None or due > delivery.now:
        return "not breached"
    return None


def _due(delivery: Delivery, finding_id: int | None) -> datetime | None:
    if finding_id is None:
        return None
    with delivery.engine.connect() as conn:
        return aware(conn.execute(select(finding_priority.c.due_date).where(
            finding_priority.c.finding_id == finding_id)).scalar())


class EscalateAction:
    """Mail each step of a chain in turn while nothing changes."""

    name = "escalate"

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """``chain`` a non-empty list of ``{after, to}`` with delays that do not
        decrease and ``to`` as the e-mail action takes it; ``lang``, ``subject`` and
        ``body`` as the e-mail action's."""
        unknown = sorted(set(with_) - set(KEYS))
        if unknown:
            return unknown[0], f"unknown setting (settings: {', '.join(KEYS)})"
        chain = with_.get("chain")
        if not isinstance(chain, list) or not chain:
            return "chain", ("required: a list of steps {after: \"0\" | \"4h\" | \"2d\", "
                             "to: [addresses]}")
        last = timedelta(0)
        for i, step in enumerate(chain):
            where = f"chain[{i}]"
            if not isinstance(step, dict):
                return where, "must be a mapping {after: …, to: […]}"
            extra = sorted(map(str, set(step) - {"after", "to"}))
            if extra:
                return f"{where}.{extra[0]}", "unknown field (fields: after, to)"
            if "after" not in step:
                return f"{where}.after", "required: \"0\" or a delay such as 4h or 2d"
            try:
                wait = delay(step["after"])
            except ScheduleError as exc:
                return f"{where}.after", str(exc)
            if wait < last:
                return f"{where}.after", ("must not be shorter than the step before's "
                                          "(delays count from the event)")
            last = wait
            problem = EMAIL.validate({k: v for k, v in _email_settings(with_, step.get("to"))
                                      .items() if k in ("to", "lang") or k in with_})
            if problem is not None:
                key, message = problem
                return (f"{where}.to" if key == "to" else key), message
        return None

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """``smtp:`` and the first step's recipients (the rate limit's key)."""
        to = with_["chain"][0]["to"]
        return EMAIL.target({"to": [to] if isinstance(to, str) else to}, payload)

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Send step ``delivery.step`` (after the stop checks, for a later step) and
        answer the next step's moment, if any."""
        chain = with_["chain"]
        i = delivery.step
        if i >= len(chain):  # a chain shortened by a new version cannot be: rows keep theirs
            return Outcome({"stopped": "chain ended", "step": i})
        finding_id = (payload.get("finding") or {}).get("id")
        event = payload.get("event") or {}
        try:
            start = datetime.fromisoformat(str(event["at"]))
        except (KeyError, ValueError) as exc:
            raise DeliveryError(f"escalate: the event has no valid moment ({exc})") from exc
        start = aware(start) or start
        if i > 0:
            why = _stop_reason(delivery, finding_id)
            if why is not None:
                return Outcome({"stopped": why, "step": i})
        at = start + delay(chain[i]["after"])
        if at > delivery.now:
            # Not due yet (a first step with a delay): wait for it, mailing nobody.
            return Outcome({"waiting": iso(at), "step": i}, again_at=at, step=i)
        following = start + delay(chain[i + 1]["after"]) if i + 1 < len(chain) else None
        context = {**payload, "escalation": {
            "step": i + 1, "steps": len(chain), "due": iso(_due(delivery, finding_id)),
            "next": iso(following)}}
        # As the email action: each recipient who is a user reads their own language.
        sent = EMAIL.deliver(_email_settings(with_, chain[i]["to"]), context, delivery)
        detail = {"step": i, "to": sent.detail["to"] if sent and sent.detail else None}
        if following is None:
            return Outcome(detail)
        return Outcome(detail, again_at=following, step=i + 1)


ACTION = EscalateAction()
