"""The installed hotfixes WMI lists (``Win32_QuickFixEngineering``), in its two printings.

``wmic qfe list`` prints a fixed-width table whose header is the WMI property names
(never translated); ``Get-HotFix | ConvertTo-Json`` prints the same objects as JSON (one
object, not an array, when there is a single hotfix).  Neither names the product or
build, so the facts hold the KBs and the host name (``CSName``) only.

Where the KB sits varies by Windows version: ``HotFixID`` is ``KB4487017`` on Vista and
later, a bare ``943729`` on some Vista entries, and ``File 1`` on XP and Server 2003,
whose KB is then in ``ServicePackInEffect``; the caption's ``?kbid=`` is a last resort.
Rows without any KB (XP's ``Q147222`` placeholder, Vista's ``{GUID}`` rows) are kept as
``other_hotfixes``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.windows.facts import WindowsFacts, kb_number, sorted_kbs

QFE_COMMAND = ("wmic", "qfe", "list")
"""``wmic qfe list`` (wmic is deprecated and absent from Windows 11 24H2 onwards)."""
HOTFIX_JSON_COMMAND = ("powershell", "-NoProfile", "-Command", "Get-HotFix | ConvertTo-Json")
"""PowerShell's view of the same WMI class, as JSON."""

_HEADER = re.compile(r"\b(Caption|CSName|Description|FixComments|HotFixID|InstallDate|"
                     r"InstalledBy|InstalledOn|Name|ServicePackInEffect|Status)\b")
_KBID = re.compile(r"kbid=(\d{5,8})", re.IGNORECASE)


def parse_qfe(text: str, source: str) -> WindowsFacts:
    """The KBs of a ``wmic qfe list`` output.

    Raises InventoryFormatError naming ``source`` when there is no header with
    ``HotFixID`` or no row under it.
    """
    lines = text.split("\n")
    header_at = next((i for i, line in enumerate(lines) if "HotFixID" in line), None)
    if header_at is None:
        raise InventoryFormatError(source, "no wmic qfe header line (with \"HotFixID\")")
    header = lines[header_at]
    columns = [(m[1], m.start()) for m in _HEADER.finditer(header)]
    # Everything before the first column name on the header line is a preamble ("Please
    # wait while WMIC is being installed.") that shifted the header, not the rows.
    shift = columns[0][1]
    spans = {name: (start - shift, (columns[i + 1][1] - shift) if i + 1 < len(columns)
                    else None) for i, (name, start) in enumerate(columns)}
    rows = []
    for number, line in enumerate(lines[header_at + 1:], start=header_at + 2):
        if line.strip():
            rows.append((number, {name: line[a:b].strip() if b is not None else line[a:].strip()
                                  for name, (a, b) in spans.items()}))
    if not rows:
        raise InventoryFormatError(source, "wmic qfe header but no hotfix row under it",
                                   line=header_at + 1)
    return _facts(source, "qfe", (row for _, row in rows))


def parse_hotfix_json(text: str, source: str) -> WindowsFacts:
    """The KBs of a ``Get-HotFix | ConvertTo-Json`` output (an array, or one object).

    Raises InventoryFormatError naming ``source`` for invalid JSON, or objects without
    ``HotFixID``.
    """
    try:
        data = orjson.loads(text.lstrip("\ufeff").encode())
    except orjson.JSONDecodeError as exc:
        raise InventoryFormatError(source, f"not valid JSON: {exc}") from None
    objects = [data] if isinstance(data, dict) else data
    if not isinstance(objects, list) or not objects:
        raise InventoryFormatError(source, "Get-HotFix JSON holds no hotfix object")
    for index, obj in enumerate(objects):
        if not isinstance(obj, dict) or "HotFixID" not in obj:
            raise InventoryFormatError(source, f"entry {index} has no \"HotFixID\": not "
                                               "Get-HotFix output")
    return _facts(source, "hotfix-json",
                  ({k: _text(v) for k, v in obj.items()} for obj in objects))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _facts(source: str, fmt: str, rows: Iterable[Mapping[str, str]]) -> WindowsFacts:
    kbs: list[str] = []
    others: list[str] = []
    hosts: list[str] = []
    for row in rows:
        kb = (kb_number(row.get("HotFixID", "")) or kb_number(row.get("ServicePackInEffect", ""))
              or _caption_kb(row.get("Caption", "")))
        if kb:
            kbs.append(kb)
        elif row.get("HotFixID"):
            others.append(row["HotFixID"])
        host = row.get("CSName") or row.get("PSComputerName")
        if host:
            hosts.append(host)
    if not kbs:
        shown = f" (only: {', '.join(dict.fromkeys(others))})" if others else ""
        raise InventoryFormatError(source, f"no KB number in any hotfix entry{shown}")
    distinct_hosts = list(dict.fromkeys(hosts))
    warnings = ((f"{source}: hotfixes of several hosts ({', '.join(distinct_hosts)}); "
                 "the host name is left out",) if len(distinct_hosts) > 1 else ())
    return WindowsFacts(
        source=source, format="qfe" if fmt == "qfe" else "hotfix-json", kbs=sorted_kbs(kbs),
        other_hotfixes=tuple(dict.fromkeys(others)),
        hostname=distinct_hosts[0] if len(distinct_hosts) == 1 else None, warnings=warnings)


def _caption_kb(caption: str) -> str | None:
    match = _KBID.search(caption)
    return f"KB{match[1]}" if match else None
