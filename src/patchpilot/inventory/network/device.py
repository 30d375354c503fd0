"""A device's identity -> the inventory it stands for: its CPE package when the
vendor/product is in ``knowledge.cpe_names``' table, else *unidentified* with what was
seen (a warning saying so), never dropped and never matched to a similar name.

Every source of device facts ends here -- ``show version`` over SSH, a device declared by
hand or by the CMDB import -- so they all identify the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from patchpilot.inventory.model import (
    AssetIdentity,
    Collector,
    DeviceInfo,
    Inventory,
    PackageEntry,
)
from patchpilot.knowledge.cpe_names import CPE, identify

_HEADING = re.compile(r"^[\w .-]+:$")


def cpe_product(device: DeviceInfo) -> str | None:
    """The CPE ``vendor:product`` of the device: its OS name (FortiOS, JUNOS) looked up
    first, then its model (a product whose firmware has no name of its own, as JVN names
    NEC's Aterm routers); None when neither is in the table exactly."""
    for product in (device.os_name, device.model):
        found = identify(device.vendor, product)
        if found is not None:
            return found
    return None


def seen_summary(device: DeviceInfo) -> str:
    """What was seen of a device, on one line (for the "unidentified device" warning)."""
    said = [f"{k}={v}" for k, v in (("vendor", device.vendor), ("model", device.model),
                                    ("os", device.os_name), ("firmware", device.firmware),
                                    ("platform", device.platform)) if v]
    known = {device.vendor, device.model, device.os_name, device.firmware}
    for field, text in device.seen.items():
        # The first line that says something: not blank, not a bare heading ("System:").
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        first = next((line for line in lines if not _HEADING.match(line)),
                     lines[0] if lines else "")
        if first and first not in known:  # a declared field is not said twice
            said.append(f"{field}: {first}")
    return "; ".join(said) or "nothing"


def device_inventory(device: DeviceInfo, *, asset: AssetIdentity, collector: str,
                     warnings: Sequence[str] = ()) -> Inventory:
    """The Inventory (schema 2) of ``device``: ``identified`` set from the CPE table, the
    CPE package at the firmware the device reports when both are known.

    An unidentified device (or one whose firmware was not read) has no package: its
    inventory is then stored as incomplete by ingest, so it never closes findings.
    """
    product = cpe_product(device)
    notes = list(warnings)
    packages: list[PackageEntry] = []
    if product is None:
        notes.append(f"unidentified device: {seen_summary(device)}")
    elif not device.firmware:
        notes.append(f"{product}: the firmware version was not read; nothing can be "
                     "matched until it is")
    else:
        packages.append(PackageEntry(ecosystem=CPE, name=product, version=device.firmware))
    return Inventory(schema=2, asset=asset, device=device.model_copy(
        update={"identified": product is not None}), packages=packages,
        collector=Collector(name=collector), complete=bool(packages), warnings=notes)
