"""Read an inventory from a file or a folder (``patchpilot scan file PATH``).

A file's kind is told by the inventory sources of ``sources.registry`` (by name and
content: a dpkg status file, an rpm list, an apk database, a lock file, an SBOM) or an
Inventory JSON document (schema 1); ``--type`` forces a kind.  A folder is walked for the
lock files and SBOMs it holds (never into ``node_modules``, ``.git`` or virtualenvs).

A file (or folder) from which no package could be read is refused, with why: an SBOM
without components or whose components have no purl, a lock file of git/local sources
only, and also a lock file that truly lists no dependency.  An inventory is an asset's
whole package list; an empty one would mark every finding of the asset fixed, and a
lock file with nothing in it tells nothing about what runs.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import Collector, Inventory, OsInfo
from patchpilot.inventory.sources.dpkg import guess_debian_release
from patchpilot.inventory.sources.interface import InventorySource, Parsed
from patchpilot.inventory.sources.pip_requirements import looks_like_requirements
from patchpilot.inventory.sources.registry import SOURCES, SOURCES_BY_NAME
from patchpilot.knowledge.ecosystems import ecosystem_for_os, normalize_ecosystem, scheme_of
from patchpilot.models import Ecosystem, OsRelease, Package

__all__ = ["UNKNOWN_CONTENT", "guess_debian_release", "kind_of", "parse_distro",
           "read_inventory_bytes", "read_inventory_file", "read_path"]

UNKNOWN_CONTENT = ("not a package database, lock file, SBOM or inventory JSON PatchPilot "
                   "knows (see --type)")
HEAD_BYTES = 8192
_SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", "vendor",
              "target", "dist", "build", ".mypy_cache", ".pytest_cache"}


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


def kind_of(name: str, head: bytes) -> str | None:
    """``json`` (an Inventory document), a source's name, or None (pure)."""
    if head.lstrip().startswith(b"{") and b'"schema"' in head and b'"collector"' in head:
        return "json"
    for source in SOURCES:
        if source.detect(name, head):
            return source.name
    return None


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InventoryFormatError(path, f"cannot read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise InventoryFormatError(path, "empty file")
    return data


def _parse_data(data: bytes, name: str, location: str, distro: Ecosystem | None,
                source: InventorySource | None) -> Parsed | Inventory:
    """What ``data`` (a file called ``name``, errors naming ``location``) says."""
    head = data[:HEAD_BYTES]
    if source is None:
        if b"\x00" in head and not head.startswith(b"PK"):
            raise InventoryFormatError(location, f"binary data, {UNKNOWN_CONTENT}")
        kind = kind_of(name, head)
        if kind == "json":
            return Inventory.from_json(data, location)
        if kind is None:
            raise InventoryFormatError(location, UNKNOWN_CONTENT)
        source = SOURCES_BY_NAME[kind]
    return source.parse(data, location, distro)


def _parse_file(path: Path, distro: Ecosystem | None, source: InventorySource | None
                ) -> Parsed | Inventory:
    return _parse_data(_read(path), path.name, str(path), distro, source)


def read_inventory_file(
    path: Path | str,
    ecosystem: str | None = None,
    *,
    hostname: str | None = None,
    source_type: str | None = None,
) -> Inventory:
    """The Inventory a file holds or describes.

    ``ecosystem`` (``Debian:12``, or a ``--distro`` spelling like ``debian:12``) is the
    release OS packages belong to; without it a dpkg or apk file's release is read from
    its packages' versions (the inference is one of the warnings), an rpm list needs it.
    A line a source cannot read is a warning of the Inventory, not an error.
    ``hostname`` names the asset (a package list does not say whose it is).
    ``source_type`` forces a kind (``--type``).  An Inventory JSON carries its own
    ecosystems and identity; the other arguments are then ignored.

    Raises InventoryFormatError naming the file for unreadable, empty, binary or unknown
    content, for content from which no package could be read, and for a release that must
    be passed with ``--distro``.
    """
    return read_path(Path(path), ecosystem, hostname=hostname, source_type=source_type)


def _source_named(source_type: str | None) -> InventorySource | None:
    if source_type is None:
        return None
    try:
        return SOURCES_BY_NAME[source_type]
    except KeyError:
        raise InventoryFormatError(
            "--type", f"unknown type {source_type!r}; known: "
                      f"{', '.join(sorted(SOURCES_BY_NAME))}") from None


def _walk(root: Path) -> list[tuple[Path, InventorySource]]:
    """Files under ``root`` that a source is found under by name (lock files, SBOMs), and
    ``.txt`` files whose content is a pip requirements file (``requirements/base.txt``)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            for source in SOURCES:
                if any(fnmatch.fnmatchcase(name, pattern) for pattern in source.file_names
                       if pattern not in ("status", "installed")):
                    found.append((path, source))
                    break
            else:
                if name.endswith(".txt") and _requirements_by_content(path):
                    found.append((path, SOURCES_BY_NAME["pip"]))
    return found


def _requirements_by_content(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError:
        return False
    return looks_like_requirements(head)


def read_path(
    path: Path,
    ecosystem: str | None = None,
    *,
    hostname: str | None = None,
    source_type: str | None = None,
) -> Inventory:
    """The Inventory of a file, or of every lock file and SBOM under a folder."""
    distro = parse_distro(ecosystem) if ecosystem else None
    forced = _source_named(source_type)
    if path.is_dir():
        files = _walk(path)
        if forced is not None:
            files = [(p, forced) for p, s in files if s is forced]
        if not files:
            raise InventoryFormatError(path, "no lock file or SBOM found in this folder")
        parts = [(p, s.parse(_read(p), str(p), distro)) for p, s in files]
    else:
        parsed = _parse_file(path, distro, forced)
        if isinstance(parsed, Inventory):
            return parsed
        parts = [(path, parsed)]
    return _assemble([parsed for _, parsed in parts], hostname, str(path))


def read_inventory_bytes(
    data: bytes,
    name: str,
    ecosystem: str | None = None,
    *,
    hostname: str | None = None,
    source_type: str | None = None,
) -> Inventory:
    """The Inventory an uploaded file (the dashboard's upload form) holds or describes.

    As :func:`read_inventory_file` for a file called ``name`` whose content is ``data``:
    the kind is told by the same sources, and errors name ``name`` (a file from which
    no package could be read is refused).
    """
    if not data.strip():
        raise InventoryFormatError(name, "empty file")
    distro = parse_distro(ecosystem) if ecosystem else None
    parsed = _parse_data(data, name, name, distro, _source_named(source_type))
    if isinstance(parsed, Inventory):
        return parsed
    return _assemble([parsed], hostname, name)


def _assemble(parts: list[Parsed], hostname: str | None, location: str) -> Inventory:
    """One Inventory of the packages (and the OS, if one part tells it) of ``parts``.

    Raises InventoryFormatError naming ``location`` when no part yields a package (the
    sources' warnings say why, e.g. components without a purl).
    """
    packages: list[Package] = []
    os_release: OsRelease | None = None
    warnings: list[str] = []
    for parsed in parts:
        packages.extend(parsed.packages)
        os_release = os_release or parsed.os
        warnings.extend(parsed.warnings)
    if not packages:
        why = "; ".join(w.removeprefix(f"{location}: ") for w in warnings[:3])
        raise InventoryFormatError(
            location, "no package could be read from it" + (f" ({why})" if why else "")
            + "; an inventory without packages would mark every finding of the asset "
              "fixed, so it is not used")
    return Inventory.from_packages(
        packages,
        asset={"hostname": hostname},
        os=OsInfo.from_os_release(os_release) if os_release else None,
        collector=Collector(name="file"),
        warnings=warnings,
    )
