"""What the chat actions (``slack``, ``teams``, ``mattermost``) share: their settings, the
message text and the POST to an incoming webhook.

An incoming-webhook URL *is* the credential (anyone holding it may post to the channel),
so a playbook never holds it: ``url_secret`` names a secret stored with ``patchpilot
secret set NAME`` (:mod:`patchpilot.automation.secrets`), read only when delivering, and
the action's target is the secret's name, never the URL.

The message is a Jinja2 template run in the sandbox, as the e-mail action's: ``text``
when the playbook gives one, else the default of ``lang`` (``en`` or ``ja``): severity,
vulnerability, asset, priority, event kind and playbook.  No link to the dashboard is
added: the settings hold no public URL of the server to build it from.

Every value a template prints passes through the flavour's ``finalize``: Slack's escapes
``&``, ``<`` and ``>`` (Slack reads ``<!channel>`` or ``<https://…|…>`` in a message as a
mention or a link, and a package or host name comes from a scanner report); Mattermost's
breaks ``@`` mentions (``@all`` in a host name must not page a whole team).  The
template's own text is left as its author wrote it, links and mentions included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from patchpilot.automation.actions import Delivery, DeliveryError, Outcome, Problem
from patchpilot.automation.actions._http import request
from patchpilot.automation.secrets import NAME as SECRET_NAME

LANGS = ("en", "ja")
# Markdown with ``**`` for bold: Slack's mrkdwn gets ``*`` instead, Teams a bold first
# TextBlock (see each module).
TEXTS = {
    "en": """\
{% if finding.id is not none %}
**PatchPilot: {{ finding.severity or 'Finding' }} {{ finding.vuln_id }} on {{ asset.name }}**
Priority: {{ ('P' ~ finding.priority) if finding.priority else '-' }} · \
Event: {{ event.kind }} · Playbook: {{ playbook }}
Package: {{ finding.package }} ({{ finding.ecosystem }})\
{{ ' · known exploited' if finding.known_exploited else '' }}
{% else %}
**PatchPilot: {{ event.kind }}{{ (' on ' ~ asset.name) if asset.name else '' }}**
Playbook: {{ playbook }}
{% endif %}
""",
    "ja": """\
{% if finding.id is not none %}
**PatchPilot: {{ asset.name }} で {{ finding.vuln_id }}（{{ finding.severity or '深刻度不明' }}）**
優先度: {{ ('P' ~ finding.priority) if finding.priority else '-' }} · \
イベント: {{ event.kind }} · プレイブック: {{ playbook }}
パッケージ: {{ finding.package }}（{{ finding.ecosystem }}）\
{{ ' · 悪用の確認あり' if finding.known_exploited else '' }}
{% else %}
**PatchPilot: イベント {{ event.kind }}{{ ('（' ~ asset.name ~ '）') if asset.name else '' }}**
プレイブック: {{ playbook }}
{% endif %}
""",
}
# An error body quoted in a DeliveryError is cut here (a proxy's HTML page is long).
_REASON = 200


@dataclass(frozen=True, slots=True)
class Flavour:
    """How one chat service takes a message."""

    name: str
    finalize: Callable[[Any], str]
    extra: tuple[str, ...] = ()  # settings beyond url_secret, lang and text

    @property
    def keys(self) -> tuple[str, ...]:
        """Every setting the action takes."""
        return ("url_secret", "lang", "text", *self.extra)


def plain(value: Any) -> str:
    """A printed value as Jinja2 prints it (an undefined one still fails)."""
    return str(value)


def slack_escape(value: Any) -> str:
    """A printed value with the three characters Slack's mrkdwn reads as markup escaped
    (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def no_mentions(value: Any) -> str:
    """A printed value whose ``@`` cannot start a Mattermost mention (a zero-width space
    after it: shown the same, notifies nobody)."""
    return str(value).replace("@", "@\u200b")


_ENVS: dict[str, SandboxedEnvironment] = {}


def environment(flavour: Flavour) -> SandboxedEnvironment:
    """The sandbox the flavour's templates run in (one per flavour, made once)."""
    env = _ENVS.get(flavour.name)
    if env is None:
        env = _ENVS[flavour.name] = SandboxedEnvironment(
            undefined=StrictUndefined, autoescape=False, trim_blocks=True,
            lstrip_blocks=True, finalize=flavour.finalize)
    return env


def validate(flavour: Flavour, with_: Mapping[str, Any]) -> Problem:
    """``url_secret`` a secret's name (a ``url`` in clear is refused: it would be stored
    in every version of the playbook), ``lang`` known, ``text`` a template that compiles,
    the flavour's own settings text."""
    if "url" in with_:
        return "url", (f"a {flavour.name} webhook URL is a credential and is never stored "
                       "in a playbook: store it with `patchpilot secret set NAME` and give "
                       "url_secret: NAME")
    unknown = sorted(set(with_) - set(flavour.keys))
    if unknown:
        return unknown[0], f"unknown setting (settings: {', '.join(flavour.keys)})"
    name = with_.get("url_secret")
    if not isinstance(name, str) or not SECRET_NAME.match(name):
        return "url_secret", ("required: the name of the stored secret that holds the "
                              "incoming-webhook URL (`patchpilot secret set NAME`)")
    if with_.get("lang", "en") not in LANGS:
        return "lang", f"must be one of {', '.join(LANGS)}"
    for key in ("text", *flavour.extra):
        if key in with_ and not isinstance(with_[key], str):
            return key, "must be text"
    if "text" in with_:
        try:
            environment(flavour).parse(with_["text"])
        except TemplateError as exc:
            return "text", f"template does not compile: {exc}"
    return None


def target(flavour: Flavour, with_: Mapping[str, Any]) -> str:
    """``slack:NAME``: the secret's name, never the URL it holds."""
    return f"{flavour.name}:{with_['url_secret']}"


def render(flavour: Flavour, with_: Mapping[str, Any], payload: Mapping[str, Any],
           default: str | None = None) -> str:
    """The message text: ``text``, else ``default`` (the flavour's form of the
    ``lang`` default), trailing blank lines dropped; DeliveryError naming the template."""
    template = with_.get("text")
    if template is None:
        template = default if default is not None else TEXTS[with_.get("lang", "en")]
    try:
        text = environment(flavour).from_string(template).render(**payload)
    except TemplateError as exc:
        raise DeliveryError(f"{flavour.name}: template: {exc}") from exc
    return text.rstrip()


def webhook_url(flavour: Flavour, with_: Mapping[str, Any], delivery: Delivery) -> str:
    """The URL kept in the secret ``url_secret`` (DeliveryError without showing it when
    it is not an http(s) URL)."""
    name = str(with_["url_secret"])
    url = delivery.secret(name).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"{flavour.name}: secret {name!r} does not hold an http(s) "
                            "webhook URL")
    return url


