"""Tickets in issue trackers (Jira, Redmine, GitHub, GitLab): the ``tickets`` rows and the
one ticket action every tracker module drives.

A ticket action opens one ticket per (tracker, target, subject) -- the subject is the
outbox row's (``finding:12``) or, with ``per: plan_item``, the plan item holding the
finding (``plan:<key>``) -- and follows the finding's life on it:

==========================  ==========================================================
event                       what the ticket gets
==========================  ==========================================================
``fixed``                   a comment and closed (nothing when there is no ticket)
``reopened``                a closed ticket reopened with a comment; an open one a
                            comment; none yet: created
anything else (``new``,     created when there is none; else a comment
``priority_changed``, …)
==========================  ==========================================================

With ``per: owner`` the action answers a ``sweep_finished`` event only (any other ends
skipped): the settled sweep's affected hosts are grouped by their CMDB owner
(:mod:`patchpilot.automation.sweep_owners`) and each owner -- hosts without one together
-- gets one ticket (subject ``sweep:<id>:owner:<owner>``, marker
``patchpilot-sweep-<id>-<digest of the owner>``) listing the hosts, the vulnerabilities
and the fixed versions; templates see ``owner``, ``hosts`` (names), ``affected`` (the
hosts with their packages), ``remedies`` and ``sweep`` (id, label, vulns, counts).  The
outcome lists ``tickets: [{owner, key, url, action}]``.  A sweep's tickets are opened
once; later events do not comment on them.

Exactly one ticket per subject, even when a worker dies mid-way or two workers deliver
two events of one subject at once:

* the row is claimed first (``state = 'pending'``, unique on system/target/subject), so
  only one delivery creates; another one seeing the claim retries later, or takes the claim
  over once it is older than :data:`PENDING_TIMEOUT` (its worker died);
* the ticket carries a marker (the label ``patchpilot-finding-12``, or the text in the
  subject where the tracker has no labels) that is searched for before creating: a worker
  that died after the tracker created the ticket but before the row was written finds it
  on the retry instead of opening a second one.

Trackers answer through :mod:`patchpilot.automation.actions._http` (SSRF check, no
redirects, 429 as a retryable :class:`DeliveryError`); an answer that is not 2xx is a
DeliveryError naming the tracker's own message and the host, never the token.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import Engine, and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from patchpilot.audit import audit
from patchpilot.automation.actions import (
    Delivery,
    DeliveryError,
    DeliverySettings,
    Outcome,
    Problem,
)
from patchpilot.automation.actions._http import request
from patchpilot.automation.sweep_owners import sweep_owners
from patchpilot.clock import aware, iso
from patchpilot.db.tables import findings, plan_hosts, plan_items, playbooks, tickets
from patchpilot.findings.events import SWEEP_FINISHED
from patchpilot.scans.plan_store import UNFIXED, ensure_current, item_key

OPEN, CLOSED, PENDING = "open", "closed", "pending"
OWNER = "owner"
PER = ("finding", "plan_item", OWNER)
LANGS = ("en", "ja")
FIXED, REOPENED = "fixed", "reopened"
# A claim to create a ticket older than this is a dead worker's: taken over (as long as
# the outbox's own claim on a row, deliver.CLAIM).
PENDING_TIMEOUT = timedelta(minutes=5)
ACTOR = "playbook"
SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
# Settings that would put a credential into the playbook (and its versions): refused.
CLEAR_SECRETS = ("token", "password", "api_key", "apikey", "private_token", "secret")
COMMON = ("url", "project", "token_secret", "per", "lang", "summary", "description",
          "comment")

SUMMARIES = {
    ("finding", "en"): "{{ finding.vuln_id }} on {{ asset.name }}: {{ finding.package }} "
                       "({{ finding.severity or 'unknown severity' }})",
    ("finding", "ja"): "{{ asset.name }} の {{ finding.vuln_id }}: {{ finding.package }}"
                       "（{{ finding.severity or '深刻度不明' }}）",
    ("plan_item", "en"): "Update {{ plan.package }}{% if plan.fixed_version %} to "
                         "{{ plan.fixed_version }}{% endif %} ({{ plan.ecosystem }})",
    ("plan_item", "ja"): "{{ plan.package }} の更新{% if plan.fixed_version %}"
                         "（{{ plan.fixed_version }} へ）{% endif %}（{{ plan.ecosystem }}）",
    ("owner", "en"): "{{ sweep.vulns | join(', ') or sweep.label }}: {{ hosts | length }} "
                     "affected host{{ '' if hosts | length == 1 else 's' }} of "
                     "{{ owner or 'no owner' }}",
    ("owner", "ja"): "{{ sweep.vulns | join('、') or sweep.label }}: "
                     "{{ owner or '担当者なし' }} の影響ホスト {{ hosts | length }} 台",
}
DESCRIPTIONS = {
    ("finding", "en"): """PatchPilot opened this ticket (playbook {{ playbook }}, \
event {{ event.kind }}).

