"""``digest``: one mail, on the playbook's schedule, of everything the playbook collected.

A playbook with events, a schedule and a ``digest`` action collects: on each finding
event it matches, the digest's outbox row is written ``collected`` (not delivered).  When
the playbook's schedule comes due, its ``scheduled`` event queues the digest's own row,
and delivering that row (here) gathers every collected row of the same playbook and
action -- one statement -- renders one message (counts by severity and by priority, then a
table of the findings sorted by priority) and mails it.  The collected rows are marked
sent by :func:`settle`, in the transaction that records the digest's delivery, so each
collected event is in exactly one digest; a digest that fails leaves them collected for
its retry.

``with``: ``to`` (addresses), ``lang`` (``en`` or ``ja``, default ``en``) and
``send_empty`` (default false: with nothing collected nothing is sent).  A recipient whose
address is the name of a PatchPilot user with a language (``users.language``) gets the
digest in that language; recipients of one language get one mail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import orjson
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from patchpilot.automation.actions import Delivery, DeliveryError, Outcome, Problem
from patchpilot.automation.actions.email import languages
from patchpilot.db.tables import outbox
from patchpilot.reports.mail import MailError, send

NAME = "digest"
COLLECTED = "collected"  # (evaluate.COLLECTED: the state of a row waiting for a digest)
LANGS = ("en", "ja")
SEVERITIES = ("Critical", "High", "Medium", "Low", "None", "Unknown")
_SETTINGS = ("to", "lang", "send_empty")

SUBJECTS = {
    "en": "PatchPilot digest ({{ playbook }}): {{ total }} finding event"
          "{{ '' if total == 1 else 's' }}",
    "ja": "PatchPilot ダイジェスト（{{ playbook }}）: {{ total }} 件",
}
# Plain text: a table of fixed-width columns (``format`` pads; the rows are few columns
# of short ASCII values, so a mail client's fixed font lines them up).
BODIES = {
    "en": """Playbook {{ playbook }}: {{ total }} finding event{{ '' if total == 1 else 's' }} \
since the last digest (due {{ due }}).
{% if total %}
By severity:  {% for name, n in severities %}{{ name }} {{ n }}{{ ', ' if not loop.last }}\
{% endfor %}
By priority:  {% for name, n in priorities %}{{ name }} {{ n }}{{ ', ' if not loop.last }}\
{% endfor %}

{{ "%-4s %-30s %-20s %-9s %s"|format("Prio", "Asset", "Vulnerability", "Severity", \
"Event") }}
{% for r in rows %}{{ "%-4s %-30s %-20s %-9s %s"|format(r[0], r[1], r[2], r[3], r[4]) }}
{% endfor %}{% else %}
Nothing was collected.
{% endif %}""",
    "ja": """プレイブック {{ playbook }}: 前回のダイジェストから {{ total }} 件のイベント\
（予定 {{ due }}）。
{% if total %}
深刻度別:  {% for name, n in severities %}{{ name }} {{ n }}{{ '、' if not loop.last }}\
{% endfor %}
優先度別:  {% for name, n in priorities %}{{ name }} {{ n }}{{ '、' if not loop.last }}\
{% endfor %}

{{ "%-4s %-30s %-20s %-9s %s"|format("優先", "資産", "脆弱性", "深刻度", "イベント") }}
{% for r in rows %}{{ "%-4s %-30s %-20s %-9s %s"|format(r[0], r[1], r[2], r[3], r[4]) }}
{% endfor %}{% else %}
収集されたものはありません。
{% endif %}""",
}

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                            keep_trailing_newline=True)
_SUBJECTS = {lang: _env.from_string(t) for lang, t in SUBJECTS.items()}
_BODIES = {lang: _env.from_string(t) for lang, t in BODIES.items()}


def _recipients(with_: Mapping[str, Any]) -> list[str]:
    to = with_.get("to")
    return [to] if isinstance(to, str) else list(to or [])


def digest_rows(payloads: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """The table of a digest: (priority, asset, vulnerability, severity, event kind) per
    collected event, by priority (unprioritised last), then severity, asset, CVE."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    keyed = []
    for p in payloads:
        finding, asset, event = p.get("finding") or {}, p.get("asset") or {}, p.get("event") or {}
        priority, severity = finding.get("priority"), finding.get("severity")
        keyed.append(((priority if priority is not None else 99,
                       rank.get(str(severity), len(SEVERITIES)), asset.get("name") or "",
                       finding.get("vuln_id") or ""),
                      (f"P{priority}" if priority is not None else "-",
                       asset.get("name") or "-", finding.get("vuln_id") or "-",
                       severity or "-", event.get("kind") or "-")))
    keyed.sort(key=lambda k: k[0])
    return [row for _, row in keyed]