def reason(answer: httpx.Response) -> str:
    """The short why of an error answer: a JSON error's message (Teams
    ``{"error": {"message"}}``, Mattermost ``{"message"}``), else the text (Slack
    answers ``invalid_token``, ``no_service``, ``channel_not_found``)."""
    text = answer.text
    try:
        data = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        found = (error.get("message") if isinstance(error, dict) else error) or \
            data.get("message") or data.get("detail")
        if isinstance(found, str) and found:
            text = found
    text = re.sub(r"\s+", " ", text).strip()
    return text[:_REASON] + ("…" if len(text) > _REASON else "")


def post(flavour: Flavour, url: str, body: dict[str, Any], delivery: Delivery) -> Outcome:
    """POST ``body`` as JSON (SSRF-checked, no redirects); a non-2xx answer is a
    DeliveryError naming the host, the status and the service's reason."""
    answer = request("POST", url, delivery.settings, what=flavour.name,
                     content=orjson.dumps(body),
                     headers={"Content-Type": "application/json"})
    if not 200 <= answer.status_code < 300:
        why = reason(answer)
        raise DeliveryError(f"{flavour.name}: {urlsplit(url).hostname} answered "
                            f"{answer.status_code}" + (f": {why}" if why else ""))
    return Outcome({"status": answer.status_code})


# The webhook's JSON for a message: ``body(text, with_)``.
Body = Callable[[str, Mapping[str, Any]], dict[str, Any]]


class ChatAction:
    """A chat service's action: its flavour, the JSON its webhook takes and its default
    texts by language (None: :data:`TEXTS` as they are)."""

    def __init__(self, flavour: Flavour, body: Body,
                 defaults: Mapping[str, str] | None = None) -> None:
        self.name = flavour.name
        self.flavour = flavour
        self.body = body
        self.defaults = defaults

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """See :func:`validate`."""
        return validate(self.flavour, with_)

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """The service and the secret's name (never the URL it holds)."""
        return target(self.flavour, with_)

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Render, then POST to the URL the secret holds."""
        default = self.defaults[with_.get("lang", "en")] if self.defaults else None
        text = render(self.flavour, with_, payload, default)
        return post(self.flavour, webhook_url(self.flavour, with_, delivery),
                    self.body(text, with_), delivery)