Asset: {{ asset.name }} (tier {{ asset.criticality }}, {{ asset.environment }})
Vulnerability: {{ finding.vuln_id }}, {{ finding.severity }} (CVSS {{ finding.cvss_score }})
Package: {{ finding.package }} ({{ finding.ecosystem }})
Known exploited: {{ 'yes' if finding.known_exploited else 'no' }}
Priority: {{ ('P' ~ finding.priority) if finding.priority else '-' }}
""",
    ("finding", "ja"): """PatchPilot がこのチケットを作成しました\
（プレイブック {{ playbook }}、イベント {{ event.kind }}）。

資産: {{ asset.name }}（重要度 {{ asset.criticality }}、{{ asset.environment }}）
脆弱性: {{ finding.vuln_id }}、{{ finding.severity }}（CVSS {{ finding.cvss_score }}）
パッケージ: {{ finding.package }}（{{ finding.ecosystem }}）
悪用の確認: {{ 'あり' if finding.known_exploited else 'なし' }}
優先度: {{ ('P' ~ finding.priority) if finding.priority else '-' }}
""",
    ("plan_item", "en"): """PatchPilot opened this ticket (playbook {{ playbook }}).

Change: {{ plan.package }} ({{ plan.ecosystem }})\
{% if plan.fixed_version %} to {{ plan.fixed_version }}{% endif %}
{% if plan.command %}Command: {{ plan.command }}
{% endif %}Vulnerabilities: {{ plan.vulns | join(', ') }}
Hosts to patch: {{ plan.pending }}
""",
    ("plan_item", "ja"): """PatchPilot がこのチケットを作成しました（プレイブック {{ playbook }}）。

変更: {{ plan.package }}（{{ plan.ecosystem }}）\
{% if plan.fixed_version %} → {{ plan.fixed_version }}{% endif %}
{% if plan.command %}コマンド: {{ plan.command }}
{% endif %}脆弱性: {{ plan.vulns | join('、') }}
対応待ちのホスト: {{ plan.pending }}
""",
    ("owner", "en"): """PatchPilot opened this ticket (playbook {{ playbook }}, \
sweep {{ sweep.id }}: {{ sweep.label }}).

Owner: {{ owner or 'none in the CMDB' }}
Vulnerabilities: {{ sweep.vulns | join(', ') or sweep.label }}
Affected hosts ({{ hosts | length }}):
{% for h in affected %}- {{ h.name }}: {% for p in h.packages %}{{ p.package }} \
{{ p.version }}{% if not loop.last %}, {% endif %}{% endfor %}
{% endfor %}Remedy:
{% for r in remedies %}- {{ r.package }} ({{ r.ecosystem }}): \
{{ ('update to ' ~ r.fixed) if r.fixed else 'no fixed version published yet' }} \
on {{ r.hosts }} host{{ '' if r.hosts == 1 else 's' }}
{% endfor %}""",
    ("owner", "ja"): """PatchPilot がこのチケットを作成しました\
（プレイブック {{ playbook }}、スイープ {{ sweep.id }}: {{ sweep.label }}）。

