"""uv lock files: ``uv.lock``.

Format: TOML with a top-level ``version`` and one ``[[package]]`` table per locked
distribution, each with ``name``, ``version`` and a ``source`` inline table saying where
it comes from (https://docs.astral.sh/uv/concepts/projects/layout/#the-lockfile,
https://docs.astral.sh/uv/concepts/resolution/#lockfile-format).

Choices:

* ``source = { registry = … }`` packages are index releases and become packages.
* ``virtual`` and ``editable`` sources are the project itself and its workspace members:
  not third-party code, skipped without a warning.
* ``git``, ``url``, ``path`` and ``directory`` sources are not index releases; PyPI
  advisories' ranges are not about them.  They go to Parsed.warnings.
* A ``[[package]]`` without ``source`` (older lock files, hand-edited ones) is read as an
  index release when it has a version and an sdist or wheels -- not refused -- and
  counted in one warning; without those it is the project or a local folder (a warning); early
  uv wrote the source as a string (``"registry+https://pypi.org/simple"``), read alike.
* A lock file with only the project (no dependencies) is genuinely empty; a TOML document
  without ``version`` and ``[[package]]`` is not a uv.lock; an empty file is an error.
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

KIND = "uv.lock file"
PROJECT_SOURCES = frozenset({"virtual", "editable"})
NOT_FROM_AN_INDEX = ("git", "url", "path", "directory")


def parse_uv_lock(data: bytes, location: str) -> Parsed:
    """The locked registry packages of a uv.lock, and warnings for other sources."""
    document = load_toml(data, location, KIND)
    entries = table_list(document, "package", location, KIND)
    if "version" not in document and not entries:
        raise InventoryFormatError(location, f"no 'version' or [[package]], not a {KIND}")
    packages: list[Package] = []
    warnings: list[str] = []
    without_source: list[str] = []
    for index, entry in enumerate(entries, start=1):
        what = f"[[package]] number {index}"
        name = required_str(entry, "name", location, what)
        source = entry.get("source")
        if isinstance(source, str) and "+" in source:
            kind, _, where = source.partition("+")
            source = {kind: where}
        if not isinstance(source, dict) or not source:
            if not isinstance(entry.get("version"), str) or not entry["version"].strip():
                warnings.append(f"{location}: {what} ({name}) has neither a source nor a "
                                "version; skipped")
                continue
            if "sdist" not in entry and "wheels" not in entry:
                # No archive to download: the project itself or a local folder.
                warnings.append(f"{location}: {what} ({name}) has no source and no sdist "
                                "or wheels (the project itself?); not checked")
                continue
            without_source.append(f"{name} {entry['version'].strip()}")
            source = {"registry": "(none given)"}
        if PROJECT_SOURCES & source.keys():
            continue  # the project or a workspace member: its own code
        if "registry" not in source:
            kind = next((k for k in NOT_FROM_AN_INDEX if k in source), next(iter(source)))
            warnings.append(f"{location}: {name} comes from a {kind} source "
                            f"({source[kind]}), not a package index; not checked")
            continue
        version = entry.get("version")
        if not isinstance(version, str) or not version.strip():
            warnings.append(f"{location}: {what} ({name}) without a 'version'; skipped")
            continue
        packages.append(package("PyPI", name, version.strip(), location))
    if without_source:
        shown = ", ".join(without_source[:10])
        more = f" and {len(without_source) - 10} more" if len(without_source) > 10 else ""
        warnings.append(f"{location}: {len(without_source)} [[package]] without a 'source' "
                        f"read as PyPI releases: {shown}{more}")
    return Parsed(unique(packages), warnings=tuple(warnings))


class UvLockSource:
    """A uv lock file."""

    name = "uv"
    file_names: tuple[str, ...] = ("uv.lock",)

    def detect(self, name: str, head: bytes) -> bool:
        """By its fixed file name."""
        # By name, or by content: uv.lock opens with its format version and the
        # project's requires-python, then [[package]] tables with a source table.
        return name == "uv.lock" or name.endswith(".lock") and (
            head.startswith(b"version = ") and b"requires-python" in head[:400])

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Locked registry packages as PyPI packages; ``distro`` is ignored."""
        return parse_uv_lock(data, location)


SOURCE = UvLockSource()
