"""The dpkg database: /var/lib/dpkg/status and distroless /var/lib/dpkg/status.d/*.

Format: RFC 822-style stanzas separated by blank lines (deb-status(5), deb-control(5)).
A field's continuation lines start with a space or tab; none of the fields read here
(Package, Status, Version, Architecture, Source) spans lines, so continuations are skipped.

Choices:

* Installed means the *state* word of ``Status: <want> <flag> <state>`` says the files
  are on disk and configured: ``installed``, ``triggers-pending`` or ``triggers-awaited``.
  The *want* word is only the package manager's intent: ``deinstall ok installed`` (marked
  for removal, still present) is kept, like osv-scalibr does, because its files can still
  be exploited.  ``config-files``, ``half-installed``, ``unpacked``, ``not-installed`` are
  skipped.
* An empty file is an error ("empty dpkg status file"), not an empty list: every Debian
  host has packages, so an empty database means a wrong or truncated file, and an empty
  inventory would close every open finding of the asset as "fixed".
"""

from __future__ import annotations

import re
from collections import Counter

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.purls import purl_for
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.models import Ecosystem, Package

INSTALLED_STATES = frozenset({"installed", "triggers-pending", "triggers-awaited"})


def _stanzas(text: str, location: str) -> list[tuple[int, dict[str, str]]]:
    """(first line number, fields) of every stanza; continuation lines are dropped."""
    stanzas: list[tuple[int, dict[str, str]]] = []
    fields: dict[str, str] = {}
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if fields:
                stanzas.append((start, fields))
                fields = {}
            continue
        if line[0] in " \t":
            continue  # continuation of a multi-line field (Description, Conffiles, …)
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key:
            raise InventoryFormatError(
                location, f"not a 'Field: value' line: {line[:60]!r}", line=number)
        if not fields:
            start = number
        fields[key] = value.strip()
    if fields:
        stanzas.append((start, fields))
    return stanzas


def _source(fields: dict[str, str], name: str, version: str) -> tuple[str, str]:
    """Source package name and version: ``Source: name`` or ``Source: name (version)``.

    Without the parenthesised version the source version is the binary's (a binNMU such
    as ``3.4-1+b6`` always writes the source version, ``libselinux (3.4-1)``).  Without a
    Source field the binary package is its own source, as dpkg-query's ``${source:Package}``
    says.
    """
    source = fields.get("Source", "").strip()
    if not source:
        return name, version
    source_name, _, rest = source.partition(" ")
    rest = rest.strip()
    if rest.startswith("(") and rest.endswith(")"):
        return source_name, rest[1:-1].strip() or version
    return source_name, version


def parse_dpkg_status(
    text: str,
    ecosystem: str,
    location: str | None = None,
    *,
    assume_installed: bool = False,
) -> list[Package]:
    """The installed packages of a dpkg status file (or of one status.d file).

    ``ecosystem`` is the host's release (``Debian:12``).  ``location`` names the file in
    errors and in each Package.  ``assume_installed`` is for distroless ``status.d/`` files,
    which may carry no Status field: a stanza without Status then counts as installed
    (in the main status file such a stanza is not a package record and is skipped).

    Raises InventoryFormatError for an empty file, binary data, a line that is not
    ``Field: value``, an installed stanza without Package or Version (naming its line),
    or text with no ``Package:`` stanza at all.
    """
    where = location or "dpkg status"
    if "\x00" in text:
        raise InventoryFormatError(where, "binary data, not a dpkg status file")
    if not text.strip():
        raise InventoryFormatError(where, "empty dpkg status file")
    stanzas = _stanzas(text, where)
    if not any("Package" in fields for _, fields in stanzas):
        raise InventoryFormatError(where, "no dpkg package stanzas")
    packages: list[Package] = []
    for line, fields in stanzas:
        status = fields.get("Status")
        if status is None:
            if not assume_installed:
                continue
        else:
            words = status.split()
            if len(words) != 3:
                raise InventoryFormatError(
                    where, f"Status {status!r} is not '<want> <flag> <state>'", line=line)
            if words[2] not in INSTALLED_STATES:
                continue
        name = fields.get("Package", "")
        version = fields.get("Version", "")
        if not name or not version:
            missing = "Package" if not name else "Version"
            raise InventoryFormatError(
                where, f"installed package stanza without {missing}", line=line)
        arch = fields.get("Architecture") or None
        source_name, source_version = _source(fields, name, version)
        packages.append(Package(
            ecosystem=Ecosystem(ecosystem),
            name=name,
            version=version,
            arch=arch,
            source_name=source_name,
            source_version=source_version,
            purl=purl_for(ecosystem, name, version, arch=arch, source_name=source_name),
            location=location,
        ))
    return packages


_DEB_MARKER = re.compile(r"[+~]deb(\d+)u\d+")
_DPKG_FIELD = re.compile(rb"^Package:", re.MULTILINE)
_DPKG_STATUS = re.compile(r"^Status:", re.MULTILINE)


def guess_debian_release(packages: list[Package]) -> str | None:
    """``Debian:NN`` judged from the packages' versions, or None when they cannot say.

    base-files' major version is the Debian release since Debian 7 (``12.4+deb12u5`` ->
    12); failing base-files, the most common ``+debNNu`` / ``~debNNu`` security-update
    marker decides.  Ubuntu (``ubuntu`` in base-files' version) and anything else -> None.
    """
    for package in packages:
        if package.name == "base-files":
            if "ubuntu" in package.version:
                return None
            major = package.version.split(":")[-1].split(".", 1)[0]
            if major.isdigit() and int(major) >= 7:
                return f"Debian:{int(major)}"
    if any("ubuntu" in p.version for p in packages):
        return None
    markers = Counter(
        found.group(1) for p in packages if (found := _DEB_MARKER.search(p.version)))
    if not markers:
        return None
    return f"Debian:{int(markers.most_common(1)[0][0])}"


class DpkgSource:
    """/var/lib/dpkg/status, or a distroless image's status.d/ file."""

    name = "dpkg"
    file_names: tuple[str, ...] = ("status",)

    def detect(self, name: str, head: bytes) -> bool:
        """A stanza starting ``Package:`` (dpkg's RFC 822-style database)."""
        return _DPKG_FIELD.search(head) is not None

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Installed packages; the release is guessed from versions when not given."""
        text = data.decode("utf-8", errors="replace")
        # A status.d file from a distroless image may have no Status field at all.
        assume_installed = _DPKG_STATUS.search(text) is None
        packages = parse_dpkg_status(text, distro or "Debian", location,
                                     assume_installed=assume_installed)
        if distro is None:
            guessed = guess_debian_release(packages)
            if guessed is None:
                raise InventoryFormatError(
                    location, "dpkg status: cannot tell the distribution release from the "
                              "packages; pass --distro debian:12 (or ubuntu:22.04)")
            # Parse again so every Package (and purl) carries the release.
            packages = parse_dpkg_status(text, guessed, location,
                                         assume_installed=assume_installed)
        return Parsed(packages)


SOURCE = DpkgSource()
