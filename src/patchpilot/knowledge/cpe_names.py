"""Vendor and product names -> CPE ``vendor:product``: the one normalisation table.

Devices and programs without a package manager are matched by CPE: an inventory lists
them as packages of the ``CPE`` ecosystem named ``<vendor>:<product>`` as the NVD CPE
dictionary spells them (``fortinet:fortios``, ``cisco:ios_xe``, ``juniper:junos``), at
the version the device reports.  Every source that names a product in its own words --
nmap's service and OS detection, SNMP ``sysDescr``/``sysObjectID``, ``show version``
(ntc-templates records), JVN's vendor and product lists, a person declaring a device --
goes through :func:`identify`.

**Precision over recall**: only names in the table are mapped; no fuzzy or partial
guessing.  A device whose vendor and product are not in the table is *unidentified*
(:func:`identify` returns None) and is listed with what was seen, never matched to a
similar name.
"""

from __future__ import annotations

import re

from patchpilot.models import Ecosystem

CPE = Ecosystem("CPE")
"""The ecosystem of CPE-named products (devices' firmware, programs without packages)."""

# (vendor as seen, product as seen), both normalised by _norm -> "vendor:product" of the
# NVD CPE dictionary.  Keep entries exact; add a row for each spelling a source uses.
_PRODUCTS: dict[tuple[str, str], str] = {
    ("fortinet", "fortios"): "fortinet:fortios",
    ("cisco", "ios"): "cisco:ios",
    ("cisco", "ios-xe"): "cisco:ios_xe",
    ("cisco", "nx-os"): "cisco:nx-os",
    ("cisco", "asa"): "cisco:adaptive_security_appliance_software",
    ("juniper", "junos"): "juniper:junos",
    ("palo alto networks", "pan-os"): "paloaltonetworks:pan-os",
    ("arista", "eos"): "arista:eos",
    # JVN iPedia (knowledge.feeds.jvn): the vendor and product names of its AffectedItem
    # (Name / ProductName) and the English names a person declares, -> the CPE 2.2 names
    # JVN gives (cpe:/o:nec:aterm_wx3600hp_firmware).  Sorted by vendor.
    ("nec", "aterm gb1200pe"): "nec:aterm_gb1200pe_firmware",
    ("nec", "aterm wf1200cr"): "nec:aterm_wf1200cr_firmware",
    ("nec", "aterm wg1200cr"): "nec:aterm_wg1200cr_firmware",
    ("nec", "aterm wg2600hm4"): "nec:aterm_wg2600hm4_firmware",
    ("nec", "aterm wg2600hp4"): "nec:aterm_wg2600hp4_firmware",
    ("nec", "aterm wg2600hs"): "nec:aterm_wg2600hs_firmware",
    ("nec", "aterm wg2600hs2"): "nec:aterm_wg2600hs2_firmware",
    ("nec", "aterm wx1500hp"): "nec:aterm_wx1500hp_firmware",
    ("nec", "aterm wx3000hp"): "nec:aterm_wx3000hp_firmware",
    ("nec", "aterm wx3600hp"): "nec:aterm_wx3600hp_firmware",
    ("nec", "aterm wx4200d5"): "nec:aterm_wx4200d5_firmware",
    ("日本電気", "aterm gb1200pe ファームウェア"): "nec:aterm_gb1200pe_firmware",
    ("日本電気", "aterm wf1200cr ファームウェア"): "nec:aterm_wf1200cr_firmware",
    ("日本電気", "aterm wg1200cr ファームウェア"): "nec:aterm_wg1200cr_firmware",
    ("日本電気", "aterm wg2600hm4 ファームウェア"): "nec:aterm_wg2600hm4_firmware",
    ("日本電気", "aterm wg2600hp4 ファームウェア"): "nec:aterm_wg2600hp4_firmware",
    ("日本電気", "aterm wg2600hs ファームウェア"): "nec:aterm_wg2600hs_firmware",
    ("日本電気", "aterm wg2600hs2 ファームウェア"): "nec:aterm_wg2600hs2_firmware",
    ("日本電気", "aterm wx1500hp ファームウェア"): "nec:aterm_wx1500hp_firmware",
    ("日本電気", "aterm wx3000hp ファームウェア"): "nec:aterm_wx3000hp_firmware",
    ("日本電気", "aterm wx3600hp ファームウェア"): "nec:aterm_wx3600hp_firmware",
    ("日本電気", "aterm wx4200d5 ファームウェア"): "nec:aterm_wx4200d5_firmware",
    ("planex", "mzk-dp300n"): "planex:mzk-dp300n",
    ("プラネックスコミュニケーションズ株式会社", "mzk-dp300n"): "planex:mzk-dp300n",
    # SNMP (discovery/snmp.py): vendors as its sysObjectID table names them.
    ("arista networks", "eos"): "arista:eos",
    ("juniper networks", "junos"): "juniper:junos",
    # CVE JSON 5 CNA containers (vendor, product as the vendor's PSIRT names them), seen in
    # the cvelistV5 records of ../shared/data/nvd/cve5-*.
    ("fortinet", "forticlientems"): "fortinet:forticlient_enterprise_management_server",
    ("fortinet", "fortimanager"): "fortinet:fortimanager",
    ("fortinet", "fortiproxy"): "fortinet:fortiproxy",
    ("juniper networks", "junos os"): "juniper:junos",
    ("juniper networks", "junos os evolved"): "juniper:junos_os_evolved",
    ("palo alto networks", "expedition"): "paloaltonetworks:expedition",
    # --- show version over SSH (inventory.network.show_version's profiles) -------------
    ("cisco", "ios xr"): "cisco:ios_xr",
}

