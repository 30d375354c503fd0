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
* One bad line or stanza is never fatal when the caller collects warnings (the file
  source and ``collect`` do): a line that is not ``Field: value``, a Status that is not
  three words, an installed stanza without Package or Version are skipped with a warning
  naming ``file:line`` and why, and the rest of the database is read.
* The release is read from the packages when ``--distro`` is not given (``infer_release``:
  base-files' version, ``+debNNuM``/``~debNNuM``/``~bpoNN`` security and backport
  markers, Ubuntu's ``~NN.NN`` backport markers) and the inference is said in a warning.
"""

from __future__ import annotations

import re
from collections import Counter

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.purls import purl_for
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.knowledge.ecosystems import UBUNTU_CODENAMES
from patchpilot.models import Ecosystem, Package

INSTALLED_STATES = frozenset({"installed", "triggers-pending", "triggers-awaited"})


def _problem(warnings: list[str] | None, where: str, line: int | None, detail: str) -> None:
    """Raise ``detail`` as an InventoryFormatError, or -- when the caller collects
    ``warnings`` -- record it as ``file:line: detail; skipped`` and go on."""
    if warnings is None:
        raise InventoryFormatError(where, detail, line=line)
    at = f"{where}:{line}" if line is not None else where
    warnings.append(f"{at}: {detail}; skipped")


def _stanzas(text: str, location: str, warnings: list[str] | None = None
             ) -> list[tuple[int, dict[str, str]]]:
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
            _problem(warnings, location, number, f"not a 'Field: value' line: {line[:60]!r}")
            continue
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
    warnings: list[str] | None = None,
) -> list[Package]:
    """The installed packages of a dpkg status file (or of one status.d file).

    ``ecosystem`` is the host's release (``Debian:12``).  ``location`` names the file in
    errors and in each Package.  ``assume_installed`` is for distroless ``status.d/`` files,
    which may carry no Status field: a stanza without Status then counts as installed
    (in the main status file such a stanza is not a package record and is skipped).

    Raises InventoryFormatError for an empty file, binary data or text with no
    ``Package:`` stanza at all.  A line that is not ``Field: value``, a malformed Status
    and an installed stanza without Package or Version (naming its line) are errors too,
    unless ``warnings`` is given: they are then added to it and skipped.
    """
    where = location or "dpkg status"
    if "\x00" in text:
        raise InventoryFormatError(where, "binary data, not a dpkg status file")
    if not text.strip():
        raise InventoryFormatError(where, "empty dpkg status file")
    stanzas = _stanzas(text, where, warnings)
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
                _problem(warnings, where, line,
                         f"Status {status!r} is not '<want> <flag> <state>'")
                continue
            if words[2] not in INSTALLED_STATES:
                continue
        name = fields.get("Package", "")
        version = fields.get("Version", "")
        if not name or not version:
            missing = "Package" if not name else "Version"
            named = f" ({name})" if name else ""
            _problem(warnings, where, line,
                     f"installed package stanza{named} without {missing}")
            continue
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


_DEB_MARKER = re.compile(r"[+~](?:deb(\d+)u\d+|bpo(\d+)\+\d+)")
# Ubuntu's backports and hardware-enablement builds end in ``~<release>`` (``~24.04.1``).
_UBUNTU_MARKER = re.compile(r"~(\d{2}\.\d{2})(?:\.\d+)?$")
_DPKG_FIELD = re.compile(rb"^Package:", re.MULTILINE)
_DPKG_STATUS = re.compile(r"^Status:", re.MULTILINE)
# apt's major.minor -> the release that shipped it: only a hint for --distro, never an
# inference (a host may run a backported apt).
_APT_RELEASES = {"1.4": "debian:9", "1.6": "ubuntu:18.04", "1.8": "debian:10",
                 "2.0": "ubuntu:20.04", "2.2": "debian:11", "2.4": "ubuntu:22.04",
                 "2.6": "debian:12", "2.7": "ubuntu:24.04", "2.8": "ubuntu:24.04",
                 "3.0": "debian:13"}


def infer_release(packages: list[Package]) -> tuple[str, str] | None:
    """``(ecosystem, evidence)`` -- ``("Debian:12", "base-files 12.4+deb12u5")`` -- of the
    release the packages' own versions name, or None when they do not.

    base-files' major version is the Debian release since Debian 7 (``12.4+deb12u5`` ->
    12); failing base-files, the most common ``+debNNuM`` / ``~debNNuM`` security-update or
    ``~bpoNN+M`` backport marker decides.  Ubuntu: the most common ``~NN.NN`` backport
    marker of a known Ubuntu release (``6.14.0-1012.12~24.04.1`` -> 24.04).
    """
    for package in packages:
        if package.name == "base-files" and "ubuntu" not in package.version:
            major = package.version.split(":")[-1].split(".", 1)[0]
            if major.isdigit() and int(major) >= 7:
                return f"Debian:{int(major)}", f"base-files {package.version}"
    ubuntu = Counter((found.group(1), p.name, p.version) for p in packages
                     if (found := _UBUNTU_MARKER.search(p.version))
                     and found.group(1) in UBUNTU_CODENAMES.values())
    if ubuntu or any("ubuntu" in p.version for p in packages):
        if not ubuntu:
            return None
        releases = Counter(release for release, _, _ in ubuntu.elements())
        release = releases.most_common(1)[0][0]
        name, version = next((n, v) for r, n, v in ubuntu if r == release)
        return f"Ubuntu:{release}", _evidence(releases[release], name, version, "~NN.NN")
    markers = [(found.group(1) or found.group(2), p.name, p.version) for p in packages
               if (found := _DEB_MARKER.search(p.version))]
    if not markers:
        return None
    counts = Counter(release for release, _, _ in markers)
    release = counts.most_common(1)[0][0]
    name, version = next((n, v) for r, n, v in markers if r == release)
    return f"Debian:{int(release)}", _evidence(counts[release], name, version, "+debNNuM")


def _evidence(count: int, name: str, version: str, marker: str) -> str:
    if count == 1:
        return f"{name} {version}"
    return f"{count} versions with {marker} (e.g. {name} {version})"


def guess_debian_release(packages: list[Package]) -> str | None:
    """``Debian:NN`` judged from the packages' versions, or None (Ubuntu or unknown)."""
    found = infer_release(packages)
    return found[0] if found is not None and found[0].startswith("Debian:") else None


