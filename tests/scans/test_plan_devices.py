"""The plan's device work: firmware items ("FortiOS 7.2.4 → 7.2.7 fixes 1 CVE on 2
firewalls"), never a package manager, from the shared NVD / CVE 5 / KEV records."""

from __future__ import annotations

from sqlalchemy import Engine

from patchpilot import worker
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.knowledge.update import update_from
from patchpilot.queue import Job
from patchpilot.scans import plan_store
from patchpilot.scans.plan import FIRMWARE, build_plan, manager_of
from tests.builders.devices import FEEDS, FORTIOS, PANOS, device


def scan(engine: Engine, product: tuple[str, str, str], firmware: str, host: str) -> int:
    """Ingest a declared device's inventory and run its match job; its asset id."""
    result = ingest_inventory(engine, device(*product, firmware, host=host))
    job = Job(0, "match", {"inventory_id": result.inventory_id}, 1, None, None, None, None)
    return int(worker.HANDLERS["match"](engine, job)["asset_id"])


def test_manager() -> None:
    assert manager_of("CPE") == FIRMWARE == "firmware"


def test_firmware_items(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    scan(engine, FORTIOS, "7.2.4", "fw-osaka")
    scan(engine, FORTIOS, "7.2.5", "fw-tokyo")
    scan(engine, PANOS, "10.2.9", "pa-edge-1")
    scan(engine, PANOS, "10.2.9", "pa-edge-2")
    with engine.connect() as conn:
        plan = build_plan(conn)
    items = sorted((i.summary, i.manager, i.command, i.reboot, i.vulns) for i in plan.items)
    # PAN-OS 10.2.9: CVE-2024-3400 (< 10.2.9-h1) and CVE-2024-0012 (< 10.2.12-h2) -- one
    # upgrade to the higher fix removes both.  FortiOS: CVE-2024-21762 fixed in 7.2.7;
    # CVE-2024-23113 ("through 7.2.6", no fixed version) is listed apart.
    assert items == [
        ("FortiOS 7.2.4–7.2.5 → 7.2.7 fixes 1 CVE on 2 firewalls", FIRMWARE,
         "upgrade the firmware to FortiOS 7.2.7 or later", True, ["CVE-2024-21762"]),
        ("PAN-OS 10.2.9 → 10.2.12-h2 fixes 2 CVEs on 2 firewalls", FIRMWARE,
         "upgrade the firmware to PAN-OS 10.2.12-h2 or later", True,
         ["CVE-2024-0012", "CVE-2024-3400"])]
    assert all("apt" not in (i.command or "") and "dnf" not in (i.command or "")
               for i in plan.items)
    assert [(u.package, u.vulns, u.hosts) for u in plan.unfixed] == [
        ("fortinet:fortios", ("CVE-2024-23113",), ("fw-osaka", "fw-tokyo"))]
    fortigate = next(i for i in plan.items if i.package == "fortinet:fortios")
    assert fortigate.known_exploited == 2
    assert [(h.name, h.installed_version) for h in fortigate.hosts] == [
        ("fw-osaka", "7.2.4"), ("fw-tokyo", "7.2.5")]

    # The stored plan (pages, API) says the same.
    state = plan_store.rebuild(engine)
    with engine.connect() as conn:
        page = plan_store.read_page(conn, state)
    assert sorted(i.summary for i in page.items) == [s for s, *_ in items]
