"""``show version`` (and each platform's equivalent) -> a DeviceInfo, read with the
TextFSM templates of ntc-templates, never a parser written here.

ntc-templates (https://github.com/networktocode/ntc-templates) keeps one template per
(platform, command) and an index that picks it; :func:`parse_records` is that package's
``parse_output`` with its errors turned into ours.  What differs between platforms is only
which field of the template's record holds the model, the software version and the
serial: the ``_PROFILES`` table says so per platform, with the vendor and OS name the
platform implies.  A platform without a profile, or whose vendor/OS is not in the CPE
table, gives an *unidentified* device with the command's first lines as what was seen.

The command to run per platform is in :mod:`.platforms`, apart from this parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ntc_templates.parse import ParsingException, parse_output
from textfsm import TextFSMError

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import AssetIdentity, DeviceInfo, Inventory
from patchpilot.inventory.network.device import device_inventory

SOURCE = "ssh:show version"
"""How a device read this way was learnt (``DeviceInfo.sources``)."""

SEEN_LINES = 12
"""How many of the output's first lines are kept verbatim as what was seen."""


@dataclass(frozen=True, slots=True)
class _Profile:
    """Where a platform's template record says what identifies the device."""

    vendor: str
    os_name: str
    model: tuple[str, ...] = ()  # record fields, the first non-empty wins
    firmware: tuple[str, ...] = ()
    serial: tuple[str, ...] = ()


# Vendor and OS names as the CPE table (knowledge.cpe_names) spells them; the field names
# are those of each platform's ntc-templates template (its ``Value`` lines).
_PROFILES: dict[str, _Profile] = {
    "arista_eos": _Profile("Arista", "EOS", ("model",), ("image",), ("serial_number",)),
    "aruba_aoscx": _Profile("Aruba", "AOS-CX", ("product",), ("version",), ("serial",)),
    "checkpoint_gaia": _Profile("Check Point", "Gaia", (), ("version",)),
    "cisco_asa": _Profile("Cisco", "ASA", ("model", "hardware"), ("version",), ("serial",)),
    # IOS or IOS-XE: told apart by the banner (_cisco_ios_os).
    "cisco_ios": _Profile("Cisco", "IOS", ("hardware",), ("version",), ("serial",)),
    "cisco_nxos": _Profile("Cisco", "NX-OS", ("platform",), ("os",), ("serial",)),
    "cisco_xr": _Profile("Cisco", "IOS XR", ("model", "hardware"), ("version",)),
    "dell_force10": _Profile("Dell", "FTOS", (), ("os_version",)),
    # FortiOS: model and version share one field (_fortinet).
    "fortinet": _Profile("Fortinet", "FortiOS", (), (), ("serial_number",)),
    "juniper_junos": _Profile("Juniper", "JUNOS", ("model",), ("junos_version",),
                              ("serial_number",)),
    "paloalto_panos": _Profile("Palo Alto Networks", "PAN-OS", ("model",), ("os",),
                               ("serial",)),
    "ubiquiti_edgerouter": _Profile("Ubiquiti", "EdgeOS", ("hardware_model",), ("version",),
                                    ("serial_number",)),
    "ubiquiti_edgeswitch": _Profile("Ubiquiti", "EdgeSwitch", ("switch_model",),
                                    ("version",), ("serial",)),
}

# Cisco prints "Cisco IOS XE Software, Version 16.09.03" (or "IOS-XE Software" on older
# trains) first on IOS-XE; the cisco_ios template reads both trains alike and has no
# field naming the train, so the banner decides which CPE product the version belongs to.
_IOS_XE_BANNER = re.compile(r"\bIOS[ -]XE Software\b")
# get system status: "Version: FortiGate-60F v7.0.7,build0367,221005 (GA.F)" -- the
# template keeps the whole value; model and version are its first two words.
_FORTIGATE_VERSION = re.compile(r"^(?P<model>\S+) v(?P<firmware>\d[\w.]*),build")


class ShowVersionError(InventoryFormatError):
    """A platform/command without a template, or output its template refuses."""


def parse_records(platform: str, command: str, text: str) -> list[dict[str, Any]]:
    """The records ntc-templates' template for (``platform``, ``command``) reads from
    ``text`` (field names lowercase, list fields as lists), exactly as the package gives
    them.  Raises ShowVersionError when no template fits or the template refuses it."""
    try:
        return list(parse_output(platform=platform, command=command, data=text))
    except (ParsingException, TextFSMError) as exc:
        raise ShowVersionError(f"{platform}: {command}", str(exc)) from exc


def _first(record: dict[str, Any], fields: tuple[str, ...]) -> str | None:
    """The first non-empty of ``fields`` (a list field gives its first item)."""
    for field in fields:
        value = record.get(field)
        if isinstance(value, list):
            value = next((v for v in value if v), None)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def first_lines(text: str, count: int = SEEN_LINES) -> str:
    """The first ``count`` lines of ``text`` from its first non-blank one, verbatim."""
    lines = text.replace("\r\n", "\n").lstrip("\n").split("\n")
    return "\n".join(line.rstrip() for line in lines[:count]).rstrip()


def device_info(platform: str, command: str, text: str) -> DeviceInfo:
    """The DeviceInfo ``text`` (the output of ``command`` on ``platform``) describes.

    Vendor and OS come from the platform's profile, model/firmware/serial from the
    template's record; ``identified`` is left for :func:`device.device_inventory` to
    decide from the CPE table.  A platform without a profile gives only what was seen.
    """
    return _device(platform, command, text, parse_records(platform, command, text))


def _device(platform: str, command: str, text: str,
            records: list[dict[str, Any]]) -> DeviceInfo:
    """:func:`device_info` from records already parsed."""
    record = records[0] if records else {}
    seen = {command: first_lines(text)}
    profile = _PROFILES.get(platform)
    if profile is None:
        return DeviceInfo(platform=platform, sources=[SOURCE], seen=seen)
    os_name = profile.os_name
    model = _first(record, profile.model)
    firmware = _first(record, profile.firmware)
    if platform == "cisco_ios" and _IOS_XE_BANNER.search(text):
        os_name = "IOS-XE"
    if platform == "fortinet":
        found = _FORTIGATE_VERSION.match(_first(record, ("version",)) or "")
        if found:
            model, firmware = found["model"], found["firmware"]
    if model:
        model = model.split(",", 1)[0].strip()  # ASA: "ASA5516, 8192 MB RAM, CPU …"
    if firmware:
        firmware = firmware.split()[0]  # NX-OS: "10.4(5) [Maintenance Release]"
    return DeviceInfo(vendor=profile.vendor, model=model, platform=platform, os_name=os_name,
                      firmware=firmware, serial=_first(record, profile.serial),
                      sources=[SOURCE], seen=seen)


def show_version_inventory(platform: str, command: str, text: str, *,
                           collector: str = "ssh") -> Inventory:
    """The device's Inventory: identity from the record (its hostname), the DeviceInfo,
    its CPE package when identified, else a warning naming what was seen."""
    records = parse_records(platform, command, text)  # once, for the device and its name
    hostname = _first(records[0], ("hostname",)) if records else None
    return device_inventory(_device(platform, command, text, records),
                            asset=AssetIdentity(hostname=hostname), collector=collector)
