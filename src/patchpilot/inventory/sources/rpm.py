"""The rpm database, as ``rpm -qa --queryformat RPM_QUERYFORMAT`` prints it.

Reading the database (BerkeleyDB, NDB or SQLite by release) is left to ``rpm`` itself;
this module only parses its output, one tab-separated line per package.
"""

from __future__ import annotations

import re
from collections import Counter

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.purls import purl_for
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.models import Ecosystem, Package

RPM_QUERYFORMAT = "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n"
"""The ``--queryformat`` argument (rpm expands the ``\\t``/``\\n`` escapes itself).

``EPOCHNUM`` prints 0 for a package without an epoch, where ``EPOCH`` prints ``(none)``.
"""

RPM_QA_COMMAND = ("rpm", "-qa", "--queryformat", RPM_QUERYFORMAT)
"""The command whose standard output ``parse_rpm_qa`` reads."""

_FIELDS = 6


def _source_name(sourcerpm: str) -> str | None:
    """``openssl-3.0.7-24.el9.src.rpm`` -> ``openssl``; ``(none)`` -> None."""
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if sourcerpm.endswith(suffix):
            parts = sourcerpm[: -len(suffix)].rsplit("-", 2)
            return parts[0] if len(parts) == 3 and parts[0] else None
    return None


def _problem(warnings: list[str] | None, where: str, line: int, detail: str) -> None:
    if warnings is None:
        raise InventoryFormatError(where, detail, line=line)
    warnings.append(f"{where}:{line}: {detail}; skipped")


def parse_rpm_qa(text: str, ecosystem: str, location: str | None = None,
                 warnings: list[str] | None = None) -> list[Package]:
    """The packages of an ``rpm -qa --queryformat RPM_QUERYFORMAT`` listing.

    The version is ``epoch:version-release`` when the epoch is not 0, else
    ``version-release`` -- the form rpm's own comparison (and OSV) use.  The
    ``gpg-pubkey`` pseudo-packages (imported signing keys) are skipped.  An empty listing
    is an InventoryFormatError; so is a line without six tab-separated fields (naming the
    line), unless ``warnings`` is given: the line is then added to it and skipped.
    """
    where = location or "rpm -qa"
    if "\x00" in text:
        raise InventoryFormatError(where, "binary data, not an rpm package list")
    if not text.strip():
        raise InventoryFormatError(where, "empty rpm package list")
    packages: list[Package] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != _FIELDS:
            _problem(warnings, where, number, f"expected {_FIELDS} tab-separated fields "
                     f"(name, epoch, version, release, arch, sourcerpm), got {len(fields)}")
            continue
        name, epoch, version, release, arch, sourcerpm = (f.strip() for f in fields)
        if name == "gpg-pubkey":
            continue
        if not name or not version or not release:
            _problem(warnings, where, number, "empty name, version or release")
            continue
        if epoch in ("", "(none)"):
            epoch = "0"
        if not epoch.isdigit():
            _problem(warnings, where, number, f"epoch {epoch!r} is not a number")
            continue
        evr = f"{version}-{release}" if epoch == "0" else f"{epoch}:{version}-{release}"
        arch_or_none = None if arch in ("", "(none)") else arch
        source_name = _source_name(sourcerpm)
        packages.append(Package(
            ecosystem=Ecosystem(ecosystem),
            name=name,
            version=evr,
            arch=arch_or_none,
            source_name=source_name,
            # A source rpm is built once; its binaries share its epoch:version-release.
            source_version=evr if source_name else None,
            purl=purl_for(ecosystem, name, evr, arch=arch_or_none, source_name=source_name),
            location=location,
        ))
    return packages


class RpmSource:
    """The output of ``rpm -qa --queryformat RPM_QUERYFORMAT`` (saved or from SSH)."""

    name = "rpm"
    file_names: tuple[str, ...] = ()

    def detect(self, name: str, head: bytes) -> bool:
        """Tab-separated lines of six fields."""
        first = next((line for line in head.splitlines() if line.strip()), b"")
        return first.count(b"\t") == _FIELDS - 1

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Installed packages of the release ``distro`` (required: rpm lists don't say)."""
        text = data.decode("utf-8", errors="replace")
        warnings: list[str] = []
        packages = parse_rpm_qa(text, distro or "rpm", location, warnings)
        if distro is None:
            raise InventoryFormatError(
                location, "rpm package list: cannot tell the distribution release; "
                          f"{distro_hint(packages)}")
        return Parsed(packages, warnings=tuple(warnings))


# The release tag rpm's dist macro puts in a release (``24.el9``, ``1.fc39``, ``amzn2023``)
# -> what to pass as --distro.  Only a hint: el9 is AlmaLinux, Rocky and RHEL alike.
_DIST_TAG = re.compile(r"\.(el|fc|amzn|mga|ph|azl)(\d+)")
_DIST_HINTS = {"el": "almalinux:{n}, rocky:{n} or rhel:{n} (the host's own)",
               "fc": "fedora:{n}", "amzn": "amzn:{n}", "mga": "mageia:{n}",
               "ph": "photon:{n}.0", "azl": "azurelinux:{n}.0"}


def distro_hint(packages: list[Package]) -> str:
    """What to pass as ``--distro``, from the most common dist tag of the releases."""
    tags = Counter(found.groups() for p in packages
                   if (found := _DIST_TAG.search(p.version.rpartition("-")[2])))
    if not tags:
        return ("pass --distro with the release in the host's /etc/os-release "
                "(ID:VERSION_ID, e.g. almalinux:9)")
    (tag, number), _ = tags.most_common(1)[0]
    return (f"its releases end in .{tag}{number}: pass --distro "
            f"{_DIST_HINTS[tag].format(n=number)}")


SOURCE = RpmSource()
