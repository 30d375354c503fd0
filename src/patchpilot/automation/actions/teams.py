"""``teams``: a card in a Microsoft Teams channel through a Workflows webhook.

Teams' Office 365 connectors are retired; a channel takes webhooks through the Workflows
app's template "Post to a channel when a webhook request is received", which posts the
Adaptive Card of each message's attachment.  ``with``: ``url_secret`` (the name of the
stored secret holding the workflow's URL), ``lang`` (``en`` or ``ja``), optional ``text``
(a Jinja2 template).  The card holds one TextBlock per line of the text, the first bold
as its title.  The workflow answers ``202 Accepted``; an error is JSON whose
``error.message`` the DeliveryError quotes.  See
https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
and https://adaptivecards.io/explorer/TextBlock.html.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchpilot.automation.actions._chat import (
    TEXTS,
    ChatAction,
    Flavour,
    plain,
)

FLAVOUR = Flavour("teams", plain)
CARD = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
# The title is bold by its TextBlock's weight, not by Markdown.
DEFAULTS = {lang: text.replace("**", "") for lang, text in TEXTS.items()}


def body(text: str, with_: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook's JSON: a message with one Adaptive Card (1.4, what Teams renders)."""
    lines = [line for line in text.splitlines() if line.strip()]
    blocks: list[dict[str, Any]] = [{"type": "TextBlock", "text": line, "wrap": True}
                                    for line in lines]
    if blocks:
        blocks[0].update(weight="Bolder", size="Medium")
    return {"type": "message",
            "attachments": [{"contentType": CARD, "contentUrl": None,
                             "content": {"$schema": SCHEMA, "type": "AdaptiveCard",
                                         "version": "1.4", "body": blocks}}]}


ACTION = ChatAction(FLAVOUR, body, DEFAULTS)
