"""The command that identifies a network device, per ntc-templates platform.

Kept apart from the parser (``show_version``): this table says what to *run* on a
platform; ntc-templates' TextFSM template for that (platform, command) says how to read
its output.  Each command is the one whose template gives the model, the software
version and the serial: ``show version`` on most platforms, ``get system status`` on
FortiOS, ``show system info`` on PAN-OS, ``show system`` where the vendor puts the
version there.  Names are ntc-templates' platform names (its ``templates/index``).
"""

from __future__ import annotations

VERSION_COMMANDS: dict[str, str] = {
    "alcatel_aos": "show system",
    "allied_telesis_awplus": "show system",
    "arista_eos": "show version",
    "aruba_aoscx": "show system",
    "aruba_os": "show version",
    "aruba_procurve": "show system",
    "broadcom_icos": "show version",
    "brocade_fastiron": "show version",
    "checkpoint_gaia": "show version all",
    "cisco_asa": "show version",
    "cisco_fxos": "show system firmware",
    "cisco_ios": "show version",
    "cisco_nvfis": "show version",
    "cisco_nxos": "show version",
    "cisco_s300": "show version",
    "cisco_xr": "show version",
    "dell_force10": "show version",
    "edgecore": "show version",
    "eltex": "show system",
    "ericsson_ipos": "show version",
    "fortinet": "get system status",
    "fsas_sir": "show system information",
    "hp_procurve": "show system",
    "huawei_vrp": "display version",
    "juniper_junos": "show version",
    "oneaccess_oneos": "show system status",
    "paloalto_panos": "show system info",
    "ruckus_fastiron": "show version",
    "ubiquiti_edgerouter": "show version",
    "ubiquiti_edgeswitch": "show version",
    "zte_zxros": "show version",
}
"""ntc-templates platform -> the command run over SSH to identify the device."""


def version_command(platform: str) -> str | None:
    """The identifying command of ``platform`` (an ntc-templates name), None if unknown."""
    return VERSION_COMMANDS.get(platform)
