"""Windows facts from files a person can produce without installing anything.

``systeminfo`` (any display language), ``wmic qfe list``, ``Get-HotFix | ConvertTo-Json``
and a Windows Update history list, each read into one ``WindowsFacts`` (product, build,
architecture, installed KBs).  As with the Linux sources, the parsers are pure (text in,
facts out) and the command strings sit next to them but are run elsewhere.

``read_windows_bytes`` is the one entry point for a saved file: decode, detect, parse.
"""

from __future__ import annotations

from collections.abc import Callable

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory, OsInfo, WindowsInfo
from patchpilot.inventory.windows.facts import WindowsFacts, WindowsFormat
from patchpilot.inventory.windows.qfe import parse_hotfix_json, parse_qfe
from patchpilot.inventory.windows.systeminfo import parse_systeminfo
from patchpilot.inventory.windows.text import NOT_WINDOWS, decode, detect
from patchpilot.inventory.windows.update_history import parse_update_history

__all__ = ["PARSERS", "WindowsFacts", "WindowsFormat", "decode", "detect", "looks_windows",
           "parse_hotfix_json", "parse_qfe", "parse_systeminfo", "parse_update_history",
           "inventory_of", "read_windows_bytes", "windows_info"]

PARSERS: dict[WindowsFormat, Callable[[str, str], WindowsFacts]] = {
    "systeminfo": parse_systeminfo,
    "qfe": parse_qfe,
    "hotfix-json": parse_hotfix_json,
    "update-history": parse_update_history,
}
"""The one table of Windows formats: ``detect`` names one, this says who reads it."""


def read_windows_bytes(data: bytes, source: str, fmt: WindowsFormat | None = None
                       ) -> WindowsFacts:
    """The facts of a saved Windows command output (``fmt`` forces the format).

    Raises InventoryFormatError naming ``source`` for empty, binary or unknown content
    and for content its format's parser cannot read whole.
    """
    text = decode(data, source)
    kind = fmt or detect(text)
    if kind is None:
        raise InventoryFormatError(source, NOT_WINDOWS)
    return PARSERS[kind](text, source)


def looks_windows(head: bytes) -> bool:
    """Whether a file whose first bytes are ``head`` is one of the four Windows formats
    (for callers that must tell it from a package list before reading it whole)."""
    try:
        text = decode(head, "head")
    except InventoryFormatError:
        return False
    return detect(text) is not None


def windows_info(facts: WindowsFacts) -> WindowsInfo:
    """The inventory's ``windows`` part of ``facts``."""
    return WindowsInfo(product_name=facts.product_name, family=facts.family,
                       release=facts.release, edition=facts.edition, build=facts.build,
                       ubr=facts.ubr, service_pack=facts.service_pack,
                       architecture=facts.architecture, kbs=list(facts.kbs),
                       kbs_complete=facts.kbs_complete)


def inventory_of(facts: WindowsFacts, collector: str = "file") -> Inventory:
    """A schema 2 Inventory of one Windows file's facts (no packages: the OS is judged by
    its build and KBs).  A file that names no product (a QFE or hotfix list alone) gives
    an inventory with KBs only, which matches nothing until the host's product is known;
    its warnings say so."""
    warnings = list(facts.warnings)
    if facts.family is None:
        warnings.append(f"{facts.source}: a {facts.format} list names no Windows product; "
                        "upload the host's systeminfo output too, so its updates can be "
                        "judged")
    os = OsInfo(id="windows", version_id=facts.os_version,
                pretty_name=facts.product_name or facts.family) if facts.family else None
    return Inventory(schema=2, asset=AssetIdentity(hostname=facts.hostname), os=os,
                     windows=windows_info(facts), collector=Collector(name=collector),
                     warnings=warnings)