def render(payloads: Sequence[Mapping[str, Any]], *, playbook: str, due: str, lang: str
           ) -> tuple[str, str]:
    """The (subject, body) of a digest of ``payloads`` (collected outbox payloads)."""
    rows = digest_rows(payloads)
    severities: dict[str, int] = {}
    priorities: dict[str, int] = {}
    for r in rows:
        severities[r[3]] = severities.get(r[3], 0) + 1
        priorities[r[0]] = priorities.get(r[0], 0) + 1
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    values = {"playbook": playbook, "due": due, "total": len(rows), "rows": rows,
              "severities": sorted(severities.items(),
                                   key=lambda kv: rank.get(kv[0], len(SEVERITIES))),
              "priorities": sorted(priorities.items(),
                                   key=lambda kv: (kv[0] == "-", kv[0]))}
    try:
        subject = _SUBJECTS[lang].render(values)
        body = _BODIES[lang].render(values)
    except TemplateError as exc:
        raise DeliveryError(f"digest: template: {exc}") from exc
    return " ".join(subject.split()), body


def collected(conn: Connection, playbook_id: int, action_index: int
              ) -> tuple[list[dict[str, Any]], int]:
    """The payloads of the rows collected for a playbook's digest action, and the highest
    row id among them (0: none).  One statement."""
    rows = conn.execute(select(outbox.c.id, outbox.c.payload).where(
        outbox.c.playbook_id == playbook_id, outbox.c.action_index == action_index,
        outbox.c.state == COLLECTED).order_by(outbox.c.id)).all()
    return [orjson.loads(r.payload) for r in rows], (rows[-1].id if rows else 0)


def settle(conn: Connection, playbook_id: int, action_index: int, through: int,
           digest_id: int, now: datetime) -> int:
    """Mark the rows a digest gathered (collected, up to id ``through``) sent, in the
    transaction recording the digest's delivery; how many.

    The bound is exact: collected rows are written only by evaluation, one transaction at
    a time behind its cursor lock, so a row committed after the digest read them has a
    higher id."""
    return int(conn.execute(update(outbox).where(
        outbox.c.playbook_id == playbook_id, outbox.c.action_index == action_index,
        outbox.c.state == COLLECTED, outbox.c.id <= through).values(
        state="sent", done_at=now,
        outcome=orjson.dumps({"digest": digest_id}).decode())).rowcount)


class DigestAction:
    """Collect matched finding events; mail them as one digest on the schedule."""

    name = NAME

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """``to`` addresses, ``lang`` known, ``send_empty`` a boolean."""
        unknown = sorted(set(with_) - set(_SETTINGS))
        if unknown:
            return unknown[0], f"unknown setting (settings: {', '.join(_SETTINGS)})"
        to = _recipients(with_)
        if not to or not all(isinstance(t, str) and "@" in t for t in to):
            return "to", "required: a list of mail addresses"
        if with_.get("lang", "en") not in LANGS:
            return "lang", f"must be one of {', '.join(LANGS)}"
        if not isinstance(with_.get("send_empty", False), bool):
            return "send_empty", "must be true or false"
        return None

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """``smtp:`` and the recipients."""
        return "smtp:" + ",".join(sorted(_recipients(with_)))

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Gather what was collected, render per language, mail; the Outcome names the
        last row gathered (``through``) for :func:`settle`."""
        with delivery.engine.connect() as conn:
            playbook_id, action_index = conn.execute(
                select(outbox.c.playbook_id, outbox.c.action_index)
                .where(outbox.c.id == delivery.outbox_id)).one()
            payloads, through = collected(conn, playbook_id, action_index)
            if not payloads and not with_.get("send_empty", False):
                return Outcome({"findings": 0, "sent": False, "through": 0})
            by_lang = languages(conn, _recipients(with_), with_.get("lang", "en"))
        due = str(((payload.get("event") or {}).get("detail") or {}).get("due") or "")
        smtp = delivery.settings.smtp
        for lang, recipients in by_lang.items():
            subject, body = render(payloads, playbook=delivery.playbook, due=due, lang=lang)
            msg = EmailMessage()
            msg["Subject"] = subject
            msg["From"] = smtp.sender
            msg["To"] = ", ".join(recipients)
            msg["Date"] = formatdate(localtime=False)
            msg["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
            msg.set_content(body)
            try:
                send(msg, smtp)
            except MailError as exc:
                raise DeliveryError(str(exc)) from exc
        return Outcome({"findings": len(payloads), "sent": True, "through": through,
                        "to": ", ".join(_recipients(with_))})


ACTION = DigestAction()
