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

from patchpilot.automation.actions import Delivery, Outcome, Problem
from patchpilot.automation.actions._chat import (
    Flavour,
    no_mentions,
    post,
    render,
    target,
    validate,
    webhook_url,
)

FLAVOUR = Flavour("mattermost", no_mentions, extra=("channel", "username"))


def body(text: str, with_: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook's JSON for a message."""
    out: dict[str, Any] = {"text": text}
    for key in ("channel", "username"):
        if with_.get(key):
            out[key] = with_[key]
    return out


class MattermostAction:
    """Post the event to a Mattermost channel."""

    name = "mattermost"

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """See :func:`patchpilot.automation.actions._chat.validate`."""
        return validate(FLAVOUR, with_)

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """``mattermost:`` and the secret's name."""
        return target(FLAVOUR, with_)

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Render, then POST to the URL the secret holds."""
        text = render(FLAVOUR, with_, payload)
        return post(FLAVOUR, webhook_url(FLAVOUR, with_, delivery), body(text, with_),
                    delivery)


ACTION = MattermostAction()
