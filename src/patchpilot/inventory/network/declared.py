"""A device declared by a person (``patchpilot device add``, ``POST /api/devices``) or by
the CMDB import (columns vendor/model/firmware): nothing reaches it, so what the person
says is all there is.  It is identified through the same CPE table as any other source,
and what was declared is kept verbatim as what was seen.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from patchpilot.errors import InvalidInput
from patchpilot.inventory.model import AssetIdentity, DeviceInfo, Inventory
from patchpilot.inventory.network.device import device_inventory

DECLARED = "declared"
CMDB = "cmdb"
SOURCES = (DECLARED, CMDB)
"""How a declared device was learnt (``DeviceInfo.sources`` and the inventory's collector)."""


@dataclass(frozen=True, slots=True)
class DeclaredDevice:
    """What a person or the CMDB says of a device: its name (the asset's hostname), vendor,
    model, firmware version as the vendor writes it, OS name when it has one, address."""

    name: str
    vendor: str
    model: str | None = None
    firmware: str | None = None
    os_name: str | None = None
    ip: str | None = None
    fqdn: str | None = None

    def seen(self) -> dict[str, str]:
        """What was declared, verbatim, by field (only the fields given)."""
        return {k: v for k, v in (("vendor", self.vendor), ("model", self.model),
                                  ("os name", self.os_name), ("firmware", self.firmware))
                if v}


def _clean(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def declared_device(name: str, vendor: str, model: str | None = None,
                    firmware: str | None = None, os_name: str | None = None,
                    ip: str | None = None, fqdn: str | None = None) -> DeclaredDevice:
    """A DeclaredDevice with blanks trimmed; InvalidInput (naming the field) when the name
    or the vendor is missing -- without a vendor nothing can ever be identified."""
    clean_name, clean_vendor = _clean(name), _clean(vendor)
    if not clean_name:
        raise InvalidInput("name: a device needs a name (its hostname)", field="name")
    if not clean_vendor:
        raise InvalidInput("vendor: a device needs its vendor", field="vendor")
    address = _clean(ip)
    if address is not None:
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            raise InvalidInput(f"ip: {address!r} is not an IP address", field="ip") from None
    return DeclaredDevice(clean_name, clean_vendor, _clean(model), _clean(firmware),
                          _clean(os_name), address, _clean(fqdn))


def declared_inventory(device: DeclaredDevice, source: str = DECLARED) -> Inventory:
    """The Inventory of a declared device (collector ``source``): identified, with its CPE
    package at the declared firmware, when the vendor/OS or vendor/model is in the CPE
    table; else unidentified with what was declared (never dropped)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    info = DeviceInfo(vendor=device.vendor, model=device.model, os_name=device.os_name,
                      firmware=device.firmware, sources=[source], seen=device.seen())
    asset = AssetIdentity(hostname=device.name, fqdn=device.fqdn,
                          ip_addresses=[device.ip] if device.ip else [])
    return device_inventory(info, asset=asset, collector=source)
