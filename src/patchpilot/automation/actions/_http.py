"""HTTP for the actions that call out (webhooks, chat, tickets, AWX): one place that
checks the target against SSRF, sends without following redirects, and turns every
failure into a :class:`DeliveryError` that names the host -- never the URL, whose path or
query may carry a token.

``request`` answers the :class:`httpx.Response` for any status: the caller decides what
a 404 or 409 means for its API.  A 429 or a 503 with ``Retry-After`` is a DeliveryError
(retried with the outbox's backoff), as is any connection failure.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx

from patchpilot.automation.actions import DeliveryError, DeliverySettings


def internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is one a playbook may not make the server reach by default."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (address.is_loopback or address.is_private or address.is_link_local
            or address.is_multicast or address.is_reserved or address.is_unspecified)


def check_target(url: str, settings: DeliverySettings, *, what: str = "webhook") -> None:
    """DeliveryError when ``url``'s host resolves to a refused address (SSRF)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DeliveryError(f"{what}: {host}: cannot resolve: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if internal(address) and not any(address in n for n in settings.allow_networks):
            raise DeliveryError(
                f"{what}: {host} resolves to {address}, an internal address; refused "
                f"(allow its range with PATCHPILOT_WEBHOOK_ALLOW_NETWORKS)")


def request(method: str, url: str, settings: DeliverySettings, *, what: str,
            **kwargs: Any) -> httpx.Response:
    """Check the target, then send (``kwargs`` as for :func:`httpx.request`)."""
    check_target(url, settings, what=what)
    host = urlsplit(url).hostname
    try:
        answer = httpx.request(method, url, timeout=settings.timeout,
                               follow_redirects=False, **kwargs)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: {host}: {exc.__class__.__name__}: {exc}") from exc
    if answer.status_code == 429 or (answer.status_code == 503
                                     and "retry-after" in answer.headers):
        wait = answer.headers.get("retry-after")
        raise DeliveryError(f"{what}: {host} is limiting requests ({answer.status_code}"
                            + (f", retry after {wait}" if wait else "") + ")")
    return answer
