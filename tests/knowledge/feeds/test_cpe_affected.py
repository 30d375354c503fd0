"""CPE-named affected products from real NVD configurations and CVE 5 records."""

from __future__ import annotations

from pathlib import Path

from patchpilot.knowledge.feeds import cve5, nvd
from patchpilot.knowledge.feeds._cpe import split_cpe
from patchpilot.knowledge.versions import is_affected
from patchpilot.models import AffectedPackage, AffectedRange
from tests.conftest import SHARED_DATA

NVD = SHARED_DATA / "nvd"


def affected(feed, path: Path) -> tuple[AffectedPackage, ...]:  # type: ignore[no-untyped-def]
    [record] = list(feed.read(path))
    return record.affected


def test_and_configuration_takes_the_vulnerable_firmware_only() -> None:
    # "nio aspen (o, vulnerable) AND nio ec6 (h, not vulnerable)": the firmware is judged
    # on its own CPE; the hardware platform is not a package.
    assert affected(nvd.FEED, NVD / "nvd-api2-osvdev/nvdcve-2.0__CVE-2023-24256.json") == (
        AffectedPackage("CPE", "nio:aspen", ranges=(AffectedRange(fixed="3.3.0"),)),)


def test_exact_versions_deduplicated() -> None:
    path = NVD / "nvd-api2-dependencytrack/CVE-2021-0002-duplicate-exact-version-matches.json"
    assert affected(nvd.FEED, path) == (
        AffectedPackage("CPE", "fedoraproject:fedora", versions=("33", "34", "35")),
        AffectedPackage("CPE", "intel:ethernet_controller_e810_firmware",
                        ranges=(AffectedRange(fixed="1.4.11"),)),
    )


def test_start_excluding_and_not_applicable() -> None:
    # versionStartExcluding 2.3.0 -> introduced excluded; "linux_kernel:-" says nothing.
    [kernel] = affected(nvd.FEED, NVD / "nvd-api2-dependencytrack/cve-vuln.json")
    assert kernel == AffectedPackage("CPE", "linux:linux_kernel", ranges=(
        AffectedRange(introduced="2.2.0", last_affected="2.2.13"),
        AffectedRange(introduced="2.3.0", fixed="2.3.18", introduced_excluded=True)))
    judged = {v: is_affected("CPE", v, kernel.ranges) for v in (
        "2.1.9", "2.2.0", "2.2.13", "2.2.14", "2.3.0", "2.3.1", "2.3.17", "2.3.18")}
    assert judged == {"2.1.9": False, "2.2.0": True, "2.2.13": True, "2.2.14": False,
                      "2.3.0": False, "2.3.1": True, "2.3.17": True, "2.3.18": False}


def test_cve5_cna_completed_by_adp_fix() -> None:
    # Fortinet: "7.2.0 lessThanOrEqual 7.2.6"; CISA-ADP: "7.2.0 lessThan 7.2.7".  6.2 and
    # 6.0 stay "up to" ranges: CISA's 6.0.0 entry ends at 6.2.16, past the CNA's 6.2.0 start.
    fortios, fortiproxy = (
        affected(cve5.FEED, NVD / "cve5-critical-cvelist/CVE-2024-21762.json"))
    assert fortios == AffectedPackage("CPE", "fortinet:fortios", ranges=(
        AffectedRange("7.4.0", "7.4.3"), AffectedRange("7.2.0", "7.2.7"),
        AffectedRange("7.0.0", "7.0.14"), AffectedRange("6.4.0", "6.4.15"),
        AffectedRange("6.2.0", last_affected="6.2.15"),
        AffectedRange("6.0.0", last_affected="6.0.17")))
    assert fortiproxy.name == "fortinet:fortiproxy"
    assert fortiproxy.ranges[0] == AffectedRange("7.4.0", "7.4.3")


def test_cve5_free_text_products_give_no_rows() -> None:
    # "Fortinet FortiOS, FortiProxy, FortiSwitchManager" / "FortiOS 7.2.1, 7.2.0, ...":
    # no exact product name, so nothing is guessed.
    assert affected(cve5.FEED, NVD / "cve5-critical-cvelist/CVE-2022-40684.json") == ()
    assert affected(cve5.FEED, NVD / "cve5-critical-cvelist/CVE-2020-12812.json") == ()


def test_cve5_unreadable_bounds_dropped() -> None:
    # Juniper: "21.1 lessThan 21.1*", "22.3 lessThan '22.3R2-S2, 22.3R3-S1'", "23,2".
    [junos] = affected(cve5.FEED, NVD / "cve5-critical-cvelist/CVE-2023-36845.json")
    assert junos.name == "juniper:junos"
    assert [(r.introduced, r.fixed) for r in junos.ranges] == [
        (None, "20.4R3-S9"), ("21.2", "21.2R3-S7"), ("21.3", "21.3R3-S5"),
        ("21.4", "21.4R3-S5"), ("22.1", "22.1R3-S4"), ("22.2", "22.2R3-S2")]


def test_split_cpe() -> None:
    assert split_cpe(r"cpe:2.3:o:cisco:ios:15.2\(4\)m7:*:*:*:*:*:*:*") == (
        "o", "cisco", "ios", "15.2(4)m7")
    assert split_cpe("cpe:2.3:o:paloaltonetworks:pan-os:11.1.4:h4:*:*:*:*:*:*") == (
        "o", "paloaltonetworks", "pan-os", "11.1.4-h4")
    assert split_cpe("cpe:2.3:o:paloaltonetworks:pan-os:11.1.4:-:*:*:*:*:*:*") == (
        "o", "paloaltonetworks", "pan-os", "11.1.4")
    assert split_cpe("cpe:/o:fortinet:fortios:7.2.4") == ("o", "fortinet", "fortios", "7.2.4")
    assert split_cpe("fortios 7.2.4") is None
