"""``webhook``: a JSON POST of the event, signed with HMAC-SHA256.

``with``: ``url`` (http or https), ``secret_env`` (the name of the environment variable
of the worker that holds the HMAC key -- a secret is never stored in a playbook, its
versions or the outbox; the receiver checks
``X-PatchPilot-Signature: sha256=<hex of HMAC-SHA256(secret, body)>``).  The body is the
queued payload (``playbook``, ``event``, ``finding``, ``asset``) as compact JSON with
sorted keys; ``X-PatchPilot-Event`` carries the event kind, ``X-PatchPilot-Delivery`` the
delivery's id (the same on every retry: a receiver keeps the ids it acted on and drops a
repeat) and ``X-PatchPilot-Attempt`` which try this is.

A target whose address is loopback, private, link-local, multicast, reserved or
unspecified is refused unless ``PATCHPILOT_WEBHOOK_ALLOW_NETWORKS`` holds it: a playbook
author must not make the server probe its own network (SSRF).  Every address the host
name resolves to is checked when delivering, not when the playbook is stored (DNS
changes).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from patchpilot.automation.actions import Delivery, DeliveryError, Outcome, Problem
from patchpilot.automation.actions._http import request
from patchpilot.config import named_variable

SIGNATURE_HEADER = "X-PatchPilot-Signature"
EVENT_HEADER = "X-PatchPilot-Event"
# The delivery's id (outbox row and step: the same on a retry, so a receiver drops a
# request it already acted on) and which attempt this is (1, 2, …).
DELIVERY_HEADER = "X-PatchPilot-Delivery"
ATTEMPT_HEADER = "X-PatchPilot-Attempt"


def signature(secret: str, body: bytes) -> str:
    """The signature header's value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookAction:
    """POST the event as signed JSON."""

    name = "webhook"

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """``url`` http(s) with a host; ``secret_env`` the name of an environment
        variable (a ``secret`` given in clear is refused: it would be stored)."""
        if "secret" in with_:
            return "secret", ("a secret is never stored in a playbook: put it in an "
                              "environment variable of the workers and name it with "
                              "secret_env")
        unknown = sorted(set(with_) - {"url", "secret_env"})
        if unknown:
            return unknown[0], "unknown setting (settings: url, secret_env)"
        url = with_.get("url")
        if not isinstance(url, str):
            return "url", "required: the http(s) URL to POST to"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "url", f"{url!r} is not an http(s) URL with a host"
        name = with_.get("secret_env")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            return "secret_env", ("required: the name of the environment variable that "
                                  "holds the HMAC-SHA256 key the receiver checks")
        return None

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """The URL's scheme and host (its path may carry a token)."""
        parts = urlsplit(str(with_["url"]))
        return f"{parts.scheme}://{parts.netloc}"

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Check the target, sign, POST; a non-2xx answer is a DeliveryError."""
        url = str(with_["url"])
        secret = named_variable(str(with_["secret_env"]))
        if not secret:
            raise DeliveryError(f"webhook: environment variable {with_['secret_env']} (the "
                                "HMAC key) is not set in the worker's environment")
        body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
        event = payload.get("event") or {}
        headers = {"Content-Type": "application/json",
                   SIGNATURE_HEADER: signature(secret, body),
                   EVENT_HEADER: str(event.get("kind", "")),
                   DELIVERY_HEADER: delivery.id, ATTEMPT_HEADER: str(delivery.attempt)}
        # No redirects: a 3xx could point anywhere, past the SSRF check.
        answer = request("POST", url, delivery.settings, what="webhook", content=body,
                         headers=headers)
        if not 200 <= answer.status_code < 300:
            raise DeliveryError(f"webhook: {urlsplit(url).hostname} answered "
                                f"{answer.status_code}")
        return Outcome({"status": answer.status_code})


ACTION = WebhookAction()
