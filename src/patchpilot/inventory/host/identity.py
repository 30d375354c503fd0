"""Who a host is: hostname, FQDN, machine id, addresses, cloud instance id (pure parsers).

Every input is a file's text or a command's output that ``inventory.collect`` fetched; no
resolver, no DNS and no cloud metadata service is asked (the FQDN comes from /etc/hosts,
the instance id from cloud-init's cache or the DMI asset tag), so collection sends no
network traffic of its own.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

# cloud-init writes this id when no datasource answered: not an instance id.
_NO_DATASOURCE = "iid-datasource-none"


def first_line(text: str | None) -> str | None:
    """The first line of a one-value file (/etc/machine-id, /proc/sys/kernel/hostname),
    stripped; None when the file is absent or blank."""
    if not text:
        return None
    stripped = text.strip()
    return stripped.splitlines()[0].strip() if stripped else None


def first_value(texts: Iterable[str | None]) -> str | None:
    """The first non-blank :func:`first_line` of several candidate files, in order."""
    for text in texts:
        value = first_line(text)
        if value:
            return value
    return None


def fqdn_from_hosts(hosts_text: str, hostname: str) -> str | None:
    """The FQDN /etc/hosts gives ``hostname``, or None (pure; no resolver, no DNS).

    A hosts line is ``address canonical_name [aliases…]``; the first dotted name on a line
    that names the host is its FQDN.
    """
    short = hostname.split(".", 1)[0]
    for raw in hosts_text.splitlines():
        names = raw.split("#", 1)[0].split()[1:]
        if hostname in names or short in names:
            for name in names:
                if "." in name and name.split(".", 1)[0] == short:
                    return name
    return hostname if "." in hostname else None


def parse_ip_addr(text: str) -> list[str]:
    """Non-loopback, non-link-local addresses from ``ip -o addr show`` output (pure)."""
    found: list[str] = []
    for line in text.splitlines():
        words = line.split()
        for key, value in zip(words, words[1:], strict=False):
            if key not in ("inet", "inet6"):
                continue
            try:
                address = ipaddress.ip_interface(value).ip
            except ValueError:
                continue
            if not (address.is_loopback or address.is_link_local):
                found.append(str(address))
    return list(dict.fromkeys(found))


def cloud_instance_id(instance_id_text: str | None, asset_tag_text: str | None) -> str | None:
    """cloud-init's cached instance id, else an EC2 id in the DMI board asset tag (Nitro).

    ``instance_id_text`` is /var/lib/cloud/data/instance-id, ``asset_tag_text``
    /sys/class/dmi/id/board_asset_tag; a tag that is not ``i-…`` is a vendor's asset
    number, not a cloud instance.
    """
    cached = first_line(instance_id_text)
    if cached and cached != _NO_DATASOURCE:
        return cached
    tag = first_line(asset_tag_text) or ""
    return tag if tag.startswith("i-") else None


def _global(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (address.is_loopback or address.is_link_local)


def parse_fib_trie(text: str) -> list[str]:
    """The host's own IPv4 addresses in /proc/net/fib_trie (pure): each ``|-- ADDRESS``
    followed by ``/32 host LOCAL``, once, loopback left out.

    Read as a file, so that the addresses come with the other small files in one batch
    and without iproute2 (missing from minimal images).
    """
    found: list[str] = []
    current: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|-- "):
            current = stripped[4:].strip()
        elif stripped == "/32 host LOCAL" and current:
            try:
                address = ipaddress.IPv4Address(current)
            except ValueError:
                continue
            if _global(address):
                found.append(str(address))
    return list(dict.fromkeys(found))


def parse_if_inet6(text: str) -> list[str]:
    """The host's IPv6 addresses in /proc/net/if_inet6 (pure): 32 hex digits first on
    each line; loopback and link-local left out."""
    found: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if not words or len(words[0]) != 32:
            continue
        try:
            address = ipaddress.IPv6Address(int(words[0], 16))
        except ValueError:
            continue
        if _global(address):
            found.append(str(address))
    return list(dict.fromkeys(found))