担当者: {{ owner or 'CMDB に記載なし' }}
脆弱性: {{ sweep.vulns | join('、') or sweep.label }}
影響ホスト（{{ hosts | length }} 台）:
{% for h in affected %}- {{ h.name }}: {% for p in h.packages %}{{ p.package }} \
{{ p.version }}{% if not loop.last %}、{% endif %}{% endfor %}
{% endfor %}対処:
{% for r in remedies %}- {{ r.package }}（{{ r.ecosystem }}）: \
{{ (r.fixed ~ ' へ更新') if r.fixed else '修正版は未公開' }}（{{ r.hosts }} 台）
{% endfor %}""",
}
COMMENTS = {
    "en": "PatchPilot: {% if event.kind == 'fixed' %}fixed -- no scanner reports "
          "{{ finding.vuln_id }} on {{ asset.name }} any more"
          "{% elif event.kind == 'reopened' %}reopened -- {{ finding.vuln_id }} is "
          "reported on {{ asset.name }} again"
          "{% else %}{{ event.kind }} -- {{ finding.vuln_id }} on {{ asset.name }}"
          "{% if finding.priority %}, P{{ finding.priority }}{% endif %}"
          "{% endif %} ({{ event.at }}).",
    "ja": "PatchPilot: {% if event.kind == 'fixed' %}修正済み -- {{ asset.name }} の "
          "{{ finding.vuln_id }} はどのスキャナーからも報告されなくなりました"
          "{% elif event.kind == 'reopened' %}再発 -- {{ asset.name }} で "
          "{{ finding.vuln_id }} が再び報告されました"
          "{% else %}{{ event.kind }} -- {{ asset.name }} の {{ finding.vuln_id }}"
          "{% if finding.priority %}、P{{ finding.priority }}{% endif %}"
          "{% endif %}（{{ event.at }}）。",
}

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                            keep_trailing_newline=True)


# --- rows -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ticket:
    """One row of ``tickets``: a ticket PatchPilot opened (``state`` open, closed, or
    pending while its creation is claimed)."""

    id: int
    system: str
    target: str
    subject: str
    finding_id: int | None
    playbook_id: int | None
    key: str
    url: str | None
    state: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """What the API and the finding page show of it."""
        return {"system": self.system, "key": self.key, "url": self.url,
                "state": self.state, "created_at": iso(self.created_at),
                "closed_at": iso(self.closed_at)}


def _ticket(r: Any) -> Ticket:
    return Ticket(r.id, r.system, r.target, r.subject, r.finding_id, r.playbook_id, r.key,
                  r.url, r.state, aware(r.created_at), aware(r.updated_at),  # type: ignore[arg-type]
                  aware(r.closed_at))


def find_ticket(conn: Connection, system: str, target: str, subject: str) -> Ticket | None:
    """The row of (system, target, subject), or None."""
    row = conn.execute(select(tickets).where(
        tickets.c.system == system, tickets.c.target == target,
        tickets.c.subject == subject)).first()
    return _ticket(row) if row is not None else None


def claim_ticket(conn: Connection, *, system: str, target: str, subject: str,
                 finding_id: int | None, playbook_id: int | None, now: datetime) -> bool:
    """Insert the pending row of (system, target, subject) unless there is one; whether
    this call inserted it (and so is the one to create the ticket)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(tickets).values(
        system=system, target=target, subject=subject, finding_id=finding_id,
        playbook_id=playbook_id, key="", url=None, state=PENDING, created_at=now,
        updated_at=now).on_conflict_do_nothing(
        index_elements=["system", "target", "subject"]).returning(tickets.c.id)
    return conn.execute(stmt).first() is not None


def release_claim(conn: Connection, ticket_id: int) -> None:
    """Drop a pending claim whose creation failed."""
    conn.execute(delete(tickets).where(tickets.c.id == ticket_id, tickets.c.state == PENDING))


def take_over(conn: Connection, ticket: Ticket, now: datetime) -> bool:
    """Take over a pending claim older than :data:`PENDING_TIMEOUT` (compare-and-set on
    its ``updated_at``: one taker wins); whether this call got it."""
    if ticket.state != PENDING or now - ticket.updated_at < PENDING_TIMEOUT:
        return False
    return conn.execute(update(tickets).where(
        tickets.c.id == ticket.id, tickets.c.state == PENDING,
        tickets.c.updated_at == ticket.updated_at).values(updated_at=now)).rowcount == 1


def record_created(conn: Connection, ticket_id: int, key: str, url: str | None,
                   state: str, now: datetime) -> None:
    """Fill a claimed row with the tracker's key and URL."""
    conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(
        key=key, url=url, state=state, updated_at=now,
        closed_at=now if state == CLOSED else None))


