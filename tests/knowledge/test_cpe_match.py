"""Devices matched by CPE on the shared NVD / CVE 5 / KEV records, SQLite and PostgreSQL.

What the records say (read from the JSON in ../shared/data/nvd):

* CVE-2024-23113 (NVD API 2.0, dependency-track): ``cpe:2.3:o:fortinet:fortios:*``
  7.0.0-7.0.13, 7.2.0-7.2.6, 7.4.0-7.4.2, all "Including": no fixed version;
* CVE-2024-21762 (CVE 5): Fortinet's CNA "7.2.0 lessThanOrEqual 7.2.6", CISA-ADP
  "7.2.0 lessThan 7.2.7" for the same first version -> 7.2.0 <= v < 7.2.7;
* CVE-2022-42475 (CVE 5): FortiOS 7.2.0 lessThanOrEqual 7.2.2 -> not 7.2.4;
* CVE-2022-40684, CVE-2018-13382, CVE-2020-12812 (CVE 5): the CNA names
  "Fortinet FortiOS, FortiProxy, ..." with free-text versions: no product we can name
  exactly, so no row (precision over recall);
* CVE-2024-3400 (CVE 5): PAN-OS 10.2.0 lessThan 10.2.9-h1, 11.0.0 < 11.0.4-h1,
  11.1.0 < 11.1.2-h3;
* CVE-2023-36845 (CVE 5, Juniper): Junos OS 21.4 lessThan 21.4R3-S5 (and other trains).

The KEV catalogue lists CVE-2024-23113, CVE-2024-21762, CVE-2022-42475, CVE-2024-3400,
CVE-2023-36845.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from patchpilot.findings.scan import scan_inventory
from patchpilot.inventory.model import Inventory
from patchpilot.knowledge.update import update_from
from tests.builders.devices import FEEDS, FORTIOS, JUNOS, PANOS, device


def fortigate(firmware: str) -> Inventory:
    return device(*FORTIOS, firmware)


@pytest.fixture
def loaded(engine: Engine, feed_dir) -> Engine:  # type: ignore[no-untyped-def]
    results = update_from(engine, [feed_dir(FEEDS)])
    assert [r.status for r in results] == ["loaded"] * len(results)
    return engine


def found(engine: Engine, inv: Inventory) -> dict[str, tuple[str | None, bool, str]]:
    """CVE -> (fixed firmware, known exploited, affected range) of a scan."""
    result = scan_inventory(engine, inv)
    return {f.vuln_id: (f.fix.fixed_version, f.exploit.known_exploited,
                        f.evidence.affected_range)
            for f in result.findings}


def test_fortigate_7_2_4(loaded: Engine) -> None:
    assert found(loaded, fortigate("7.2.4")) == {
        "CVE-2024-23113": (None, True, ">= 7.2.0, <= 7.2.6"),
        "CVE-2024-21762": ("7.2.7", True, ">= 7.2.0, < 7.2.7"),
    }
    finding = next(f for f in scan_inventory(loaded, fortigate("7.2.4")).findings
                   if f.vuln_id == "CVE-2024-21762")
    assert (finding.ecosystem, finding.package, finding.evidence.feed,
            finding.evidence.advisory_id) == ("CPE", "fortinet:fortios", "cve5",
                                              "CVE-2024-21762")
    # Firmware: the vendor's image, never a package manager's command.
    assert finding.fix.command == "upgrade the firmware to FortiOS 7.2.7 or later"


def test_stored_rows(loaded: Engine) -> None:
    with loaded.connect() as conn:
        rows = conn.execute(text(
            "SELECT advisory_id, feed, priority, ranges FROM affected WHERE ecosystem = 'CPE' "
            "AND name = 'fortinet:fortios' ORDER BY advisory_id")).all()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("CVE-2022-42475", "cve5", 5), ("CVE-2024-21762", "cve5", 5),
        ("CVE-2024-23113", "nvd", 4)]
    assert rows[2][3] == ('[["7.0.0",null,"7.0.13"],["7.2.0",null,"7.2.6"],'
                          '["7.4.0",null,"7.4.2"]]')


@pytest.mark.parametrize(("firmware", "expected"), [
    # 7.0.13: NVD's "EndIncluding" 7.0.13 still holds it; 42475's 7.0.0-7.0.8 does not.
    ("7.0.13", {"CVE-2024-23113": None, "CVE-2024-21762": "7.0.14"}),
    ("7.0.8", {"CVE-2024-23113": None, "CVE-2024-21762": "7.0.14", "CVE-2022-42475": None}),
    ("7.0.14", {}),  # past every end: "Including" 7.0.13, "Excluding" (fixed) 7.0.14
    ("7.2.0", {"CVE-2024-23113": None, "CVE-2024-21762": "7.2.7", "CVE-2022-42475": None}),
    ("7.2.6", {"CVE-2024-23113": None, "CVE-2024-21762": "7.2.7"}),
    ("7.2.7", {}),
    ("v7.2.2", {"CVE-2024-23113": None, "CVE-2024-21762": "7.2.7", "CVE-2022-42475": None}),
    ("7.4.3", {}),
    ("6.4.15", {}),
    ("6.4.14", {"CVE-2024-21762": "6.4.15"}),
])
def test_range_edges(loaded: Engine, firmware: str, expected: dict[str, str | None]) -> None:
    assert {v: fix for v, (fix, _, _) in found(loaded, fortigate(firmware)).items()} == expected


def test_pan_os_and_junos(loaded: Engine) -> None:
    assert found(loaded, device(*PANOS, "10.2.9")) == {
        "CVE-2024-3400": ("10.2.9-h1", True, ">= 10.2.0, < 10.2.9-h1"),
        "CVE-2024-0012": ("10.2.12-h2", True, ">= 10.2.0, < 10.2.12-h2")}
    assert found(loaded, device(*PANOS, "10.2.9-h1")) == {
        "CVE-2024-0012": ("10.2.12-h2", True, ">= 10.2.0, < 10.2.12-h2")}
    assert found(loaded, device(*JUNOS, "21.4R3-S4")) == {
        "CVE-2023-36845": ("21.4R3-S5", True, ">= 21.4, < 21.4R3-S5")}
    assert found(loaded, device(*JUNOS, "21.4R3-S5")) == {}


def test_unreadable_firmware_is_undetermined(loaded: Engine) -> None:
    result = scan_inventory(loaded, fortigate("7.2.4,build1396"))
    assert result.findings == ()
    [undetermined] = result.undetermined
    assert undetermined.package.name == "fortinet:fortios"
    assert undetermined.reason.startswith("CPE version '7.2.4,build1396' cannot be compared")
    assert undetermined.advisory_ids == ("CVE-2022-42475", "CVE-2024-21762",
                                         "CVE-2024-23113")


def test_other_train_is_undetermined(loaded: Engine) -> None:
    # A JunOS X train (21.4X53-D10) against ranges of the R train: letters differ at the
    # same place, so neither "affected" nor "not affected" is said.
    result = scan_inventory(loaded, device(*JUNOS, "21.4X53-D10"))
    assert result.findings == ()
    [undetermined] = result.undetermined
    assert "another firmware train" in undetermined.reason
    assert undetermined.advisory_ids == ("CVE-2023-36845",)


def test_reload(loaded: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    # Loading the same files again changes nothing; the CPE advisories are not doubled.
    update_from(loaded, [feed_dir(FEEDS)], force=True)
    with loaded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM advisories WHERE id = "
                                 "'CVE-2024-21762'")).scalar() == 1
