"""Poetry lock files: ``poetry.lock``.

Format: TOML, one ``[[package]]`` table per locked distribution with ``name`` and
``version``, and a ``[metadata]`` table (https://python-poetry.org/docs/basic-usage/
#installing-with-poetrylock; the schema is Poetry's own, no separate spec).

Choices:

* A package whose ``[package.source]`` is ``git``, ``directory``, ``file`` or ``url`` is
  not a PyPI release: its version is whatever its own metadata says, and PyPI advisories'
  ranges are not about it.  It is reported in Parsed.warnings, not as a package.  A
  ``legacy`` source (a private or mirror index) serves ordinary releases and is kept.
* Development and optional groups (``category = "dev"``, ``optional = true``) are kept:
  the lock file says they may be installed, and CI machines install them.
* A lock file with a ``[metadata]`` table and no ``[[package]]`` (a project without
  dependencies) is genuinely empty.  Poetry writes ``[metadata]`` last, so a file
  without it may have been cut between two tables: its packages are kept (osv-scalibr's
  trimmed fixtures lack it too) with a warning saying so.  A TOML document with neither
  table is not a Poetry lock file; an empty file is an error (see _lockfiles.decode).
"""

from __future__ import annotations

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources._lockfiles import (
    load_toml,
    package,
    required_str,
    table_list,
    unique,
)
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.models import Ecosystem, Package

KIND = "poetry.lock file"
# Source types whose packages do not come from a package index.
NOT_FROM_AN_INDEX = frozenset({"git", "directory", "file", "url"})


def parse_poetry_lock(data: bytes, location: str) -> Parsed:
    """The locked packages of a poetry.lock, and warnings for those not from an index."""
    document = load_toml(data, location, KIND)
    entries = table_list(document, "package", location, KIND)
    if not entries and "metadata" not in document:
        raise InventoryFormatError(location, f"no [[package]] or [metadata] table, not a {KIND}")
    packages: list[Package] = []
    warnings: list[str] = []
    for index, entry in enumerate(entries, start=1):
        what = f"[[package]] number {index}"
        name = required_str(entry, "name", location, what)
        version = required_str(entry, "version", location, f"{what} ({name})")
        source = entry.get("source")
        if isinstance(source, dict) and source.get("type") in NOT_FROM_AN_INDEX:
            warnings.append(f"{location}: {name} {version} comes from a {source['type']} source "
                            f"({source.get('url', '?')}), not a package index; not checked")
            continue
        packages.append(package("PyPI", name, version, location))
    if "metadata" not in document:
        # Poetry writes [metadata] last: without it the file may have been cut short
        # between two tables, which TOML cannot notice.
        warnings.append(f"{location}: no [metadata] table; the file may be truncated")
    return Parsed(unique(packages), warnings=tuple(warnings))


class PoetryLockSource:
    """A Poetry lock file."""

    name = "poetry"
    file_names: tuple[str, ...] = ("poetry.lock",)

    def detect(self, name: str, head: bytes) -> bool:
        """By its fixed file name."""
        return name == "poetry.lock"

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Locked packages as PyPI packages; ``distro`` is ignored."""
        return parse_poetry_lock(data, location)


SOURCE = PoetryLockSource()