def mark_ticket(conn: Connection, ticket_id: int, state: str, now: datetime) -> None:
    """Set a ticket open or closed (``closed_at`` with it)."""
    conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(
        state=state, updated_at=now, closed_at=now if state == CLOSED else None))


def touch_ticket(conn: Connection, ticket_id: int, now: datetime) -> None:
    """Note that PatchPilot wrote to (or polled) the ticket now (``updated_at``)."""
    conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(updated_at=now))


def tickets_of_finding(conn: Connection, finding_id: int) -> list[Ticket]:
    """The tickets opened for a finding (per finding, or per the plan item it was first
    seen in), oldest first; claims not yet created are left out."""
    rows = conn.execute(select(tickets).where(
        tickets.c.finding_id == finding_id, tickets.c.state != PENDING)
        .order_by(tickets.c.created_at, tickets.c.id))
    return [_ticket(r) for r in rows]


# --- the tracker contract ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RemoteTicket:
    """A ticket as the tracker answers it."""

    key: str
    url: str
    closed: bool


@dataclass(frozen=True, slots=True)
class Session:
    """What a tracker's calls need: its base URL (no trailing ``/``), the project, the
    token read from the secret store, the action's settings and the delivery settings."""

    url: str
    project: str
    token: str
    with_: Mapping[str, Any]
    settings: DeliverySettings

    @property
    def host(self) -> str:
        """The tracker's host, what errors name."""
        return urlsplit(self.url).hostname or self.url


class Tracker(Protocol):
    """The API of one issue tracker (``system``: its name and the action's ``type``;
    ``settings``: its own keys of ``with`` besides :data:`COMMON`)."""

    system: str
    settings: tuple[str, ...]

    def check(self, with_: Mapping[str, Any]) -> Problem:
        """What is wrong with the tracker's own settings, or None."""
        ...

    def find(self, s: Session, marker: str) -> RemoteTicket | None:
        """The ticket that carries ``marker`` (open or closed), or None."""
        ...

    def create(self, s: Session, summary: str, description: str, marker: str
               ) -> RemoteTicket:
        """Open a ticket carrying ``marker``."""
        ...

    def comment(self, s: Session, key: str, text: str) -> None:
        """Add a comment."""
        ...

    def set_closed(self, s: Session, key: str, closed: bool, text: str) -> None:
        """Close (or reopen) the ticket with the comment ``text``; done already is fine."""
        ...

    def fetch(self, s: Session, key: str) -> RemoteTicket:
        """The ticket's state now."""
        ...


def call(s: Session, system: str, method: str, path: str,
         message_of: Callable[[Any], str], **kwargs: Any) -> Any:
    """One call of a tracker's API: the decoded JSON of a 2xx answer ({} when empty);
    otherwise a DeliveryError with the status, the tracker's own message and its host."""
    answer = request(method, s.url + path, s.settings, what=system, **kwargs)
    try:
        body = answer.json() if answer.content.strip() else {}
    except ValueError:
        body = None
    if 200 <= answer.status_code < 300:
        return body if body is not None else {}
    message = ""
    if body is not None:
        try:
            message = message_of(body)
        except (AttributeError, KeyError, TypeError):
            message = ""
    message = " ".join(str(message).split())[:500] or answer.reason_phrase
    raise DeliveryError(f"{system}: {s.host} answered {answer.status_code}: {message}")


def marker_of(subject: str) -> str:
    """The label that marks a subject's ticket: ``patchpilot-finding-12``."""
    return "patchpilot-" + re.sub(r"[^A-Za-z0-9_.-]", "-", subject)


def owner_marker(sweep_id: int, owner: str | None) -> str:
    """The label that marks an owner's ticket of a sweep: ``patchpilot-sweep-7-`` and a
    digest of the owner (an owner is free text -- a name in Japanese, an address -- that
    no tracker takes as a label as it is), ``patchpilot-sweep-7-no-owner`` for nobody's."""
    if owner is None:
        return f"patchpilot-sweep-{sweep_id}-no-owner"
    return f"patchpilot-sweep-{sweep_id}-{hashlib.sha256(owner.encode()).hexdigest()[:12]}"


@dataclass(frozen=True, slots=True)
class Opening:
    """A ticket to open: the row found (None, or a pending claim), where and for what
    subject, its marker, the finding and playbook it is recorded with, and the summary
    and description templates with the context they are rendered in."""

    row: Ticket | None
    target: str
    subject: str
    marker: str
    finding_id: int | None
    playbook_id: int | None
    summary: str
    description: str
    context: Mapping[str, Any]


