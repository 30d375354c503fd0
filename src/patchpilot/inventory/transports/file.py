"""Read an inventory from a file (``patchpilot scan file PATH``).

The file's kind is told from its content, not its name: a dpkg status file (or a
distroless status.d file), an ``rpm -qa --queryformat RPM_QUERYFORMAT`` dump, an apk
installed database, or an Inventory JSON document (schema 1).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import Collector, Inventory
from patchpilot.inventory.sources.apk import parse_apk_installed
from patchpilot.inventory.sources.dpkg import parse_dpkg_status
from patchpilot.inventory.sources.rpm import parse_rpm_qa
from patchpilot.knowledge.ecosystems import ecosystem_for_os, normalize_ecosystem, scheme_of
from patchpilot.models import Ecosystem, OsRelease, Package

UNKNOWN_CONTENT = "not a dpkg status, rpm list, apk database or inventory JSON"

_DEB_MARKER = re.compile(r"[+~]deb(\d+)u\d+")
_DPKG_FIELD = re.compile(r"^Package:", re.MULTILINE)
_DPKG_STATUS = re.compile(r"^Status:", re.MULTILINE)
_APK_FIELD = re.compile(r"^P:\S", re.MULTILINE)
_APK_VERSION = re.compile(r"^V:\S", re.MULTILINE)


def parse_distro(value: str) -> Ecosystem:
    """The ecosystem a ``--distro`` option names: ``debian:12``, ``Debian:12``,
    ``ubuntu:22.04``, ``almalinux:9.3``, ``alpine:3.18``, ``debian:bookworm``.

    Raises InventoryFormatError when it names no distribution PatchPilot knows.
    """
    distro, _, release = value.strip().partition(":")
    known = ecosystem_for_os(OsRelease(id=distro.lower(), version_id=release or None))
    if known is None:
        # The OSV spelling ("Rocky Linux:9", "Red Hat:9") rather than an os-release ID.
        known = normalize_ecosystem(value)
        if scheme_of(known) not in ("dpkg", "rpm", "apk"):
            raise InventoryFormatError(
                "--distro", f"unknown distribution {value!r} (try debian:12, "
                            "ubuntu:22.04, almalinux:9, rocky:9, alpine:3.18)")
    if ":" not in known or known.endswith(":"):
        raise InventoryFormatError("--distro", f"{value!r} names no release (e.g. debian:12)")
    return known


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


def _need_distro(path: Path, kind: str, example: str) -> InventoryFormatError:
    return InventoryFormatError(
        path, f"{kind}: cannot tell the distribution release from the packages; "
              f"pass --distro {example}")


def kind_of(text: str) -> str | None:
    """``json``, ``dpkg``, ``rpm``, ``apk`` or None, told from the content (pure)."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return "json"
    if _DPKG_FIELD.search(text):
        return "dpkg"
    if _APK_FIELD.search(text) and _APK_VERSION.search(text):
        return "apk"
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.count("\t") == 5:
        return "rpm"
    return None


def read_inventory_file(
    path: Path | str,
    ecosystem: str | None = None,
    *,
    hostname: str | None = None,
) -> Inventory:
    """The Inventory a file holds or describes.

    ``ecosystem`` (``Debian:12``, or a ``--distro`` spelling like ``debian:12``) is the
    release the packages belong to.  For a dpkg file without it, the release is guessed
    with ``guess_debian_release``; an rpm or apk list needs it.  ``hostname`` names the
    asset (a package list does not say whose it is).  An Inventory JSON carries its own
    ecosystems and identity; both arguments are then ignored.

    Raises InventoryFormatError naming the file for unreadable, empty, binary or unknown
    content, and for a release that must be passed with ``--distro``.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InventoryFormatError(path, f"cannot read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise InventoryFormatError(path, "empty file")
    if b"\x00" in data:
        raise InventoryFormatError(path, f"binary data, {UNKNOWN_CONTENT}")
    text = data.decode("utf-8", errors="replace")
    kind = kind_of(text)
    if kind == "json":
        return Inventory.from_json(data, str(path))
    if kind is None:
        raise InventoryFormatError(path, UNKNOWN_CONTENT)
    release = parse_distro(ecosystem) if ecosystem else None
    location = str(path)
    packages: list[Package]
    if kind == "dpkg":
        # A status.d file from a distroless image may have no Status field at all.
        assume_installed = _DPKG_STATUS.search(text) is None
        packages = parse_dpkg_status(text, release or "Debian", location,
                                     assume_installed=assume_installed)
        if release is None:
            guessed = guess_debian_release(packages)
            if guessed is None:
                raise _need_distro(path, "dpkg status", "debian:12 (or ubuntu:22.04)")
            # Parse again so every Package (and purl) carries the release.
            packages = parse_dpkg_status(text, guessed, location,
                                         assume_installed=assume_installed)
    elif release is None:
        raise _need_distro(path, f"{kind} package list",
                           "almalinux:9" if kind == "rpm" else "alpine:3.18")
    elif kind == "rpm":
        packages = parse_rpm_qa(text, release, location)
    else:
        packages = parse_apk_installed(text, release, location)
    return Inventory.from_packages(
        packages,
        asset={"hostname": hostname},
        collector=Collector(name="file"),
    )