def distro_hint(packages: list[Package]) -> str:
    """What to pass as ``--distro`` when the release cannot be read from the packages."""
    versions = {p.name: p.version for p in packages}
    apt = versions.get("apt", "")
    suggestion = _APT_RELEASES.get(".".join(apt.split(":")[-1].split(".")[:2]))
    if suggestion is not None:
        return (f"apt {apt} is the one of {suggestion}: pass --distro {suggestion} if the "
                "file comes from it (the host's /etc/os-release says)")
    family = "ubuntu:24.04" if any("ubuntu" in v for v in versions.values()) else "debian:12"
    return (f"pass --distro with the release in the host's /etc/os-release "
            f"(ID:VERSION_ID, e.g. {family})")


class DpkgSource:
    """/var/lib/dpkg/status, or a distroless image's status.d/ file."""

    name = "dpkg"
    file_names: tuple[str, ...] = ("status",)

    def detect(self, name: str, head: bytes) -> bool:
        """A stanza starting ``Package:`` (dpkg's RFC 822-style database)."""
        return _DPKG_FIELD.search(head) is not None

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Installed packages; the release is read from the versions when not given."""
        text = data.decode("utf-8", errors="replace")
        # A status.d file from a distroless image may have no Status field at all.
        assume_installed = _DPKG_STATUS.search(text) is None
        warnings: list[str] = []
        packages = parse_dpkg_status(text, distro or "Debian", location,
                                     assume_installed=assume_installed, warnings=warnings)
        notices: list[str] = []
        if distro is None:
            inferred = infer_release(packages)
            if inferred is None:
                raise InventoryFormatError(
                    location, "dpkg status: cannot tell the distribution release from the "
                              f"packages' versions; {distro_hint(packages)}")
            ecosystem, evidence = inferred
            notices.append(f"{location}: distribution inferred: {ecosystem.lower()} from "
                           f"{evidence} (pass --distro to say otherwise)")
            # Parse again so every Package (and purl) carries the release.
            packages = parse_dpkg_status(text, ecosystem, location,
                                         assume_installed=assume_installed, warnings=[])
        return Parsed(packages, warnings=(*notices, *warnings))


SOURCE = DpkgSource()
