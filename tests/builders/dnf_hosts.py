"""An AlmaLinux 8.5 host with the pending security updates dnf lists for it: the real
``dnf updateinfo`` output of tests/fixtures/dnf/ (polkit's CVE-2021-4034, "pwnkit",
among them), read by the dnf source's own parsers.  The producer and host-update tests
build on it."""

from __future__ import annotations

from pathlib import Path

from patchpilot.inventory.model import Collector, Inventory, OsInfo
from patchpilot.inventory.sources.dnf_updateinfo import (
    parse_updateinfo_list,
    pending_dnf_updates,
)
from patchpilot.models import Ecosystem, Package

DNF = Path(__file__).resolve().parents[1] / "fixtures" / "dnf"
ALMA8 = Ecosystem("AlmaLinux:8")
FIREFOX = Package(ALMA8, "firefox", "91.6.0-1.el8_5.alma", arch="x86_64",
                  source_name="firefox", source_version="91.6.0-1.el8_5.alma")
POLKIT = Package(ALMA8, "polkit", "0.115-12.el8", arch="x86_64", source_name="polkit",
                 source_version="0.115-12.el8")
POLKIT_LIBS = Package(ALMA8, "polkit-libs", "0.115-12.el8", arch="x86_64",
                      source_name="polkit", source_version="0.115-12.el8")


def alma_host(*packages: Package, reboot_required: bool | None = None) -> Inventory:
    """The host's inventory (collector ``local``) with ``packages`` installed and the
    pending updates dnf lists that concern them."""
    pending = pending_dnf_updates(
        parse_updateinfo_list((DNF / "almalinux8_security.txt").read_text(), "list"),
        parse_updateinfo_list((DNF / "almalinux8_security_with_cve.txt").read_text(), "cves"),
        list(packages))
    return Inventory.from_packages(
        list(packages), os=OsInfo(id="almalinux", version_id="8.5",
                                  reboot_required=reboot_required),
        pending_updates=pending, collector=Collector(name="local"))
