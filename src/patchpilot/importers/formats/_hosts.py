"""What the host scanners' readers share: a :class:`Target` from the names a report gives
a host, ports and numbers as reports write them, and a second pass over a stream (Qualys
and Nexpose put the check definitions after the hosts that cite them).

Not a format (the leading underscore keeps it out of the registry's completeness test).
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import tempfile
from typing import IO

from patchpilot.importers.model import Target, text_or_none

# A report larger than this is spooled to disk, not memory, when it must be read twice.
_SPOOL_BYTES = 32 << 20


def is_ip(text: str | None) -> bool:
    """True when ``text`` is an IPv4 or IPv6 address."""
    if not text:
        return False
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True


def host_target(*, ip: str | None = None, name: str | None = None, fqdn: str | None = None,
                netbios: str | None = None, os: str | None = None,
                mac: str | None = None) -> Target:
    """The Target of a host as a report names it.

    ``name`` is whatever the report calls the host (an address, a short name or a DNS
    name); an FQDN is split as the CMDB import does (``web1.example.com`` -> hostname
    ``web1``, fqdn the whole), a NetBIOS ``DOMAIN\\HOST`` gives ``host``.  Names are
    lower-cased: DNS and NetBIOS names are case-insensitive.
    """
    ip, name, fqdn = text_or_none(ip), text_or_none(name), text_or_none(fqdn)
    hostname: str | None = None
    if name and is_ip(name):
        ip = ip or name
    elif name and "." in name:
        fqdn = fqdn or name
    elif name:
        hostname = name
    if fqdn and (is_ip(fqdn) or "." not in fqdn):
        hostname, fqdn = hostname or (None if is_ip(fqdn) else fqdn), None
    netbios = text_or_none(netbios)
    if not hostname and netbios:
        hostname = netbios.rsplit("\\", 1)[-1] or None
    if not hostname and fqdn:
        hostname = fqdn.split(".", 1)[0]
    return Target(hostname=hostname.lower() if hostname else None,
                  fqdn=fqdn.lower().rstrip(".") if fqdn else None,
                  ip=ip.split(",")[0].strip() if ip else None,
                  os=text_or_none(os), mac=text_or_none(mac))


def port_number(text: str | None) -> int | None:
    """A port as an int (``"443"``), None for ``general``, ``-`` and empty cells."""
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


_TAGS = re.compile(r"<[^>]+>")


def plain(text: str | None) -> str | None:
    """Report text with the HTML markup Qualys and Nexpose put in it (``<P>``, ``<BR>``)
    dropped and blank runs closed up."""
    if text is None:
        return None
    text = _TAGS.sub("\n", text).replace("&lt;", "<").replace("&gt;", ">") \
        .replace("&quot;", '"').replace("&amp;", "&")
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line.strip() or (out and out[-1]):
            out.append(line)
    return text_or_none("\n".join(out))


def rewindable(stream: IO[bytes]) -> IO[bytes]:
    """``stream`` itself when it can seek, else a spooled copy (for two passes)."""
    if stream.seekable():
        return stream
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
    shutil.copyfileobj(stream, spool)
    spool.seek(0)
    return spool  # type: ignore[return-value]
