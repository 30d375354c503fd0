"""Which OS package owns a language package's files, and what its changelog says it fixed
(pure parsers).

A language package that dpkg, rpm or apk installed -- Debian's ``python3-cryptography``
puts ``cryptography-38.0.4.dist-info`` into /usr/lib/python3/dist-packages -- carries the
distribution's backports, so upstream advisories' version ranges say nothing about it
(trivy and grype drop such packages by file ownership too).  ``inventory.collect`` asks
the package manager only about the entries it found (a dist-info folder, an egg-info
file), never for a map of the whole disk:

* dpkg: one ``grep -F -x`` of those paths over ``/var/lib/dpkg/info/*.list``
  (``commands.dpkg_owners``), read by :func:`parse_dpkg_owners`;
* rpm: ``rpm -qf`` of those paths with the owners' file lists
  (``commands.rpm_owners``), read by :func:`parse_rpm_owners`;
* apk: the ``F:`` (folder) and ``R:`` (file) lines of ``/lib/apk/db/installed``, already
  read for the packages, by :func:`parse_apk_owners`.

The owner's own changelog is the backport evidence where the distribution's feed is not
loaded: ``changelog.Debian.gz`` (:func:`debian_changelog_text`, then
``apt_pending.parse_debian_changelog_fixed``) or ``rpm -q --changelog``
(:func:`parse_rpm_changelog_cves`).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Collection

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources.apt_pending import CVE_ID
from patchpilot.models import PackageOwner


def parse_dpkg_owners(text: str) -> dict[str, str]:
    """``{path: binary package}`` from ``grep -H`` lines ``NAME[:ARCH].list:PATH``.

    A path two packages list (a shared folder) keeps the first package in name order, so
    the answer does not depend on the order grep read the files in.
    """
    owners: dict[str, str] = {}
    for line in sorted(text.splitlines()):
        listing, sep, path = line.partition(".list:")
        if not sep or not path.startswith("/"):
            continue
        name = listing.rsplit("/", 1)[-1].split(":", 1)[0]  # libfoo:amd64 -> libfoo
        if name:
            owners.setdefault(path, name)
    return owners


def parse_rpm_owners(text: str, wanted: Collection[str]) -> dict[str, PackageOwner]:
    """``{path: owner}`` for the paths of ``wanted`` in ``commands.rpm_owners``'s output.

    Each line is ``PATH<TAB>NAME<TAB>EPOCHNUM<TAB>VERSION<TAB>RELEASE`` (every file of
    every owning package); the version is spelled as ``rpm.parse_rpm_qa`` spells it
    (``epoch:version-release``, the epoch left out when 0).  rpm's ``file … is not owned
    by any package`` lines have no tab and are skipped.
    """
    owners: dict[str, PackageOwner] = {}
    for line in text.splitlines():
        fields = line.rstrip("\r").split("\t")
        if len(fields) != 5 or fields[0] not in wanted:
            continue
        path, name, epoch, version, release = fields
        evr = f"{version}-{release}" if epoch in ("", "0", "(none)") else (
            f"{epoch}:{version}-{release}")
        owners.setdefault(path, PackageOwner(name, evr))
    return owners


def parse_apk_owners(text: str, wanted: Collection[str]) -> dict[str, PackageOwner]:
    """``{path: owner}`` for the paths of ``wanted`` an apk installed database lists.

    A record's ``F:`` line names a folder (relative to /) and the ``R:`` lines after it
    the files in it; a dist-info folder is a ``F:`` line, an egg-info file a ``R:`` one.
    """
    owners: dict[str, PackageOwner] = {}
    name = version = folder = ""
    for line in text.splitlines():
        if not line.strip():
            name = version = folder = ""
            continue
        key, value = line[:2], line[2:].strip()
        if key == "P:":
            name = value
        elif key == "V:":
            version = value
        elif key in ("F:", "R:"):
            path = "/" + value if key == "F:" else f"/{folder}/{value}"
            if key == "F:":
                folder = value
            if path in wanted and name and version:
                owners.setdefault(path, PackageOwner(name, version))
    return owners


def debian_changelog_text(data: bytes, location: str) -> str:
    """The text of a ``changelog.Debian.gz``.

    Raises InventoryFormatError naming ``location`` when the data is not gzip.
    """
    try:
        return gzip.decompress(data).decode("utf-8", errors="replace")
    except (OSError, EOFError, zlib.error) as exc:
        raise InventoryFormatError(location, f"not a gzip file ({exc})") from exc


def parse_rpm_changelog_cves(text: str) -> list[str]:
    """The CVE ids ``rpm -q --changelog NAME`` names (sorted).

    An installed rpm's changelog holds only the entries up to its own version (each
    headed ``* Day Mon DD YYYY Packager - version-release``), so every CVE it names was
    dealt with in the installed build.
    """
    return sorted(set(CVE_ID.findall(text)))
