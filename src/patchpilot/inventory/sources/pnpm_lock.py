"""pnpm lock files: ``pnpm-lock.yaml``.

Format: YAML with ``lockfileVersion`` and a ``packages`` map keyed by package
(https://github.com/pnpm/spec/tree/master/lockfile).  The key spelling changed:

* 5.x: ``/name/1.2.3`` and ``/@scope/name/1.2.3``, peers appended as ``_react@18.2.0``;
* 6.x: ``/name@1.2.3``, peers appended as ``(react@18.2.0)``;
* 9.x: ``name@1.2.3`` (peers only in the separate ``snapshots`` map).

Choices:

* Peer suffixes are stripped: the same package built against two peers is one package.
* A key whose version part is not a version (``github.com/…``, ``file:…``,
  ``name@https://…``) names code that is not a registry release: it goes to
  Parsed.warnings.  Workspace projects are in ``importers``, not ``packages``, so they
  are never reported.
* A lock file without ``packages`` (a project without dependencies) is genuinely empty;
  a YAML document without ``lockfileVersion`` is not a pnpm lock file.
"""

from __future__ import annotations

import re
from typing import Any

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources._lockfiles import load_yaml, package, unique
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.models import Ecosystem, Package

KIND = "pnpm-lock.yaml file"
_VERSION = re.compile(r"^\d+\.\d+\.\d+[0-9A-Za-z.+-]*$")


def split_key(key: str, lockfile_version: float) -> tuple[str, str]:
    """``(name, version)`` of a ``packages`` key, peer suffix removed.

    >>> split_key("/@types/node/20.11.0", 5.4)
    ('@types/node', '20.11.0')
    >>> split_key("/react-dom@18.2.0(react@18.2.0)", 6.0)
    ('react-dom', '18.2.0')
    """
    key = key.split("(", 1)[0]  # 6.x/9.x peers: (react@18.2.0)(…)
    if lockfile_version < 6:
        name, _, version = key.lstrip("/").rpartition("/")
        return name, version.split("_", 1)[0]  # 5.x peers: _react@18.2.0+…
    key = key.removeprefix("/")
    at = key.find("@", 1)  # not a scope's leading "@"
    if at < 0:
        return key, ""
    return key[:at], key[at + 1:]


def parse_pnpm_lock(data: bytes, location: str) -> Parsed:
    """The installed packages of a pnpm-lock.yaml (lockfile versions 5, 6 and 9)."""
    document: Any = load_yaml(data, location, KIND)
    if not isinstance(document, dict) or "lockfileVersion" not in document:
        raise InventoryFormatError(location, f"no lockfileVersion, not a {KIND}")
    raw_version = document["lockfileVersion"]
    # 5.4 is a YAML float; '6.0', '9.0' and pnpm 7's '5.4-inlineSpecifiers' are strings.
    number = re.match(r"\d+(?:\.\d+)?", str(raw_version))
    if number is None:
        raise InventoryFormatError(
            location, f"lockfileVersion {raw_version!r} is not a number")
    lockfile_version = float(number.group())
    entries = document.get("packages") or {}
    if not isinstance(entries, dict):
        raise InventoryFormatError(location, "'packages' is not a mapping")
    packages: list[Package] = []
    warnings: list[str] = []
    for key, entry in entries.items():
        name, version = split_key(str(key), lockfile_version)
        if not name or not _VERSION.match(version):
            # A git, tarball or local dependency: the key holds its URL or path, the entry
            # (when pnpm wrote one) its own name and version.
            if isinstance(entry, dict) and "version" in entry:
                warnings.append(f"{location}: {entry.get('name') or name}@{entry['version']} "
                                f"comes from {key}, not the npm registry; not checked")
                continue
            warnings.append(f"{location}: packages key {key!r} names no version; skipped")
            continue
        packages.append(package("npm", name, version, location))
    return Parsed(unique(packages), warnings=tuple(warnings))


class PnpmLockSource:
    """A pnpm lock file."""

    name = "pnpm"
    file_names: tuple[str, ...] = ("pnpm-lock.yaml",)

    def detect(self, name: str, head: bytes) -> bool:
        """By its fixed file name."""
        return name == "pnpm-lock.yaml" or name.endswith((".yaml", ".yml")) and (
            head.lstrip().startswith(b"lockfileVersion:"))

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Installed packages as npm packages; ``distro`` is ignored."""
        return parse_pnpm_lock(data, location)


SOURCE = PnpmLockSource()
