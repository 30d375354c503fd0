"""Fuzz every inventory source of the registry: bad input only ever raises InventoryFormatError.

An inventory file comes from a host, an upload or a CI job: truncated, re-encoded, edited
by hand.  A parser that answers with a ``KeyError`` or ``AttributeError`` turns that into a
500 or a dead collection run; the contract (``InventorySource.parse``) is an
``InventoryFormatError`` naming the file.  The tests iterate the registry, so a new source
is fuzzed as soon as it is registered (and ``test_every_source_has_seeds`` asks for its
real seed files).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources.interface import InventorySource
from patchpilot.inventory.sources.registry import SOURCES, SOURCES_BY_NAME
from patchpilot.models import Ecosystem
from tests.fuzz.conftest import FUZZ, load_seeds, mutated, random_input

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# The real files each source reads (globs under ../shared/data, or this repository's
# tests/fixtures for formats the shared data lacks), as the source's own tests use them.
SEEDS: dict[str, tuple[str, ...]] = {
    "dpkg": ("inventories/dpkg-status/*",),
    "apk": ("inventories/apk-installed/*",),
    "rpm": (),  # no captured rpm -qa list exists in the data: RPM_SEED below
    "pip": ("inventories/pip-requirements/*",),
    "poetry": ("inventories/poetry-lock/*",),
    "pipenv": ("inventories/pipfile-lock/*",),
    "uv": ("inventories/uv-lock/*",),
    "npm": ("inventories/npm-package-lock/*",),
    "yarn": ("fixtures:yarn-lock/*",),
    "pnpm": ("inventories/pnpm-lock/*",),
    "gomod": ("inventories/go-mod/*",),
    "maven": ("inventories/maven-pom/*",),
    "cargo": ("inventories/cargo-lock/*",),
    "cyclonedx": ("inventories/cyclonedx/*",),
    "spdx": ("inventories/spdx/*",),
    "syft": ("inventories/syft-json/*",),
}

# ``rpm -qa --queryformat`` output as the SSH transport asks for it (tab-separated name,
# epoch, version, release, arch, source rpm), the lines tests/inventory/test_file.py uses.
RPM_SEED = (b"bash\t0\t5.1.8\t6.el9_1\tx86_64\tbash-5.1.8-6.el9_1.src.rpm\n"
            b"gpg-pubkey\t0\t3abb34f8\t5ffd890e\t(none)\t(none)\n"
            b"openssl-libs\t1\t3.0.7\t24.el9\tx86_64\topenssl-3.0.7-24.el9.src.rpm\n")

# OS package lists need the release they belong to (the file does not say); None is also
# tried, which must be the clear "pass --distro" error.
DISTROS: dict[str, Ecosystem] = {"dpkg": Ecosystem("Debian:12"),
                                  "apk": Ecosystem("Alpine:3.18"),
                                  "rpm": Ecosystem("Rocky Linux:9")}

_seed_cache: dict[str, list[tuple[str, bytes]]] = {}


def seeds_of(name: str, shared_data: Path) -> list[tuple[str, bytes]]:
    """(file name, bytes) of the real seed files of source ``name`` (read once)."""
    if name not in _seed_cache:
        found: list[tuple[str, bytes]] = []
        for pattern in SEEDS[name]:
            if pattern.startswith("fixtures:"):
                found += load_seeds(FIXTURES, (pattern.removeprefix("fixtures:"),))
            else:
                found += load_seeds(shared_data, (pattern,))
        if name == "rpm":
            found.append(("rpm-qa.txt", RPM_SEED))
        _seed_cache[name] = found
    return _seed_cache[name]


def parse_or_format_error(source: InventorySource, data: bytes, location: str,
                          distro: Ecosystem | None) -> None:
    """Parse ``data``; an InventoryFormatError naming ``location`` is the one allowed error."""
    try:
        parsed = source.parse(data, location, distro)
    except InventoryFormatError as exc:
        assert exc.path == location  # the error names the file it is about
        return
    # What a parser returns is well-formed: packages with a name and a version.
    for package in parsed.packages:
        assert package.name and package.version, package


def test_every_source_has_seeds(shared_data: Path) -> None:
    # A source added to the registry is fuzzed automatically; it must name its real files.
    assert set(SEEDS) == set(SOURCES_BY_NAME)
    for name in SEEDS:
        assert seeds_of(name, shared_data), f"no real seed file for source {name}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
@FUZZ
@given(data=random_input(), with_distro=st.booleans())
def test_random_input_raises_only_format_errors(source: InventorySource, data: bytes,
                                                with_distro: bool) -> None:
    parse_or_format_error(source, data, "random-input",
                          DISTROS.get(source.name) if with_distro else None)


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
@FUZZ
@given(draw=st.data())
def test_mutated_real_input_raises_only_format_errors(source: InventorySource,
                                                      shared_data: Path,
                                                      draw: st.DataObject) -> None:
    seeds = seeds_of(source.name, shared_data)
    name, seed = draw.draw(st.sampled_from(seeds), label="seed")
    data = draw.draw(mutated(seed), label="mutated")
    parse_or_format_error(source, data, name, DISTROS.get(source.name))