def render(template: str, context: Mapping[str, Any]) -> str:
    """A template of the action, rendered in the sandbox."""
    try:
        return _env.from_string(template).render(**context)
    except TemplateError as exc:
        raise DeliveryError(f"template: {exc}") from exc


# --- the plan item of a finding --------------------------------------------------------------

def plan_item_of(engine: Engine, finding_id: int) -> dict[str, Any] | None:
    """The current plan's item that holds the finding (its host row lists the finding's
    vulnerability, pending or verified), as the templates see it; None when none does.
    The plan is rebuilt first when stale and small (``plan_store.ensure_current``)."""
    state = ensure_current(engine)
    with engine.connect() as conn:
        f = conn.execute(select(findings.c.asset_id, findings.c.vuln_id, findings.c.state,
                                findings.c.ecosystem, findings.c.package)
                         .where(findings.c.id == finding_id)).first()
        if f is None or not state.generation:
            return None
        i, h = plan_items, plan_hosts
        columns = (i.c.key, i.c.kind, i.c.ecosystem, i.c.package, i.c.fixed_version,
                   i.c.command, i.c.vulns, i.c.pending)
        rows = conn.execute(
            select(*columns, h.c.vulns.label("host_vulns"))
            .select_from(i.join(h, and_(h.c.generation == i.c.generation,
                                        h.c.item_key == i.c.key)))
            .where(i.c.generation == state.generation, h.c.asset_id == f.asset_id,
                   i.c.ecosystem == f.ecosystem, i.c.package == f.package)
            .order_by(i.c.rank)).all()
        found: Any = next((r for r in rows if f.vuln_id in orjson.loads(r.host_vulns)), None)
        if found is None and f.state != "open":
            # A fix item keeps a fixed finding (its host verified); an item of findings
            # no fix removes lists open ones only, and is gone once none is left: its key
            # is known all the same.
            key = item_key(UNFIXED, f.ecosystem, f.package, "")
            found = conn.execute(select(*columns).where(
                i.c.generation == state.generation, i.c.key == key)).first()
            if found is None:
                return {"key": key, "kind": UNFIXED, "ecosystem": f.ecosystem,
                        "package": f.package, "fixed_version": "", "command": None,
                        "vulns": [], "pending": 0}
    if found is None:
        return None
    return {"key": found.key, "kind": found.kind, "ecosystem": found.ecosystem,
            "package": found.package, "fixed_version": found.fixed_version,
            "command": found.command, "vulns": orjson.loads(found.vulns),
            "pending": found.pending}


# --- the action -------------------------------------------------------------------------------