_SPACE = re.compile(r"[\s_]+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text.strip().lower())


def identify(vendor: str | None, product: str | None) -> str | None:
    """The CPE ``vendor:product`` of a (vendor, product) as a source names them, or None
    when the table does not know it exactly (the device is then *unidentified*)."""
    if not vendor or not product:
        return None
    return _PRODUCTS.get((_norm(vendor), _norm(product)))


def cpe_name(cpe: str) -> tuple[str, str, str | None] | None:
    """(vendor, product, version or None) of a CPE 2.2 URI (``cpe:/o:fortinet:fortios:7.2.4``)
    or CPE 2.3 string (``cpe:2.3:o:fortinet:fortios:7.2.4:*:*:*:*:*:*:*``); None when it
    is neither.  ``*``, ``-`` and an empty version are None."""
    text = cpe.strip()
    if text.startswith("cpe:2.3:"):
        parts = text[8:].split(":")
    elif text.startswith("cpe:/"):
        parts = text[5:].split(":")
    else:
        return None
    if len(parts) < 3 or not parts[1] or not parts[2]:
        return None
    version = parts[3] if len(parts) > 3 and parts[3] not in ("", "*", "-") else None
    return parts[1].lower(), parts[2].lower(), version


# How people name the products (plan items, fix steps): "FortiOS 7.2.4 → 7.2.7".
_LABELS: dict[str, str] = {
    "arista:eos": "Arista EOS",
    "cisco:adaptive_security_appliance_software": "Cisco ASA",
    "cisco:ios": "Cisco IOS",
    "cisco:ios_xe": "Cisco IOS XE",
    "cisco:nx-os": "Cisco NX-OS",
    "fortinet:fortimanager": "FortiManager",
    "fortinet:fortios": "FortiOS",
    "fortinet:fortiproxy": "FortiProxy",
    "juniper:junos": "Junos OS",
    "paloaltonetworks:pan-os": "PAN-OS",
}


def label(name: str) -> str:
    """How people name a CPE ``vendor:product``: "FortiOS" for ``fortinet:fortios``; a
    product the table does not know is shown as its CPE product ("fortiweb")."""
    return _LABELS.get(name) or name.partition(":")[2] or name

