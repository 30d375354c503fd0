"""HTTP for the actions that call out (webhooks, chat, tickets, AWX): one place that
checks the target against SSRF, sends without following redirects, and turns every
failure into a :class:`DeliveryError` that names the host -- never the URL, whose path or
query may carry a token.

The host name is resolved once, every address it resolves to is checked, and the request
is sent to a checked address itself: the URL's host is replaced by that IP, the ``Host``
header keeps the name, and for https the TLS server name (SNI) and the certificate check
use the name too (httpcore's ``sni_hostname`` extension).  Resolving twice -- once to
check, once (inside httpx) to connect -- would let a name with a short TTL answer a public
address to the check and an internal one to the connection (DNS rebinding).

``request`` answers the :class:`httpx.Response` for any status: the caller decides what
a 404 or 409 means for its API.  A 429 or a 503 with ``Retry-After`` is a DeliveryError
(retried with the outbox's backoff), as is any connection failure.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from typing import Any

import httpx

from patchpilot.automation.actions import DeliveryError, DeliverySettings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def internal(address: Address) -> bool:
    """Whether an address is one a playbook may not make the server reach by default."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (address.is_loopback or address.is_private or address.is_link_local
            or address.is_multicast or address.is_reserved or address.is_unspecified)


def _parse(url: str, what: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise DeliveryError(f"{what}: not a usable URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise DeliveryError(f"{what}: not an http(s) URL with a host")
    return parsed


def check_target(url: str, settings: DeliverySettings, *, what: str = "webhook"
                 ) -> list[Address]:
    """Resolve ``url``'s host once and check every address it resolves to; the addresses
    (in the resolver's order, each once) -- DeliveryError when any is refused (SSRF)."""
    parsed = _parse(url, what)
    host = parsed.raw_host.decode("ascii")  # IDNA: what the resolver is asked
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DeliveryError(f"{what}: {host}: cannot resolve: {exc}") from exc
    addresses: list[Address] = []
    for info in infos:
        # (A scoped IPv6 address carries its zone after "%".)
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if internal(address) and not any(address in n for n in settings.allow_networks):
            raise DeliveryError(
                f"{what}: {host} resolves to {address}, an internal address; refused "
                f"(allow its range with PATCHPILOT_WEBHOOK_ALLOW_NETWORKS)")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise DeliveryError(f"{what}: {host}: cannot resolve: no address")
    return addresses


def request(method: str, url: str, settings: DeliverySettings, *, what: str,
            verify: ssl.SSLContext | bool = True, **kwargs: Any) -> httpx.Response:
    """Check the target, then send to the address checked (``kwargs`` as for
    :meth:`httpx.Client.request`; ``verify`` the TLS trust, for a test's own CA).

    The checked addresses are tried in the resolver's order; only a failure to connect
    moves on to the next (nothing was sent), any other failure is the DeliveryError.
    """
    addresses = check_target(url, settings, what=what)
    parsed = _parse(url, what)
    host = parsed.raw_host.decode("ascii")
    headers = httpx.Headers(kwargs.pop("headers", None))
    # The name (and a port that is not the scheme's) as the server expects it, not the IP.
    headers["Host"] = parsed.netloc.decode("ascii")
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    # trust_env stays on: an outbound proxy of the environment is the admin's choice; it
    # is then handed the checked IP, not the name to resolve again.
    with httpx.Client(timeout=settings.timeout, follow_redirects=False,
                      verify=verify) as client:
        answer = _send(client, method, parsed, addresses, what, host,
                       headers=headers, extensions=extensions, **kwargs)
    if answer.status_code == 429 or (answer.status_code == 503
                                     and "retry-after" in answer.headers):
        wait = answer.headers.get("retry-after")
        raise DeliveryError(f"{what}: {host} is limiting requests ({answer.status_code}"
                            + (f", retry after {wait}" if wait else "") + ")")
    return answer


def _send(client: httpx.Client, method: str, parsed: httpx.URL, addresses: list[Address],
          what: str, host: str, **kwargs: Any) -> httpx.Response:
    """Send to the first checked address that takes the connection."""
    for n, address in enumerate(addresses, 1):
        try:
            return client.request(method, parsed.copy_with(host=str(address)), **kwargs)
        except httpx.ConnectError as exc:
            if n < len(addresses):
                continue  # nothing was sent: the next address
            raise DeliveryError(f"{what}: {host}: {exc.__class__.__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{what}: {host}: {exc.__class__.__name__}: {exc}") from exc
    raise DeliveryError(f"{what}: {host}: cannot resolve: no address")  # (never empty)
