"""Devices for CPE matching tests: the shared NVD / CVE 5 / KEV records that speak about
FortiOS, PAN-OS and Junos, and a declared device's schema-2 inventory."""

from __future__ import annotations

from patchpilot.inventory.model import (
    AssetIdentity,
    Collector,
    DeviceInfo,
    Inventory,
    PackageEntry,
)

# feed_dir() layout -> file under ../shared/data.
FEEDS = {
    "nvd/cve-2024-23113.json": "nvd/nvd-api2-dependencytrack/cve-2024-23113.json",
    **{f"cve5/{cve}.json": f"nvd/cve5-critical-cvelist/{cve}.json" for cve in (
        "CVE-2024-21762", "CVE-2022-42475", "CVE-2022-40684", "CVE-2018-13382",
        "CVE-2020-12812", "CVE-2024-3400", "CVE-2024-0012", "CVE-2023-36845")},
    "kev/known_exploited_vulnerabilities.json": "kev/known_exploited_vulnerabilities.json",
}

FORTIOS = ("Fortinet", "FortiOS", "fortinet:fortios")
PANOS = ("Palo Alto Networks", "PAN-OS", "paloaltonetworks:pan-os")
JUNOS = ("Juniper Networks", "Junos OS", "juniper:junos")


def device(vendor: str, os_name: str, name: str, firmware: str,
           host: str = "fw-01") -> Inventory:
    """A declared device's inventory as the issue 17 contract makes it: the device part
    and its one CPE package at the firmware version."""
    return Inventory.model_validate({
        "schema": 2, "asset": AssetIdentity(hostname=host, machine_id=host),
        "collector": Collector(name="declared"),
        "device": DeviceInfo(vendor=vendor, os_name=os_name, firmware=firmware,
                             identified=True, sources=["declared"]),
        "packages": [PackageEntry(ecosystem="CPE", name=name, version=firmware)]})
