"""The Alpine (and Wolfi) package database, /lib/apk/db/installed.

Format: https://wiki.alpinelinux.org/wiki/Apk_spec#Installed_Database_V2 -- one
``X:value`` line per field, one blank-line separated record per package.  ``P`` is the
name, ``V`` the version, ``A`` the architecture and ``o`` the origin (the aport, i.e. the
source package, which secdb advisories name).
"""

from __future__ import annotations

import re

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.purls import purl_for
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.models import Ecosystem, Package


def parse_apk_installed(text: str, ecosystem: str, location: str | None = None) -> list[Package]:
    """The packages of an apk installed database.

    A record with other fields but no ``P:`` or ``V:`` is an InventoryFormatError naming
    its first line; so are an empty file, binary data and a non ``X:value`` line.
    """
    where = location or "apk installed"
    if "\x00" in text:
        raise InventoryFormatError(where, "binary data, not an apk installed database")
    if not text.strip():
        raise InventoryFormatError(where, "empty apk installed database")
    records: list[tuple[int, dict[str, str]]] = []
    fields: dict[str, str] = {}
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if fields:
                records.append((start, fields))
                fields = {}
            continue
        if len(line) < 2 or line[1] != ":":
            raise InventoryFormatError(
                where, f"not an 'X:value' line: {line[:60]!r}", line=number)
        if not fields:
            start = number
        # setdefault: file lines (F:, R:, Z:) repeat; the package fields come first.
        fields.setdefault(line[0], line[2:].strip())
    if fields:
        records.append((start, fields))
    packages: list[Package] = []
    for first_line, record in records:
        name, version = record.get("P", ""), record.get("V", "")
        if not name or not version:
            missing = "P: (name)" if not name else "V: (version)"
            raise InventoryFormatError(
                where, f"package record without {missing}", line=first_line)
        arch = record.get("A") or None
        origin = record.get("o") or name
        packages.append(Package(
            ecosystem=Ecosystem(ecosystem),
            name=name,
            version=version,
            arch=arch,
            source_name=origin,
            source_version=version,  # an aport's subpackages share its version
            purl=purl_for(ecosystem, name, version, arch=arch, source_name=origin),
            location=location,
        ))
    return packages


_APK_FIELD = re.compile(rb"^P:\S", re.MULTILINE)
_APK_VERSION = re.compile(rb"^V:\S", re.MULTILINE)


class ApkSource:
    """Alpine's installed database, /lib/apk/db/installed."""

    name = "apk"
    file_names: tuple[str, ...] = ("installed",)

    def detect(self, name: str, head: bytes) -> bool:
        """``P:`` and ``V:`` lines."""
        return _APK_FIELD.search(head) is not None and _APK_VERSION.search(head) is not None

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Installed packages of the release ``distro`` (required: the database doesn't say)."""
        if distro is None:
            raise InventoryFormatError(
                location, "apk database: cannot tell the Alpine release; "
                          "pass --distro alpine:3.18")
        return Parsed(parse_apk_installed(data.decode("utf-8", errors="replace"), distro,
                                          location))


SOURCE = ApkSource()
