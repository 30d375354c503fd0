"""Cargo lock files: ``Cargo.lock``.

Format: TOML, an optional top-level ``version`` (3 or 4 today) and one ``[[package]]``
table per crate with ``name``, ``version`` and, for crates not in the workspace, a
``source`` (https://doc.rust-lang.org/cargo/guide/cargo-toml-vs-cargo-lock.html; the
schema is cargo's ``EncodableResolve``, src/cargo/core/resolver/encode.rs).

Choices:

* A package without ``source`` is a crate of the workspace itself (or a path
  dependency): the user's own code, skipped without a warning.
* ``registry+…`` and ``sparse+…`` sources (crates.io or another registry) are kept;
  ``git+…`` sources are not registry releases and go to Parsed.warnings.
* A lock file whose only packages are the workspace's crates is genuinely empty; a TOML
  document without ``[[package]]`` and ``version`` is not a Cargo.lock.
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

KIND = "Cargo.lock file"
REGISTRY_PREFIXES = ("registry+", "sparse+")


def parse_cargo_lock(data: bytes, location: str) -> Parsed:
    """The registry crates of a Cargo.lock, and warnings for git ones."""
    document = load_toml(data, location, KIND)
    entries = table_list(document, "package", location, KIND)
    if not entries and "version" not in document:
        raise InventoryFormatError(location, f"no [[package]] or 'version', not a {KIND}")
    packages: list[Package] = []
    warnings: list[str] = []
    for index, entry in enumerate(entries, start=1):
        what = f"[[package]] number {index}"
        name = required_str(entry, "name", location, what)
        version = required_str(entry, "version", location, f"{what} ({name})")
        source = entry.get("source")
        if source is None:
            continue  # a workspace member or path dependency: the user's own crate
        if not isinstance(source, str) or not source.startswith(REGISTRY_PREFIXES):
            warnings.append(f"{location}: {name} {version} comes from {source}, not a "
                            "registry; not checked")
            continue
        packages.append(package("crates.io", name, version, location))
    return Parsed(unique(packages), warnings=tuple(warnings))


class CargoLockSource:
    """A Cargo lock file."""

    name = "cargo"
    file_names: tuple[str, ...] = ("Cargo.lock",)

    def detect(self, name: str, head: bytes) -> bool:
        """By its fixed file name."""
        return name == "Cargo.lock"

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Registry crates as crates.io packages; ``distro`` is ignored."""
        return parse_cargo_lock(data, location)


SOURCE = CargoLockSource()
