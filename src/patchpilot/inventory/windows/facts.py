"""What a Windows host says about itself: ``WindowsFacts``, and the build -> release table.

Every Windows file parser (``systeminfo``, ``wmic qfe``, ``Get-HotFix | ConvertTo-Json``,
an update-history list) returns one ``WindowsFacts``; the fields a format does not carry
are None (a QFE list names no product; ``systeminfo`` has no UBR).  The matcher works on
``family``/``release``/``build``/``ubr``/``kbs``; the rest is shown to people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

WindowsFormat = Literal["systeminfo", "qfe", "hotfix-json", "update-history"]
"""The four kinds of Windows file read here."""


@dataclass(frozen=True, slots=True)
class WindowsFacts:
    """The OS facts and installed updates one Windows file tells.

    ``ubr`` (the update build revision, the ``.3270`` of ``20348.3270``) is only in the
    registry (``CurrentVersion\\UBR``); none of the four file formats carries it, so it
    is None here and matching on such a host relies on its KB list.
    """

    source: str
    format: WindowsFormat
    product_name: str | None = None  # as systeminfo gives it, trademark noise removed
    family: str | None = None  # "Windows 10", "Windows Server 2022", "Windows XP"
    release: str | None = None  # "22H2", "1809" -- the DisplayVersion, from the build
    edition: str | None = None  # "Enterprise", "Standard", "Pro for Workstations"
    os_version: str | None = None  # "10.0.20348"
    build: int | None = None
    ubr: int | None = None
    service_pack: int | None = None
    architecture: str | None = None  # "x64", "x86", "arm64", "ia64"
    kbs: tuple[str, ...] = ()  # sorted by number, unique: ("KB971033", "KB2849697")
    # Hotfix entries that are not a KB number ("File 1", "Q147222", a GUID): kept so a
    # reader sees they were there and why they do not count.
    other_hotfixes: tuple[str, ...] = ()
    # False when the file's own list is known to be cut short (systeminfo prints at most
    # a few hundred hotfixes, then a bare "[246]"): the KBs are then a lower bound, and a
    # KB missing from them is no proof that it is not installed.
    kbs_complete: bool = True
    hostname: str | None = None
    domain: str | None = None
    install_date: date | None = None
    warnings: tuple[str, ...] = field(default=())


# Windows 10/11 and Server builds -> (release, the Server product of that build).  The
# release is what Settings and the registry's DisplayVersion/ReleaseId say; MSRC names
# products by it ("Windows 10 Version 21H2").  Sources: Microsoft's release-information
# pages for Windows 10, Windows 11 and Windows Server.
_BUILDS: dict[int, tuple[str, str | None]] = {
    10240: ("1507", None),
    10586: ("1511", None),
    14393: ("1607", "Windows Server 2016"),
    15063: ("1703", None),
    16299: ("1709", None),
    17134: ("1803", None),
    17763: ("1809", "Windows Server 2019"),
    18362: ("1903", None),
    18363: ("1909", None),
    19041: ("2004", None),
    19042: ("20H2", None),
    19043: ("21H1", None),
    19044: ("21H2", None),
    19045: ("22H2", None),
    20348: ("21H2", "Windows Server 2022"),
    22000: ("21H2", None),
    22621: ("22H2", None),
    22631: ("23H2", None),
    25398: ("23H2", None),
    26100: ("24H2", "Windows Server 2025"),
    26200: ("25H2", None),
}
_FIRST_WINDOWS_11_BUILD = 22000


def release_of_build(build: int) -> str | None:
    """The release (DisplayVersion) of a Windows 10/11/Server build, or None if unknown."""
    known = _BUILDS.get(build)
    return known[0] if known else None


def server_of_build(build: int) -> str | None:
    """The long-term Server product of a build (20348 -> "Windows Server 2022")."""
    known = _BUILDS.get(build)
    return known[1] if known else None


# Console output turns (R) and (TM) into "r"/"T" (the OEM code page has no such
# characters) or prints them as "(R)"; all are noise in a product name.
_TRADEMARKS = re.compile(r"\((?:R|TM)\)|[®™]|(?<=Microsoft)r\b|(?<=Server)r\b|(?<=Vista)T\b")
_FAMILY = re.compile(
    r"Windows\s+(?:(?P<server>Server)\s+(?P<sver>\d{4}(?:\s+R2)?)?|(?P<client>XP|Vista|\d+(?:\.\d)?))",
    re.IGNORECASE)
_EDITION_NOISE = re.compile(r"\b(?:x64|x86|64-bit|Itanium)\s+Edition\b|\bEdition\b|,",
                            re.IGNORECASE)


def clean_product_name(name: str) -> str:
    """``Microsoft(R) Windows(R) Server 2003, Standard Edition`` without trademark noise."""
    return " ".join(_TRADEMARKS.sub("", name).split())


def normalise_product(name: str, build: int | None) -> tuple[str | None, str | None, str | None]:
    """(family, release, edition) of a product name as systeminfo prints it.

    The family comes from the name ("Windows 7", "Windows Server 2012 R2"); a Server
    name without a year ("Windows Server Standard", the semi-annual channel) takes it from
    the build when the build names one.  A Windows 10 name on a build of 22000 or later is
    Windows 11 (early Windows 11 builds reported themselves as Windows 10).  The release
    comes from the build table, for Windows 10/11 and Server 2016 and later only.
    """
    cleaned = clean_product_name(name)
    found = _FAMILY.search(cleaned)
    if found is None:
        return None, None, None
    if found["server"]:
        year = found["sver"]
        family = f"Windows Server {' '.join(year.split())}" if year else (
            server_of_build(build) if build else None) or "Windows Server"
    else:
        version = found["client"]
        version = version.upper() if version.isalpha() and version.upper() == "XP" else version
        if version.lower() == "vista":
            version = "Vista"
        if version == "10" and build is not None and build >= _FIRST_WINDOWS_11_BUILD:
            version = "11"
        family = f"Windows {version}"
    release = None
    if build is not None and build >= 10240:
        release = release_of_build(build)
    edition = " ".join(_EDITION_NOISE.sub(" ", cleaned[found.end():]).split()) or None
    return family, release, edition


_ARCHITECTURES = (("x64", "x64"), ("amd64", "x64"), ("x86", "x86"), ("arm64", "arm64"),
                  ("arm", "arm"), ("itanium", "ia64"), ("ia64", "ia64"))


def architecture_of(system_type: str) -> str | None:
    """``x64``/``x86``/``arm64``/``ia64`` from a "System Type" value ("x64-based PC").

    The value is the same in every display language (it is not translated), so it is
    read by its words, not by the label in front of it.
    """
    head = system_type.strip().lower().split("-", 1)[0]
    for word, arch in _ARCHITECTURES:
        if head == word:
            return arch
    return None


_KB = re.compile(r"^(?:KB|Q)?(\d{5,8})(?!\d)", re.IGNORECASE)


def kb_number(text: str) -> str | None:
    """``KB5034439`` from ``KB5034439``, ``kb5034439``, ``KB893803v2 - Update``,
    ``KB941569_WM11`` or a bare ``943729`` (Vista's QFE list drops the prefix); None for
    anything else ("File 1", a GUID).  ``Q147222`` (the pre-2003 Knowledge Base prefix)
    is not taken: on XP it is a placeholder entry, not an update."""
    stripped = text.strip()
    if stripped[:1].upper() == "Q":
        return None
    match = _KB.match(stripped)
    return f"KB{match.group(1)}" if match else None


def sorted_kbs(kbs: set[str] | list[str]) -> tuple[str, ...]:
    """Unique KB ids sorted by number (KB971033 before KB2849697)."""
    return tuple(sorted(set(kbs), key=lambda kb: int(kb[2:])))
