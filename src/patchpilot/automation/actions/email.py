"""``email``: a message per event over the configured SMTP server.

``with``: ``to`` (a list of addresses, each a Jinja2 template: ``"{{ asset.owner }}"``
mails the asset's owner), ``lang`` (``en`` or ``ja``: the default subject and body in that
language), and optional ``subject`` / ``body`` templates replacing the defaults.  A
recipient who is a PatchPilot user (an address that is a user's name) with a language set
gets the default subject and body in that language instead: one mail per language.  The
templates see ``event``, ``finding``, ``asset`` and ``playbook`` and run in Jinja2's
sandbox: a playbook author cannot reach Python objects through them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from patchpilot.automation.actions import Delivery, DeliveryError, Outcome, Problem
from patchpilot.db.tables import users
from patchpilot.reports.mail import MailError, send

LANGS = ("en", "ja")
SUBJECTS = {
    "en": "PatchPilot: {{ finding.severity or 'Finding' }} {{ finding.vuln_id }} "
          "on {{ asset.name }} ({{ event.kind }})",
    "ja": "PatchPilot: {{ asset.name }} で {{ finding.vuln_id }}"
          "（{{ finding.severity or '深刻度不明' }}）: {{ event.kind }}",
}
BODIES = {
    "en": """Playbook {{ playbook }} fired on the event {{ event.kind }} ({{ event.at }}).

Asset:          {{ asset.name }} (tier {{ asset.criticality }}, {{ asset.environment }})
Vulnerability:  {{ finding.vuln_id }}, {{ finding.severity }} (CVSS {{ finding.cvss_score }})
Package:        {{ finding.package }} ({{ finding.ecosystem }})
Known exploited: {{ 'yes' if finding.known_exploited else 'no' }}
Priority:       {{ ('P' ~ finding.priority) if finding.priority else '-' }}
""",
    "ja": """プレイブック {{ playbook }} が
イベント {{ event.kind }}（{{ event.at }}）で実行されました。

資産:           {{ asset.name }}（重要度 {{ asset.criticality }}、{{ asset.environment }}）
脆弱性:         {{ finding.vuln_id }}、{{ finding.severity }}（CVSS {{ finding.cvss_score }}）
パッケージ:     {{ finding.package }}（{{ finding.ecosystem }}）
悪用の確認:     {{ 'あり' if finding.known_exploited else 'なし' }}
優先度:         {{ ('P' ~ finding.priority) if finding.priority else '-' }}
""",
}

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                            keep_trailing_newline=True)


def _render(template: str, payload: Mapping[str, Any]) -> str:
    return _env.from_string(template).render(**payload)


class EmailAction:
    """Mail the event to the rendered recipients."""

    name = "email"

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """``to`` a non-empty list of text, ``lang`` known, every template compiles."""
        unknown = sorted(set(with_) - {"to", "lang", "subject", "body"})
        if unknown:
            return unknown[0], "unknown setting (settings: to, lang, subject, body)"
        to = with_.get("to")
        if isinstance(to, str):
            to = [to]
        if not isinstance(to, list) or not to or not all(isinstance(t, str) for t in to):
            return "to", "required: a list of addresses (or templates such as " \
                         "'{{ asset.owner }}')"
        if with_.get("lang", "en") not in LANGS:
            return "lang", f"must be one of {', '.join(LANGS)}"
        for key in ("subject", "body"):
            if key in with_ and not isinstance(with_[key], str):
                return key, "must be a template (text)"
        for key, text in [*(("to", t) for t in to),
                          *((k, with_[k]) for k in ("subject", "body") if k in with_)]:
            try:
                _env.parse(text)
            except TemplateError as exc:
                return key, f"template does not compile: {exc}"
        return None

    def message(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                sender: str, *, recipients: Sequence[str] | None = None) -> EmailMessage:
        """The mail of one event (recipients without ``@`` after rendering are dropped:
        an asset without an owner mails nobody rather than a bad address);
        ``recipients``: these addresses, already rendered, instead of ``to``."""
        lang = with_.get("lang", "en")
        to = with_["to"] if isinstance(with_["to"], list) else [with_["to"]]
        try:
            if recipients is None:
                recipients = [r for r in (_render(t, payload).strip() for t in to)
                              if "@" in r]
            subject = _render(with_.get("subject", SUBJECTS[lang]), payload)
            body = _render(with_.get("body", BODIES[lang]), payload)
        except TemplateError as exc:
            raise DeliveryError(f"email: template: {exc}") from exc
        if not recipients:
            raise DeliveryError("email: no recipient address after rendering 'to'")
        msg = EmailMessage()
        msg["Subject"] = " ".join(subject.split())
        msg["From"] = sender
        msg["To"] = ", ".join(recipients)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        msg.set_content(body)
        return msg

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """``smtp:`` and the recipients (a rendering failure is left to deliver)."""
        try:
            recipients = [r for r in (_render(t, payload).strip() for t in with_["to"]) if r]
        except TemplateError:
            recipients = []
        return "smtp:" + ",".join(sorted(recipients))

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Render and send over SMTP: one mail per recipients' language."""
        smtp = delivery.settings.smtp
        msg = self.message(with_, payload, smtp.sender)
        recipients = [r.strip() for r in str(msg["To"]).split(",")]
        with delivery.engine.connect() as conn:
            by_lang = languages(conn, recipients, with_.get("lang", "en"))
        default = with_.get("lang", "en")
        sent: list[str] = []
        for lang, group in by_lang.items():
            one = msg if (lang, group) == (default, recipients) else self.message(
                {**with_, "lang": lang}, payload, smtp.sender, recipients=group)
            try:
                send(one, smtp)
            except MailError as exc:
                raise DeliveryError(str(exc)) from exc
            sent.append(str(one["To"]))
        return Outcome({"to": ", ".join(sent)})


def languages(conn: Connection, recipients: Sequence[str], default: str
              ) -> dict[str, list[str]]:
    """The recipients by the language they read: a PatchPilot user's (a user named by
    the address) when set, else ``default`` -- in the order the recipients were given."""
    known = dict(conn.execute(select(func.lower(users.c.name), users.c.language).where(
        func.lower(users.c.name).in_([r.lower() for r in recipients]),
        users.c.language.in_(LANGS))).all())
    out: dict[str, list[str]] = {}
    for r in recipients:
        out.setdefault(known.get(r.lower()) or default, []).append(r)
    return out


ACTION = EmailAction()
