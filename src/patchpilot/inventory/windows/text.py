"""Bytes to text for Windows command output, and which of the four formats a text is.

What people save from a Windows console comes in several encodings: ``systeminfo >
file`` from cmd writes the OEM code page (cp850 in western Europe, cp437 in the US),
PowerShell 5's ``>`` writes UTF-16LE with a BOM, Notepad UTF-8 with or without one, and
``wmic`` run for the first time prints an ASCII "Please wait while WMIC is being
installed." before switching to UTF-16LE without a BOM.  The decoder handles all of
these and refuses binary data rather than guessing.
"""

from __future__ import annotations

import re

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.windows.facts import WindowsFormat

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
NOT_WINDOWS = ("not Windows systeminfo, wmic qfe, Get-HotFix JSON or update-history "
               "output")


def decode(data: bytes, source: str) -> str:
    """The text of ``data``, a saved Windows command output (see the module docstring).

    Raises InventoryFormatError naming ``source`` for empty or binary data.
    """
    if not data.strip(b" \t\r\n\x00"):
        raise InventoryFormatError(source, "empty file")
    text = _decode(data)
    if text is None or len(_CONTROL.findall(text)) > max(2, len(text) // 200):
        raise InventoryFormatError(source, f"binary data, {NOT_WINDOWS}")
    if not text.strip("\ufeff \t\r\n"):
        raise InventoryFormatError(source, "empty file (only blank lines)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes) -> str | None:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(codec)
            except UnicodeDecodeError:
                return None
    nul = data.find(b"\x00")
    if nul > 0:
        # UTF-16LE without a BOM, possibly after an ASCII preamble: the byte before the
        # first NUL is the first UTF-16 character.
        head, rest = data[:nul - 1], data[nul - 1:]
        if len(rest) % 2:
            rest = rest[:-1] if rest.endswith(b"\x00") or rest[-1:] in b"\r\n" else rest
        try:
            return head.decode("ascii") + rest.decode("utf-16-le")
        except UnicodeDecodeError:
            return None
    if nul == 0:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _single_byte(data)


def _single_byte(data: bytes) -> str:
    """cp850 (the console's OEM code page) or cp1252 (the ANSI one), whichever reads more
    non-ASCII characters as lower-case letters: accents sit mostly on lower-case letters,
    and each code page turns the other's accented lower-case letters into symbols or
    capitals (cp850's 0xA2 "ó" is cp1252's "¢"; cp1252's 0xE9 "é" is cp850's "Ú")."""
    def score(text: str) -> int:
        return sum(1 for ch in text if ord(ch) > 127 and ch.islower())

    ansi = data.decode("cp1252", errors="replace")
    oem = data.decode("cp850")
    return oem if score(oem) > score(ansi) else ansi


# A systeminfo line: a label, a colon, spaces, then the OS version "10.0.20348 ...".
_OS_VERSION_LINE = re.compile(r"^\S[^\n]*:\s+\d+\.\d+\.\d+ [^\n]*\d\s*$", re.MULTILINE)
_HOTFIX_ITEM = re.compile(r"^\s+\[\d+\]\s?:\s", re.MULTILINE)
_QFE_HEADER = re.compile(r"^(?:.*\s)?HotFixID\s", re.MULTILINE)
_UPDATE_LINE = re.compile(r"^KB\d+: \S", re.MULTILINE)


def detect(text: str) -> WindowsFormat | None:
    """Which of the four Windows formats ``text`` is, or None (pure, by structure).

    * Get-HotFix JSON: a JSON object or array mentioning ``HotFixID``;
    * wmic qfe: a column header line with ``HotFixID`` (WMI property names are never
      translated);
    * systeminfo: a ``label: 10.0.nnnnn ...`` OS version line and ``[01]:`` items;
    * update history: ``KBnnnnnnn: title`` lines.
    """
    stripped = text.lstrip("\ufeff \t\n")
    if stripped[:1] in "[{" and '"HotFixID"' in stripped[:4096]:
        return "hotfix-json"
    if _QFE_HEADER.search(text[:4096]):
        return "qfe"
    if _OS_VERSION_LINE.search(text[:4096]) and _HOTFIX_ITEM.search(text):
        return "systeminfo"
    if _UPDATE_LINE.search(text[:4096]):
        return "update-history"
    return None
