"""``show version`` and its equivalents read with ntc-templates (issue 17, discovery §3).

Every file of ../shared/data/network/show-version (``<platform>_<command>_<name>.raw``
with the ``.yml`` records ntc-templates' own tests expect) is parsed and must give
exactly those records; the platform and command are told from the file name by the
template index of the installed ntc-templates.  The devices of the platforms with a CPE
name come out identified, with exact vendor/model/OS/firmware; the others unidentified
with what was seen.
"""

from __future__ import annotations

import re
from pathlib import Path

import ntc_templates
import pytest
import yaml

from patchpilot.inventory.network.platforms import VERSION_COMMANDS, version_command
from patchpilot.inventory.network.show_version import (
    SOURCE,
    ShowVersionError,
    device_info,
    first_lines,
    parse_records,
    show_version_inventory,
)
from patchpilot.knowledge.cpe_names import CPE
from tests.conftest import SHARED_DATA

FOLDER = "network/show-version"


def _index() -> list[tuple[str, str]]:
    """(template stem, platform regex) of every row of ntc-templates' index."""
    rows: list[tuple[str, str]] = []
    text = (Path(ntc_templates.__file__).parent / "templates" / "index").read_text()
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("Template,"):
            continue
        template, _hostname, platform, _command = (c.strip() for c in line.split(",", 3))
        rows += [(name.removesuffix(".textfsm"), platform) for name in template.split(":")]
    return rows


INDEX = _index()


def platform_and_command(stem: str) -> tuple[str, str]:
    """(platform, command) of a ``<platform>_<command>_<name>`` file: the longest template
    named at its start; the platform is what the index's platform pattern matches."""
    template, pattern = max(((t, p) for t, p in INDEX if stem.startswith(t + "_")),
                            key=lambda row: len(row[0]))
    found = re.match(pattern + "_", template)
    assert found is not None, (template, pattern)
    platform = found.group(0)[:-1]
    return platform, template[len(platform) + 1:].replace("_", " ")


def _raw_files() -> list[Path]:
    return sorted((SHARED_DATA / FOLDER).glob("*.raw"))


def test_the_shared_folder_holds_the_outputs(shared_data: Path) -> None:
    raws = sorted((shared_data / FOLDER).glob("*.raw"))
    assert len(raws) == 92
    assert all(r.with_suffix(".yml").is_file() for r in raws)


@pytest.mark.parametrize("raw", _raw_files(), ids=lambda p: p.stem)
def test_every_output_parses_to_the_expected_records(raw: Path) -> None:
    platform, command = platform_and_command(raw.stem)
    expected = yaml.safe_load(raw.with_suffix(".yml").read_text())["parsed_sample"]
    assert parse_records(platform, command, raw.read_text()) == expected


def test_file_names_are_told_apart_by_the_longest_template() -> None:
    assert platform_and_command("cisco_xr_show_version_brief_cisco_xr_show_version_brief") \
        == ("cisco_xr", "show version brief")
    assert platform_and_command("hp_procurve_show_system_hp_procurve_show_system2") \
        == ("hp_procurve", "show system")
    assert platform_and_command("fortinet_get_system_status_fortinet_get_system_status") \
        == ("fortinet", "get system status")


def _read(shared_data: Path, stem: str) -> str:
    return (shared_data / FOLDER / f"{stem}.raw").read_text()


# file stem -> (vendor, model, os_name, firmware, serial, CPE name)
IDENTIFIED = {
    "cisco_ios_show_version_cisco_ios_show_version": (
        "Cisco", "WS-C4948E", "IOS", "12.2(54)SG1", "CAT1451S15C", "cisco:ios"),
    "cisco_ios_show_version_cisco_ios_show_version_01": (
        "Cisco", "1801", "IOS", "12.4(6)T2", "FHK102KKKKK", "cisco:ios"),
    "cisco_ios_show_version_cisco_ios_show_version4": (
        "Cisco", "C9500-40X", "IOS-XE", "16.9.3", "FCW2233FFG3", "cisco:ios_xe"),
    "cisco_ios_show_version_cisco_ios_show_version2": (
        "Cisco", "ASR1001", "IOS-XE", "15.3(2)S1", "SSI1289001MH", "cisco:ios_xe"),
    "fortinet_get_system_status_fortinet_get_system_status_7.0": (
        "Fortinet", "FortiGate-60F", "FortiOS", "7.0.7", "FGT60xxxxxxxxxxx",
        "fortinet:fortios"),
    "fortinet_get_system_status_fortinet_get_system_status_7.4": (
        "Fortinet", "FortiGate-60E-POE", "FortiOS", "7.4.1", "FG60EPTK19010019",
        "fortinet:fortios"),
    "fortinet_get_system_status_fortinet_get_system_status": (
        "Fortinet", "FortiGate-1500D", "FortiOS", "6.0.7", "FG1K501234567890",
        "fortinet:fortios"),
    "juniper_junos_show_version_juniper_junos_show_version": (
        "Juniper", "mx240", "JUNOS", "13.3R1.4", "qfsn-0123456789", "juniper:junos"),
    "juniper_junos_show_version_juniper_junos_show_version_qfx5100": (
        "Juniper", "qfx5100-48t-6q", "JUNOS", "21.4R3-S3.4", None, "juniper:junos"),
    "paloalto_panos_show_system_info_paloalto_panos_show_system_info": (
        "Palo Alto Networks", "PA-VM", "PAN-OS", "7.0.1", "unknown",
        "paloaltonetworks:pan-os"),
    "arista_eos_show_version_arista_eos_show_version": (
        "Arista", "vEOS", "EOS", "4.14.7M", None, "arista:eos"),
    "arista_eos_show_version_arista_eos_show_version3": (
        "Arista", "DCS-7010T-48-R", "EOS", "4.28.9M", "JPE18523609", "arista:eos"),
    "cisco_nxos_show_version_cisco_nxos_show_version5": (
        "Cisco", "C93180YC-FX3", "NX-OS", "10.4(5)", "FLM27400B3D", "cisco:nx-os"),
    "cisco_asa_show_version_cisco_asa_show_version3": (
        "Cisco", "ASA5516", "ASA", "9.9(2)32", "JAD222605K8",
        "cisco:adaptive_security_appliance_software"),
    "cisco_xr_show_version_cisco_xr_show_version_01": (
        "Cisco", "8202-32FH-M", "IOS XR", "7.9.2", None, "cisco:ios_xr"),
}


