"""The Alpine (and Wolfi) package database, /lib/apk/db/installed.

Format: https://wiki.alpinelinux.org/wiki/Apk_spec#Installed_Database_V2 -- one
``X:value`` line per field, one blank-line separated record per package.  ``P`` is the
name, ``V`` the version, ``A`` the architecture and ``o`` the origin (the aport, i.e. the
source package, which secdb advisories name).

Choices:

* One bad line or record is never fatal when the caller collects warnings (the file
  source and ``collect`` do): a line that is not ``X:value`` and a record without ``P:``
  or ``V:`` are skipped with a warning naming ``file:line``.
* The database does not say the release, but two packages do: ``alpine-release`` (Alpine
  3.17 and later; it owns /etc/alpine-release) and the ``alpine-base`` meta package, both
  versioned as the release (``3.18.4-r0`` -> alpine:3.18).  Without ``--distro`` the
  release is read from them and the inference is said in a warning; other packages'
  versions (alpine-baselayout's, apk-tools') do not follow the release and are only
  named in the hint.
"""

from __future__ import annotations

import re

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.purls import purl_for
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.models import Ecosystem, Package


def _problem(warnings: list[str] | None, where: str, line: int, detail: str) -> None:
    if warnings is None:
        raise InventoryFormatError(where, detail, line=line)
    warnings.append(f"{where}:{line}: {detail}; skipped")


def parse_apk_installed(text: str, ecosystem: str, location: str | None = None,
                        warnings: list[str] | None = None) -> list[Package]:
    """The packages of an apk installed database.

    An empty file and binary data are InventoryFormatErrors; so are a record with other
    fields but no ``P:`` or ``V:`` (naming its first line) and a non ``X:value`` line,
    unless ``warnings`` is given: they are then added to it and skipped.
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
            _problem(warnings, where, number, f"not an 'X:value' line: {line[:60]!r}")
            continue
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
            named = f" ({name})" if name else ""
            _problem(warnings, where, first_line, f"package record{named} without {missing}")
            continue
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
_RELEASE_PACKAGES = ("alpine-release", "alpine-base")
_RELEASE_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)*(?:_\w+)?-r\d+$")
_HINT_PACKAGES = ("alpine-baselayout", "apk-tools", "musl")


def infer_release(packages: list[Package]) -> tuple[str, str] | None:
    """``("Alpine:3.18", "alpine-release 3.18.4-r0")``, or None when no package says."""
    for wanted in _RELEASE_PACKAGES:
        for package in packages:
            found = _RELEASE_VERSION.match(package.version)
            if package.name == wanted and found:
                return (f"Alpine:{found.group(1)}.{found.group(2)}",
                        f"{package.name} {package.version}")
    return None


def _hint(packages: list[Package]) -> str:
    seen = {p.name: p.version for p in packages}
    named = ", ".join(f"{n} {seen[n]}" for n in _HINT_PACKAGES if n in seen)
    return (f"the database has no alpine-release or alpine-base package"
            f"{f' ({named} do not name it)' if named else ''}; pass --distro alpine:X.Y "
            "with the release in the image's /etc/alpine-release")


class ApkSource:
    """Alpine's installed database, /lib/apk/db/installed."""

    name = "apk"
    file_names: tuple[str, ...] = ("installed",)

    def detect(self, name: str, head: bytes) -> bool:
        """``P:`` and ``V:`` lines."""
        return _APK_FIELD.search(head) is not None and _APK_VERSION.search(head) is not None

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Installed packages of the release ``distro``, or of the release the database's
        alpine-release / alpine-base package names."""
        text = data.decode("utf-8", errors="replace")
        warnings: list[str] = []
        packages = parse_apk_installed(text, distro or "Alpine", location, warnings)
        if distro is not None:
            return Parsed(packages, warnings=tuple(warnings))
        inferred = infer_release(packages)
        if inferred is None:
            raise InventoryFormatError(
                location, f"apk database: cannot tell the Alpine release: {_hint(packages)}")
        ecosystem, evidence = inferred
        notice = (f"{location}: distribution inferred: {ecosystem.lower()} from {evidence} "
                  "(pass --distro to say otherwise)")
        return Parsed(parse_apk_installed(text, ecosystem, location, []),
                      warnings=(notice, *warnings))


SOURCE = ApkSource()
