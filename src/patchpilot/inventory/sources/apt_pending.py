"""Pending security updates as apt sees them: the ``-security`` suite's Packages index.

apt keeps the index of every configured suite under /var/lib/apt/lists, one file per
(suite, component, architecture), named after the URL with ``/`` turned into ``_``:
``deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages``,
often compressed (``.lz4``, ``.gz``, ``.xz``, ``.zst``: apt's ``Acquire::GzipIndexes`` /
``CompressionTypes``).  The format is deb-control(5) stanzas, one per binary package.

An installed package whose version in the security suite is newer (dpkg ordering) has a
pending security update.  Everything here is pure: the transport lists the directory,
decompresses the files and runs ``apt-get changelog``; nothing runs ``apt-get update``.

Which CVEs an update fixes is written in the *candidate's* changelog, which is not on disk
until the package is installed (``apt-get changelog`` downloads it);
:func:`parse_debian_changelog` reads that text when the host could fetch it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from patchpilot.errors import InventoryFormatError, VersionError
from patchpilot.inventory.model import PendingUpdate
from patchpilot.knowledge.versions import version_key
from patchpilot.models import Package

# Compressed forms apt may store an index in (apt-pkg's APT::Compressor list).
COMPRESSED_SUFFIXES = ("", ".lz4", ".gz", ".xz", ".zst", ".bz2", ".lzma")
CVE_ID = re.compile(r"\bCVE-\d{4}-\d{4,}\b")
# debian/changelog entry header, deb-changelog(5): "package (version) dists; metadata".
_CHANGELOG_HEADER = re.compile(r"^(\S+) \(([^()\s]+)\) [^;]*;")


def security_suites(codename: str) -> tuple[str, ...]:
    """The suite names of ``codename``'s security archive, in list-file spelling.

    ``bookworm-security`` since Debian 11 and on Ubuntu (``jammy-security``); Debian 10
    and older published ``buster/updates``, which apt stores as ``dists_buster_updates_``.
    """
    return (f"{codename}-security", f"{codename}_updates")


def security_list_files(names: Iterable[str], codename: str) -> list[str]:
    """The Packages index files of ``codename``'s security suite among ``names`` (pure).

    ``names`` are the entries of /var/lib/apt/lists.  Translation, Sources, Contents and
    Release files are not package indexes and are left out; ``partial/`` downloads too.
    """
    markers = tuple(f"_dists_{suite}_" for suite in security_suites(codename))
    found = []
    for name in names:
        if not any(marker in name for marker in markers):
            continue
        stem, dot, suffix = name.rpartition("_Packages")
        if dot and stem and (suffix in COMPRESSED_SUFFIXES):
            found.append(name)
    return sorted(found)


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One binary package of a Packages index: what the repository offers."""

    name: str
    version: str
    arch: str | None
    source_name: str | None


