"""Issue 17 "Done when", end to end on both databases: a FortiGate whose real ``get system
status`` output (read with ntc-templates) or whose declaration says FortiOS X shows the
FortiOS CVEs of the shared NVD / CVE 5 records with their KEV flags; an unknown device
gives no finding and stays unidentified.  Knowledge from ../shared/data (FEEDS of
tests/builders/devices.py); matching by the real matcher (``findings.scan``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from patchpilot.findings.scan import scan_inventory
from patchpilot.inventory.model import Inventory
from patchpilot.inventory.network.declared import declared_device, declared_inventory
from patchpilot.inventory.network.show_version import show_version_inventory
from patchpilot.knowledge.update import update_from
from tests.builders.devices import FEEDS

pytestmark = pytest.mark.db

FORTI_7_0_7 = "network/show-version/fortinet_get_system_status_fortinet_get_system_status_7.0.raw"


@pytest.fixture
def loaded(engine: Engine, feed_dir) -> Engine:  # type: ignore[no-untyped-def]
    results = update_from(engine, [feed_dir(FEEDS)])
    assert [r.status for r in results] == ["loaded"] * len(results)
    return engine


def _found(engine: Engine, inv: Inventory) -> dict[str, tuple[str | None, bool]]:
    return {f.vuln_id: (f.fix.fixed_version, f.exploit.known_exploited)
            for f in scan_inventory(engine, inv).findings}


def test_a_fortigate_read_over_ssh_shows_its_kev_cves(loaded: Engine,
                                                      shared_data: Path) -> None:
    inventory = show_version_inventory("fortinet", "get system status",
                                       (shared_data / FORTI_7_0_7).read_text())
    assert [(p.name, p.version) for p in inventory.packages] == [("fortinet:fortios", "7.0.7")]
    # CVE-2024-23113: NVD fortios 7.0.0-7.0.13 including; CVE-2024-21762: CVE 5
    # 7.0.0 < 7.0.14; CVE-2022-42475: CVE 5 7.0.0 <= 7.0.8 (no fixed version said) -- all
    # three in KEV.
    assert _found(loaded, inventory) == {"CVE-2024-23113": (None, True),
                                         "CVE-2024-21762": ("7.0.14", True),
                                         "CVE-2022-42475": (None, True)}


def test_a_declared_fortigate_7_2_4_shows_its_kev_cves(loaded: Engine) -> None:
    inventory = declared_inventory(declared_device(
        "fw1", "Fortinet", "FortiGate-60F", "7.2.4", "FortiOS"))
    assert _found(loaded, inventory) == {"CVE-2024-23113": (None, True),
                                         "CVE-2024-21762": ("7.2.7", True)}


def test_an_unknown_device_is_unidentified_without_findings(loaded: Engine) -> None:
    inventory = declared_inventory(declared_device("nas9", "Buffalo", "LS220D", "1.70"))
    assert inventory.device is not None and inventory.device.identified is False
    assert _found(loaded, inventory) == {}
