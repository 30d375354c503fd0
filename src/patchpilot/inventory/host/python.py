"""Python distributions on a host: the output of ``commands.PYTHON_SITES`` and the
METADATA headers it points to (pure parsers).

Two steps, each one command or batch read on the host (see ``inventory.collect``):
which site-packages folders exist (those of every interpreter on PATH, found from its
install prefix and version without running it, the distribution's own folders, and the
virtualenvs a user names) with the ``*.dist-info`` / ``*.egg-info`` entries they hold,
then the core-metadata headers of each entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.purls import purl_for
from patchpilot.inventory.sources.python import ECOSYSTEM as PYPI
from patchpilot.inventory.sources.python import parse_dist_dir_name, parse_metadata
from patchpilot.models import Ecosystem, Package, PackageOwner


@dataclass(frozen=True, slots=True)
class DistEntry:
    """One ``*.dist-info`` / ``*.egg-info`` entry of a site-packages folder."""

    site_dir: str
    name: str  # the entry's own name: requests-2.31.0.dist-info
    is_dir: bool

    @property
    def path(self) -> str:
        """The entry itself: what an OS package's file list names when it owns it."""
        return f"{self.site_dir}/{self.name}"

    @property
    def metadata_path(self) -> str:
        """The file holding the core metadata: METADATA in a dist-info, PKG-INFO in a
        setuptools egg-info folder, the entry itself for a distutils egg-info file."""
        entry = f"{self.site_dir}/{self.name}"
        if self.name.endswith(".dist-info"):
            return f"{entry}/METADATA"
        return f"{entry}/PKG-INFO" if self.is_dir else entry


@dataclass(frozen=True, slots=True)
class PythonSites:
    """What ``commands.PYTHON_SITES`` found, each folder resolved (symlinks followed).

    ``site_dirs``: every site-packages folder once, the interpreters' first (in PATH
    order), then the distribution's own folders, then the user's; ``entries``: their
    dist-info / egg-info entries, by folder and name (pip's ``~name`` leftovers of an
    uninstall left out); ``interpreters``: the real path of each interpreter found;
    ``missing``: user-named paths that are not folders.
    """

    site_dirs: list[str] = field(default_factory=list)
    entries: list[DistEntry] = field(default_factory=list)
    interpreters: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def parse_python_sites(text: str) -> PythonSites:
    """The folders and entries in ``commands.PYTHON_SITES``'s output.

    Its lines are tab-separated: ``interp PATH`` (an interpreter on PATH, in PATH order)
    followed by a ``dir DIR`` line for each of its folders; ``site DIR`` (the
    distribution's own); ``path DIR`` and ``missing ARG`` (the user's paths); after the
    first line naming a folder, ``d PATH`` / ``f PATH`` for each entry (folder or file).
    """
    interpreter_dirs: list[str] = []
    interpreters: list[str] = []
    system: list[str] = []
    given: list[str] = []
    missing: list[str] = []
    entries: list[DistEntry] = []
    by_kind = {"interp": interpreters, "dir": interpreter_dirs, "site": system,
               "path": given, "missing": missing}
    for line in text.splitlines():
        kind, _, value = line.partition("\t")
        if not value:
            continue
        if kind in by_kind:
            by_kind[kind].append(value)
        elif kind in ("d", "f"):
            entry = PurePosixPath(value)
            if entry.name.startswith("~"):
                continue  # pip's temporary rename during an uninstall, not an installation
            if entry.name.endswith((".dist-info", ".egg-info")):
                entries.append(DistEntry(str(entry.parent), entry.name, kind == "d"))
    return PythonSites(site_dirs=list(dict.fromkeys(interpreter_dirs + system + given)),
                       entries=sorted(set(entries), key=lambda e: (e.site_dir, e.name)),
                       interpreters=interpreters, missing=missing)


def packages_from_metadata(entries: Sequence[DistEntry], texts: Sequence[str | None],
                           warnings: list[str],
                           owners: Mapping[str, PackageOwner] | None = None) -> list[Package]:
    """The distributions ``entries`` hold, ``texts`` being each one's metadata headers
    (None: unreadable), each (name, version, folder) once.

    ``owners``: the OS package owning an entry, by the entry's path (``DistEntry.path``);
    a distribution two entries describe (Debian ships both ``cryptography.egg-info`` and
    ``cryptography-38.0.4.dist-info``) is owned when either entry is.

    A metadata file without Name or Version, or one that cannot be read, falls back to
    its entry's name (``name-version.dist-info``); failing that the entry is skipped with
    a warning naming the file.
    """
    packages: dict[tuple[str, str, str], Package] = {}
    for entry, text in zip(entries, texts, strict=True):
        path = entry.metadata_path
        try:
            if text is None:
                raise InventoryFormatError(path, "cannot be read")
            name, version = parse_metadata(text, path)
        except InventoryFormatError as exc:
            fallback = parse_dist_dir_name(entry.name)
            if fallback is None:
                warnings.append(f"skipped {path}: {exc.detail}")
                continue
            name, version = fallback
        owner = (owners or {}).get(entry.path)
        key = (name, version, entry.site_dir)
        if key in packages and (owner is None or packages[key].owner is not None):
            continue
        packages[key] = Package(
            ecosystem=Ecosystem(PYPI), name=name, version=version,
            purl=purl_for(PYPI, name, version), location=entry.site_dir, owner=owner)
    return list(packages.values())