def _is_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class TicketAction:
    """The ticket action of one tracker (its ``name`` is the tracker's ``system``)."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.name = tracker.system

    # validate / target -------------------------------------------------------------------

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """``url`` http(s), ``project``, ``token_secret`` a secret's name (a token in
        clear is refused), ``per``, ``lang``, templates that compile, then the tracker's
        own keys."""
        for key in CLEAR_SECRETS:
            if key in with_:
                return key, ("a token is never stored in a playbook: store it with "
                             "`patchpilot secret set NAME` and name it with token_secret")
        allowed = (*COMMON, *self.tracker.settings)
        unknown = sorted(set(with_) - set(allowed))
        if unknown:
            return unknown[0], f"unknown setting (settings: {', '.join(allowed)})"
        if not _is_url(with_.get("url")):
            return "url", f"required: the http(s) base URL of the {self.name} server"
        project = with_.get("project")
        if not isinstance(project, str | int) or isinstance(project, bool) \
                or not str(project).strip():
            return "project", "required: the project the tickets go to"
        name = with_.get("token_secret")
        if not isinstance(name, str) or not SECRET_NAME.match(name):
            return "token_secret", ("required: the name of the stored secret holding the "
                                    "API token (`patchpilot secret set NAME`)")
        if with_.get("per", "finding") not in PER:
            return "per", f"must be one of {', '.join(PER)}"
        if with_.get("lang", "en") not in LANGS:
            return "lang", f"must be one of {', '.join(LANGS)}"
        for key in ("summary", "description", "comment"):
            if key not in with_:
                continue
            if not isinstance(with_[key], str):
                return key, "must be a template (text)"
            try:
                _env.parse(with_[key])
            except TemplateError as exc:
                return key, f"template does not compile: {exc}"
        return self.tracker.check(with_)

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """``jira:https://jira.example.com/PROJ``: the tracker, its URL and the project
        (no token)."""
        return f"{self.name}:{str(with_['url']).rstrip('/')}/{with_['project']}"

    def session(self, with_: Mapping[str, Any], token: str,
                settings: DeliverySettings) -> Session:
        """The tracker session of these settings."""
        return Session(str(with_["url"]).rstrip("/"), str(with_["project"]), token, with_,
                       settings)

    # deliver -----------------------------------------------------------------------------

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Create, comment, close or reopen the subject's ticket (see the module)."""
        kind = str((payload.get("event") or {}).get("kind", ""))
        finding_id = (payload.get("finding") or {}).get("id")
        context: dict[str, Any] = dict(payload)
        per = with_.get("per", "finding")
        if per == OWNER:
            return self._deliver_per_owner(with_, payload, delivery)
        subject = delivery.subject
        if per == "plan_item":
            plan = plan_item_of(delivery.engine, finding_id) if finding_id else None
            if plan is None:
                raise DeliveryError(f"{self.name}: {subject} is in no item of the current "
                                    "patch plan (yet): retried once the plan is rebuilt")
            subject, context["plan"] = f"plan:{plan['key']}", plan
        target = self.target(with_, payload)
        lang = with_.get("lang", "en")
        s = self.session(with_, delivery.secret(str(with_["token_secret"])),
                         delivery.settings)
        now = delivery.now
        with delivery.engine.connect() as conn:
            row = find_ticket(conn, self.name, target, subject)
            playbook_id = conn.execute(select(playbooks.c.id).where(
                playbooks.c.name == delivery.playbook)).scalar()

        def outcome(action: str, key: str, url: str | None) -> Outcome:
            return Outcome({"system": self.name, "key": key, "url": url, "action": action})

        if row is None or row.state == PENDING:
            if kind == FIXED and row is None:
                return Outcome({"system": self.name, "key": None, "url": None,
                                "action": "none"})  # fixed before any ticket was opened
            remote = self._create(delivery, s, Opening(
                row, target, subject, marker_of(subject), finding_id, playbook_id,
                with_.get("summary", SUMMARIES[per, lang]),
                with_.get("description", DESCRIPTIONS[per, lang]), context))
            return outcome("created", remote.key, remote.url)

        text = render(with_.get("comment", COMMENTS[lang]), context)
        if kind == FIXED:
            if per == "plan_item" and context["plan"]["pending"]:
                action, state = "commented", row.state  # other hosts still to patch
                self.tracker.comment(s, row.key, text)
            elif row.state == CLOSED:
                return outcome("none", row.key, row.url)
            else:
                self.tracker.set_closed(s, row.key, True, text)
                action, state = "closed", CLOSED
        elif row.state == CLOSED and kind == REOPENED:
            self.tracker.set_closed(s, row.key, False, text)
            action, state = "reopened", OPEN
        else:
            self.tracker.comment(s, row.key, text)
            action, state = "commented", row.state
        with delivery.engine.begin() as conn:
            if state != row.state:
                mark_ticket(conn, row.id, state, now)
                audit(conn, ACTOR, f"ticket.{'close' if state == CLOSED else 'reopen'}",
                      f"ticket:{row.id}", {"system": self.name, "key": row.key,
                                           "by": "playbook"})
            else:
                touch_ticket(conn, row.id, now)
        return outcome(action, row.key, row.url)

    def _deliver_per_owner(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                           delivery: Delivery) -> Outcome:
        """One ticket per owner of a settled sweep's affected hosts (``per: owner``).

        Only a ``sweep_finished`` event names a sweep; any other ends skipped.  An owner
        whose ticket exists (this delivery taken again after a crash or a failure part
        way) keeps it: nothing is created twice, nothing is commented.  A failure on one
        owner fails the delivery; its retry creates only the tickets still missing."""
        event = payload.get("event") or {}
        kind = str(event.get("kind", ""))
        if kind != SWEEP_FINISHED:
            return Outcome({"skipped": f"per: owner opens tickets for a settled sweep; "
                                       f"the event is {kind or 'unnamed'}, not "
                                       f"{SWEEP_FINISHED}"})
        sweep_id = (event.get("detail") or {}).get("sweep_id")
        if not isinstance(sweep_id, int) or isinstance(sweep_id, bool):
            return Outcome({"skipped": "the event names no sweep"})
        with delivery.engine.connect() as conn:
            swept = sweep_owners(conn, sweep_id)
            playbook_id = conn.execute(select(playbooks.c.id).where(
                playbooks.c.name == delivery.playbook)).scalar()
        if swept is None:
            return Outcome({"skipped": f"sweep {sweep_id} no longer exists"})
        target = self.target(with_, payload)
        lang = with_.get("lang", "en")
        s = self.session(with_, delivery.secret(str(with_["token_secret"])),
                         delivery.settings)
        subjects = {g.owner: f"sweep:{swept.id}:owner:{g.owner or ''}" for g in swept.owners}
        with delivery.engine.connect() as conn:
            known = {r.subject: _ticket(r) for r in conn.execute(select(tickets).where(
                tickets.c.system == self.name, tickets.c.target == target,
                tickets.c.subject.in_(list(subjects.values()))))}
        opened: list[dict[str, Any]] = []
        for group in swept.owners:
            subject = subjects[group.owner]
            row = known.get(subject)
            if row is not None and row.state != PENDING:
                opened.append({"owner": group.owner, "key": row.key, "url": row.url,
                               "action": "exists"})
                continue
            context = {**payload, "owner": group.owner,
                       "hosts": [h["name"] for h in group.hosts],
                       "affected": [dict(h) for h in group.hosts],
                       "remedies": group.remedies(), "sweep": swept.to_dict()}
            remote = self._create(delivery, s, Opening(
                row, target, subject, owner_marker(swept.id, group.owner), None,
                playbook_id, with_.get("summary", SUMMARIES[OWNER, lang]),
                with_.get("description", DESCRIPTIONS[OWNER, lang]), context))
            opened.append({"owner": group.owner, "key": remote.key, "url": remote.url,
                           "action": "created"})
        return Outcome({"system": self.name, "sweep_id": swept.id, "tickets": opened})

    def _create(self, delivery: Delivery, s: Session, o: Opening) -> RemoteTicket:
        """Claim the subject's row, find the ticket by its marker or create it, record it
        (audited ``ticket.create``): the one path every ticket is opened by."""
        ticket_id = self._claim(delivery, o.row, o.subject, o.finding_id, o.playbook_id,
                                o.target)
        try:
            remote = self.tracker.find(s, o.marker)
            found = remote is not None
            if remote is None:
                summary = " ".join(render(o.summary, o.context).split())
                description = render(o.description, o.context)
                remote = self.tracker.create(s, summary, description, o.marker)
        except DeliveryError:
            # Let the retry (or another event's delivery) claim it at once; should the
            # tracker have created the ticket all the same, the marker finds it then.
            with delivery.engine.begin() as conn:
                release_claim(conn, ticket_id)
            raise
        with delivery.engine.begin() as conn:
            record_created(conn, ticket_id, remote.key, remote.url,
                           CLOSED if remote.closed else OPEN, delivery.now)
            audit(conn, ACTOR, "ticket.create", f"ticket:{ticket_id}",
                  {"system": self.name, "key": remote.key, "url": remote.url,
                   "subject": o.subject, "found": found})
        return remote

    def _claim(self, delivery: Delivery, row: Ticket | None, subject: str,
               finding_id: int | None, playbook_id: int | None, target: str) -> int:
        """The id of the pending row this delivery now holds; DeliveryError when another
        live delivery holds it (retried with backoff)."""
        with delivery.engine.begin() as conn:
            if row is None and claim_ticket(
                    conn, system=self.name, target=target, subject=subject,
                    finding_id=finding_id, playbook_id=playbook_id, now=delivery.now):
                row = find_ticket(conn, self.name, target, subject)
                assert row is not None
                return row.id
            row = find_ticket(conn, self.name, target, subject)
            if row is not None and take_over(conn, row, delivery.now):
                return row.id
        raise DeliveryError(f"{self.name}: the ticket of {subject} is being created by "
                            "another delivery; retried")