def _stanzas(text: str, location: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(first line, fields) per stanza; continuation lines (long Description) skipped."""
    fields: dict[str, str] = {}
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if fields:
                yield start, fields
                fields = {}
            continue
        if line[0] in " \t":
            continue
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key:
            raise InventoryFormatError(
                location, f"not a 'Field: value' line: {line[:60]!r}", line=number)
        if not fields:
            start = number
        fields[key] = value.strip()
    if fields:
        yield start, fields


def parse_packages_index(text: str, location: str) -> dict[tuple[str, str | None], IndexEntry]:
    """The newest version of each (package, architecture) a Packages index offers.

    An empty index is valid (a component with nothing in the security suite yet).
    Raises InventoryFormatError naming ``location`` and the line for binary data, a line
    that is not ``Field: value``, or a stanza without Package or Version.
    """
    if "\x00" in text:
        raise InventoryFormatError(location, "binary data, not an apt Packages index "
                                             "(still compressed?)")
    offered: dict[tuple[str, str | None], IndexEntry] = {}
    for line, fields in _stanzas(text, location):
        name, version = fields.get("Package", ""), fields.get("Version", "")
        if not name or not version:
            missing = "Package" if not name else "Version"
            raise InventoryFormatError(location, f"package stanza without {missing}",
                                       line=line)
        arch = fields.get("Architecture") or None
        source = fields.get("Source", "").split(" ", 1)[0] or None
        entry = IndexEntry(name, version, arch, source)
        seen = offered.get((name, arch))
        # An index may list several versions of one package (a suite keeps the previous
        # upload until the next dinstall): the newest is what apt would install.
        if seen is None or _newer(version, seen.version):
            offered[(name, arch)] = entry
    return offered


def merge_offers(into: dict[tuple[str, str | None], IndexEntry],
                 more: dict[tuple[str, str | None], IndexEntry]) -> None:
    """Add ``more`` (another index of the suite) to ``into``, the newest version winning."""
    for key, entry in more.items():
        seen = into.get(key)
        if seen is None or _newer(entry.version, seen.version):
            into[key] = entry


def _newer(a: str, b: str, ecosystem: str = "Debian") -> bool:
    """True when ``a`` sorts after ``b`` in dpkg order; False when either cannot be read."""
    try:
        return version_key(ecosystem, a) > version_key(ecosystem, b)
    except VersionError:
        return False


def pending_security_updates(
    installed: Iterable[Package],
    offered: dict[tuple[str, str | None], IndexEntry],
    repository: str,
) -> list[PendingUpdate]:
    """The installed packages for which ``offered`` (the security suite) has a newer version.

    Looked up by (name, architecture): an ``Architecture: all`` package is in every
    architecture's index, and an installed i386 package is judged only by an i386 index.
    Versions are compared in the installed package's ecosystem (``Debian:12``).
    """
    pending = []
    for package in installed:
        entry = offered.get((package.name, package.arch))
        if entry is None or not _newer(entry.version, package.version, package.ecosystem):
            continue
        pending.append(PendingUpdate(
            package=package.name,
            source_name=entry.source_name or package.source_name or package.name,
            arch=package.arch,
            installed_version=package.version,
            candidate_version=entry.version,
            repository=repository,
        ))
    pending.sort(key=lambda u: (u.source_name or u.package, u.package, u.arch or ""))
    return pending


def changelog_command(package: str, version: str) -> tuple[str, ...]:
    """The command printing the changelog of ``package`` at ``version`` (needs network).

    apt downloads it from the archive's changelog server (metadata.ftp-master.debian.org,
    changelogs.ubuntu.com); it is not in the Packages index nor on disk.
    """
    return ("apt-get", "changelog", "-qq", f"{package}={version}")


def parse_debian_changelog(text: str, since_version: str,
                           location: str = "changelog") -> list[str]:
    """The CVE ids named in the changelog entries newer than ``since_version`` (sorted).

    ``text`` is a debian/changelog (deb-changelog(5)): entries newest first, each headed
    ``package (version) distributions; urgency=…``.  An entry is read when its version
    sorts after ``since_version`` in dpkg order -- the installed *source* version, since
    changelog versions are source versions (a binNMU's ``+b1`` is not in them).  A header
    whose version cannot be ordered is left out rather than guessed newer.

    Raises InventoryFormatError for binary data or text with no entry header at all.
    """
    return _changelog_cves(text, since_version, location, newer=True)


def parse_debian_changelog_fixed(text: str, installed_version: str,
                                 location: str = "changelog") -> list[str]:
    """The CVE ids named in the changelog entries at or below ``installed_version``
    (sorted): what the installed package says it fixed, its backports included.

    The installed package's own changelog (``/usr/share/doc/<pkg>/changelog.Debian.gz``)
    holds only such entries; the bound still guards against a changelog shipped by a
    newer package of the same source.  ``installed_version`` is the *source* version, as
    for :func:`parse_debian_changelog`, which raises the same errors.
    """
    return _changelog_cves(text, installed_version, location, newer=False)


def _changelog_cves(text: str, bound: str, location: str, *, newer: bool) -> list[str]:
    """The CVE ids of the entries above ``bound`` (``newer``) or at/below it."""
    if "\x00" in text:
        raise InventoryFormatError(location, "binary data, not a Debian changelog "
                                             "(still gzip-compressed?)")
    try:
        since = version_key("Debian", bound)
    except VersionError as exc:
        raise InventoryFormatError(location, str(exc)) from exc
    found: set[str] = set()
    headers = 0
    reading = False
    for line in text.splitlines():
        header = _CHANGELOG_HEADER.match(line)
        if header:
            headers += 1
            try:
                reading = (version_key("Debian", header.group(2)) > since) == newer
            except VersionError:
                reading = False
            continue
        if reading:
            found.update(CVE_ID.findall(line))
    if not headers:
        raise InventoryFormatError(location, "no 'package (version) dist; urgency=…' "
                                             "entry header: not a Debian changelog")
    return sorted(found)


def with_cves(update: PendingUpdate, cve_ids: list[str]) -> PendingUpdate:
    """``update`` with the CVE ids its candidate's changelog names."""
    return update.model_copy(update={"cve_ids": sorted(set(cve_ids))})
