"""Cargo.lock: registry crates; workspace crates skipped; git crates are warnings.

workspace_only.lock was written by ``cargo generate-lockfile --offline`` here (a
workspace of two path crates).  crates.io is not reachable, so many_packages.lock is
hand-written after cargo's format (it says so in its header comment).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.inventory.sources.cargo_lock import SOURCE
from patchpilot.models import Package
from tests.inventory.sources.helpers import format_error, parse_file


def test_many_packages(fixtures: Path) -> None:
    path = fixtures / "cargo-lock" / "many_packages.lock"
    parsed = parse_file(SOURCE, path)
    # "app" (no source) is the workspace's own crate; serde comes from the sparse index.
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("memchr", "2.7.1"), ("regex", "1.10.3"), ("serde", "1.0.196"), ("time", "0.1.45")]
    assert parsed.packages[1] == Package(
        ecosystem="crates.io", name="regex", version="1.10.3", purl="pkg:cargo/regex@1.10.3",
        location=str(path))
    assert parsed.warnings == (
        f"{path}: smallvec 0.6.13 comes from git+https://github.com/servo/rust-smallvec"
        "?branch=v0.6#9a2f5ad6c3e3a8b5c1a7c2b8a0c5bd1d4c52f7a1, not a registry; not checked",)


def test_workspace_only_is_genuinely_empty(fixtures: Path) -> None:
    parsed = parse_file(SOURCE, fixtures / "cargo-lock" / "workspace_only.lock")
    assert (parsed.packages, parsed.warnings) == ([], ())


def test_truncated_fixture(fixtures: Path) -> None:
    error = format_error(SOURCE, (fixtures / "cargo-lock" / "truncated.lock").read_bytes())
    assert (error.detail, error.line) == (
        "invalid TOML: Expected ']]' at the end of an array declaration", 18)


@pytest.mark.parametrize(("data", "detail", "line"), [
    (b"", "empty Cargo.lock file", None),
    (b'[package]\nname = "app"\n', "Cargo.lock file: 'package' is not an array of tables",
     None),
    (b'[workspace]\nmembers = []\n', "no [[package]] or 'version', not a Cargo.lock file",
     None),
    (b'version = 3\n[[package]]\nname = "x"\nsource = "registry+a"\n',
     "[[package]] number 1 (x) without a 'version'", None),
    (b"version = 3\n[[package]]\nname = x\n", "invalid TOML: Invalid value", 3),
])
def test_invalid(data: bytes, detail: str, line: int | None) -> None:
    error = format_error(SOURCE, data)
    assert (error.detail, error.line) == (detail, line)
