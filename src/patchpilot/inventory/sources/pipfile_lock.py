"""Pipenv lock files: ``Pipfile.lock``.

Format: JSON with a ``_meta`` object and one object per package category (``default``,
``develop``, and any custom category, https://pipenv.pypa.io/en/latest/pipfile.html
#package-category-groups), each mapping a name to ``{"version": "==1.2.3", …}``.

Choices:

* Every category is read (develop too: CI machines install it); a name and version in
  two categories is one package.
* An entry without ``version`` (``git``, ``path``, ``file`` or ``editable`` entries) is
  not a PyPI release and is reported in Parsed.warnings, as is a version not written
  ``==x`` (Pipenv always pins so; anything else cannot be matched).
* A lock file whose categories are all empty is genuinely empty.  A JSON object without
  ``_meta``, ``default`` or ``develop`` is not a Pipfile.lock.
"""

from __future__ import annotations

from typing import Any

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources._lockfiles import load_json, package, unique
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.models import Ecosystem, Package

KIND = "Pipfile.lock file"


def parse_pipfile_lock(data: bytes, location: str) -> Parsed:
    """The locked packages of every category of a Pipfile.lock."""
    document = load_json(data, location, KIND)
    if not {"_meta", "default", "develop"} & document.keys():
        raise InventoryFormatError(location, f"no _meta, default or develop object, not a {KIND}")
    packages: list[Package] = []
    warnings: list[str] = []
    for category, entries in document.items():
        if category == "_meta":
            continue
        if not isinstance(entries, dict):
            raise InventoryFormatError(location, f"category {category!r} is not an object")
        for name, entry in entries.items():
            version = _version(entry, location, category, name)
            if version is None:
                warnings.append(f"{location}: {category}/{name} has no pinned version "
                                f"({_origin(entry)}); not checked")
                continue
            packages.append(package("PyPI", name, version, location))
    return Parsed(unique(packages), warnings=tuple(warnings))


def _version(entry: Any, location: str, category: str, name: str) -> str | None:
    if not isinstance(entry, dict):
        raise InventoryFormatError(location, f"{category}/{name} is not an object")
    version = entry.get("version")
    if isinstance(version, str) and version.startswith("==") and version[2:].strip():
        return version.lstrip("=").strip()  # "==1.2" and "===1.2" alike
    return None


def _origin(entry: dict[str, Any]) -> str:
    for key in ("git", "path", "file"):
        if key in entry:
            return f"{key} {entry[key]}"
    return f"version {entry['version']!r}" if "version" in entry else "no version"


class PipfileLockSource:
    """A Pipenv lock file."""

    name = "pipenv"
    file_names: tuple[str, ...] = ("Pipfile.lock",)

    def detect(self, name: str, head: bytes) -> bool:
        """By its fixed file name."""
        return name == "Pipfile.lock" or (
            b'"pipfile-spec"' in head and b'"_meta"' in head)

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Locked packages as PyPI packages; ``distro`` is ignored."""
        return parse_pipfile_lock(data, location)


SOURCE = PipfileLockSource()