@pytest.mark.parametrize("stem", sorted(IDENTIFIED))
def test_identified_devices_are_exact(shared_data: Path, stem: str) -> None:
    vendor, model, os_name, firmware, serial, cpe = IDENTIFIED[stem]
    platform, command = platform_and_command(stem)
    assert version_command(platform) == command
    text = _read(shared_data, stem)
    inventory = show_version_inventory(platform, command, text)
    device = inventory.device
    assert device is not None
    assert (device.vendor, device.model, device.os_name, device.firmware, device.serial) \
        == (vendor, model, os_name, firmware, serial)
    assert device.identified is True
    assert device.platform == platform
    assert device.sources == [SOURCE] == ["ssh:show version"]
    assert device.seen == {command: first_lines(text)}
    assert [(p.ecosystem, p.name, p.version) for p in inventory.packages] \
        == [(CPE, cpe, firmware)]
    assert inventory.schema_ == 2
    assert inventory.complete is True
    assert inventory.warnings == []


def test_a_fortigate_inventory_names_its_host(shared_data: Path) -> None:
    stem = "fortinet_get_system_status_fortinet_get_system_status_7.0"
    inventory = show_version_inventory("fortinet", "get system status",
                                       _read(shared_data, stem))
    assert inventory.asset.hostname == "fw1"
    assert inventory.collector.name == "ssh"


def test_a_platform_with_a_profile_but_no_cpe_name_is_unidentified(shared_data: Path) -> None:
    stem = "aruba_aoscx_show_system_show_system3"
    text = _read(shared_data, stem)
    inventory = show_version_inventory("aruba_aoscx", "show system", text)
    device = inventory.device
    assert device is not None
    assert (device.vendor, device.model, device.os_name, device.firmware, device.serial) == (
        "Aruba", "JL664A 6300M 24G 4SFP56 Swch", "AOS-CX", "FL.10.10.1070", "xxxxxxxxxx")
    assert device.identified is False
    assert inventory.packages == []
    assert inventory.complete is False
    assert inventory.warnings == [
        "unidentified device: vendor=Aruba; model=JL664A 6300M 24G 4SFP56 Swch; os=AOS-CX; "
        "firmware=FL.10.10.1070; platform=aruba_aoscx; show system: "
        + text.strip().splitlines()[0].strip()]
    assert device.seen == {"show system": first_lines(text)}


def test_a_platform_without_a_profile_keeps_what_was_seen(shared_data: Path) -> None:
    stem = "alcatel_aos_show_system_alcatel_aos_show_system_1"
    text = _read(shared_data, stem)
    device = device_info("alcatel_aos", "show system", text)
    assert (device.vendor, device.model, device.os_name, device.firmware) == (None,) * 4
    assert device.platform == "alcatel_aos"
    assert device.seen == {"show system": first_lines(text)}
    assert "Alcatel-Lucent Enterprise OS6350-P24 6.7" in device.seen["show system"]
    inventory = show_version_inventory("alcatel_aos", "show system", text)
    assert inventory.device is not None and inventory.device.identified is False
    assert inventory.packages == []
    # The first line that says something, not the bare "System:" heading above it.
    assert inventory.warnings == [
        "unidentified device: platform=alcatel_aos; show system: Description:  "
        "Alcatel-Lucent Enterprise OS6350-P24 6.7.1.001.R01 GA, January 01, 2000.,"]


def test_first_lines_are_verbatim_and_bounded() -> None:
    text = "\n\nline 1  \r\nline 2\n" + "".join(f"more {i}\n" for i in range(30))
    assert first_lines(text) == "line 1\nline 2\n" + "\n".join(f"more {i}" for i in range(10))


def test_an_output_the_template_refuses_is_a_clear_error() -> None:
    with pytest.raises(ShowVersionError, match=r"no_such_platform: show version"):
        parse_records("no_such_platform", "show version", "whatever")


def test_every_version_command_has_a_template() -> None:
    templates = {t for t, _ in INDEX}
    for platform, command in VERSION_COMMANDS.items():
        stem = f"{platform}_{command.replace(' ', '_')}"
        assert stem in templates or any(
            t.endswith("_" + command.replace(" ", "_")) and re.fullmatch(p, platform)
            for t, p in INDEX), (platform, command)
        parse_records(platform, command, "")  # a template is found: no error
