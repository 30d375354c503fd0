"""The contract of an inventory source: a pure parser of one kind of file.

A source never reads files or runs commands itself (transports do that); it is given the
bytes and says what packages they list.  Each module defines ``SOURCE`` and is named in
``registry.SOURCES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from patchpilot.models import Ecosystem, OsRelease, Package


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one file says: its packages and, where the format tells, the OS."""

    packages: list[Package]
    os: OsRelease | None = None
    warnings: tuple[str, ...] = field(default=())


class InventorySource(Protocol):
    """A kind of file that lists packages: a package database, a lock file, an SBOM."""

    name: str  # the --type value: "dpkg", "npm", "cyclonedx", …
    # File names this source is found under when a directory is walked ("package-lock.json",
    # "*.cdx.json"); empty for files only ever named explicitly (a dpkg status dump).
    file_names: tuple[str, ...]

    def detect(self, name: str, head: bytes) -> bool:
        """Whether a file called ``name`` whose first 8 KiB are ``head`` is of this kind."""
        ...

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """The packages in ``data``; ``distro`` is the release OS package lists belong to.

        Raises InventoryFormatError naming ``location`` (and the line) for input that is
        not of this kind at all (empty, binary, unparseable as a whole); one line or entry
        it cannot read is skipped with a warning naming ``location:line`` and why, and
        nothing that names code is dropped without a warning.  Never returns an empty list
        for a file that is not genuinely empty of packages.
        """
        ...
