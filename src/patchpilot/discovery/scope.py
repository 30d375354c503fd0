"""The discovery scope: the only address ranges network discovery may probe.

Polite by default: nmap and SNMP reach only targets inside ``PATCHPILOT_DISCOVERY_SCOPE``
(CIDR ranges).  A target is an address, a CIDR range or a host name; a name is resolved
first and every address it resolves to must be inside the scope (a name pointing outside
is refused, not partly scanned).  nmap's own range syntax (``10.0.0.1-20``, ``10.0.*.1``)
is refused: a range is written as CIDR, so what is checked is what is scanned.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from patchpilot.errors import InvalidInput

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[str]]

SCOPE_VARIABLE = "PATCHPILOT_DISCOVERY_SCOPE"


class OutOfScope(InvalidInput):
    """A discovery target outside the configured scope (or no scope configured)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One checked target: what the user wrote and the network it covers."""

    text: str  # as given: "10.0.0.0/24", "192.0.2.7", "fw1.example"
    network: Network  # the range it covers (a /32 or /128 for one address)

    @property
    def probe(self) -> str:
        """What is handed to nmap or SNMP: the address (a name's resolved address, so what
        was checked is what is probed) or the CIDR range."""
        net = self.network
        return str(net.network_address) if net.num_addresses == 1 else str(net)


def resolve(name: str) -> list[str]:
    """Every address ``name`` resolves to (A and AAAA), sorted; [] when it does not."""
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def _inside(network: Network, scope: Sequence[Network]) -> bool:
    return any(network.version == s.version and network.subnet_of(s)  # type: ignore[arg-type]
               for s in scope)


def check_targets(targets: Sequence[str], scope: Sequence[str], *,
                  resolver: Resolver = resolve) -> list[Target]:
    """The targets, each checked to lie inside ``scope`` (CIDR strings).

    Raises :class:`OutOfScope` naming every target outside it (or saying that no scope
    is configured), and InvalidInput for a target that is no address, CIDR range or
    resolvable name.
    """
    networks = [ipaddress.ip_network(s, strict=False) for s in scope]
    if not networks:
        raise OutOfScope(f"no discovery scope is configured: set {SCOPE_VARIABLE} to the "
                         "address ranges that may be probed (CIDR, e.g. 10.0.0.0/24)")
    checked: list[Target] = []
    outside: list[str] = []
    for raw in targets:
        text = raw.strip()
        if not text or text.startswith("-"):
            raise InvalidInput(f"target {raw!r}: not an address, CIDR range or host name")
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            addresses = resolver(text)
            if not addresses:
                raise InvalidInput(f"target {text!r}: not an address or CIDR range, and "
                                   "the name does not resolve (nmap ranges such as "
                                   "10.0.0.1-20 are written as CIDR)") from None
            resolved = [ipaddress.ip_network(a) for a in addresses]
            bad = [str(n.network_address) for n in resolved if not _inside(n, networks)]
            if bad:
                outside.append(f"{text} ({', '.join(bad)})")
            else:
                checked.extend(Target(text, n) for n in resolved)
            continue
        if _inside(network, networks):
            checked.append(Target(text, network))
        else:
            outside.append(text)
    if outside:
        raise OutOfScope(f"outside the discovery scope ({', '.join(scope)}): "
                         f"{', '.join(outside)}; only targets inside {SCOPE_VARIABLE} are "
                         "probed")
    return checked
