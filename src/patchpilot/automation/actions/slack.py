"""``slack``: a message in a Slack channel through an incoming webhook.

``with``: ``url_secret`` (the name of the stored secret holding the webhook URL
``https://hooks.slack.com/services/…``), ``lang`` (``en`` or ``ja``), optional ``text``
(a Jinja2 template in Slack's mrkdwn).  The body is ``{"text": …, "blocks": [a section
of that mrkdwn]}``: ``text`` is what the notification shows, the block what the channel
does.  Slack answers ``200 ok``; its errors are text (``invalid_token``, ``no_service``,
``channel_not_found``, ``invalid_blocks``), quoted in the DeliveryError.
See https://api.slack.com/messaging/webhooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchpilot.automation.actions._chat import (
    TEXTS,
    ChatAction,
    Flavour,
    slack_escape,
)

FLAVOUR = Flavour("slack", slack_escape)
# A section block's text holds at most 3,000 characters (past it Slack refuses the whole
# message with invalid_blocks); the top-level text keeps the rest.
SECTION_LIMIT = 3000
# mrkdwn's bold is one asterisk.
DEFAULTS = {lang: text.replace("**", "*") for lang, text in TEXTS.items()}


def body(text: str, with_: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook's JSON for a message."""
    shown = text if len(text) <= SECTION_LIMIT else text[:SECTION_LIMIT - 1] + "…"
    return {"text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": shown}}]}


ACTION = ChatAction(FLAVOUR, body, DEFAULTS)
