"""``mattermost``: a message in a Mattermost channel through an incoming webhook.

``with``: ``url_secret`` (the name of the stored secret holding the webhook URL
``https://mattermost.example.com/hooks/…``), ``lang`` (``en`` or ``ja``), optional
``text`` (a Jinja2 template in Markdown), ``channel`` (another channel than the hook's,
when the hook allows it) and ``username`` (the name shown, when the server lets
webhooks override it).  The body is ``{"text": …}`` with those two added when given.
Mattermost answers ``200 ok``; an error is JSON whose ``message`` the DeliveryError
quotes.  See https://developers.mattermost.com/integrate/webhooks/incoming/.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchpilot.automation.actions._chat import (
    ChatAction,
    Flavour,
    no_mentions,
)

FLAVOUR = Flavour("mattermost", no_mentions, extra=("channel", "username"))


def body(text: str, with_: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook's JSON for a message."""
    out: dict[str, Any] = {"text": text}
    for key in ("channel", "username"):
        if with_.get(key):
            out[key] = with_[key]
    return out


ACTION = ChatAction(FLAVOUR, body)
