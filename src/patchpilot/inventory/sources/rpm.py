"""The rpm database, as ``rpm -qa --queryformat RPM_QUERYFORMAT`` prints it.

Reading the database (BerkeleyDB, NDB or SQLite by release) is left to ``rpm`` itself;
this module only parses its output, one tab-separated line per package.
"""

from __future__ import annotations

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


def parse_rpm_qa(text: str, ecosystem: str, location: str | None = None) -> list[Package]:
    """The packages of an ``rpm -qa --queryformat RPM_QUERYFORMAT`` listing.

    The version is ``epoch:version-release`` when the epoch is not 0, else
    ``version-release`` -- the form rpm's own comparison (and OSV) use.  The
    ``gpg-pubkey`` pseudo-packages (imported signing keys) are skipped.  An empty listing
    or a line without six tab-separated fields is an InventoryFormatError naming the line.
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
            raise InventoryFormatError(
                where, f"expected {_FIELDS} tab-separated fields "
                       f"(name, epoch, version, release, arch, sourcerpm), got {len(fields)}",
                line=number)
        name, epoch, version, release, arch, sourcerpm = (f.strip() for f in fields)
        if name == "gpg-pubkey":
            continue
        if not name or not version or not release:
            raise InventoryFormatError(where, "empty name, version or release", line=number)
        if epoch in ("", "(none)"):
            epoch = "0"
        if not epoch.isdigit():
            raise InventoryFormatError(where, f"epoch {epoch!r} is not a number", line=number)
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
        if distro is None:
            raise InventoryFormatError(
                location, "rpm package list: cannot tell the distribution release; "
                          "pass --distro almalinux:9 (or rocky:9, rhel:9)")
        return Parsed(parse_rpm_qa(data.decode("utf-8", errors="replace"), distro, location))


SOURCE = RpmSource()
