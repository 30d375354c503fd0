"""Cargo.lock: registry crates; workspace crates skipped; git crates are warnings.

The lock files are real: cargo wrote them in the test suites of osv-scalibr, osv-scanner
and syft (../shared/data/inventories/cargo-lock/).  None of them holds a git or
sparse-index crate, so those two cases are the short inline lock files below.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.inventory.sources.cargo_lock import SOURCE
from patchpilot.models import Package
from tests.inventory.sources.helpers import format_error, parse_file


@pytest.fixture(scope="module")
def cargo(inventories: Path) -> Path:
    """The folder of real Cargo.lock files."""
    return inventories / "cargo-lock"


def test_version_4_lock_skips_the_workspace_crate(cargo: Path) -> None:
    path = cargo / "osv-scanner__deprecated-vuln__Cargo.lock"
    parsed = parse_file(SOURCE, path)
    # rust_vuln_deprecated 0.1.0 has no source: it is the project itself, not a crate.
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("cfg-if", "0.1.10"), ("libc", "0.2.177"), ("net2", "0.2.33"), ("winapi", "0.3.9"),
        ("winapi-i686-pc-windows-gnu", "0.4.0"), ("winapi-x86_64-pc-windows-gnu", "0.4.0")]
    assert parsed.packages[2] == Package(
        ecosystem="crates.io", name="net2", version="0.2.33", purl="pkg:cargo/net2@0.2.33",
        location=str(path))
    assert parsed.warnings == ()


@pytest.mark.parametrize(("name", "expected"), [
    # version = 4, the project real-vuln-rust-project skipped
    ("osv-scalibr__real-rust-project__Cargo.lock",
     [("maybe-uninit", "2.0.0"), ("smallvec", "0.6.14")]),
    # no version line at all: the lock format cargo wrote before version = 3
    ("syft__pkg-coverage__Cargo.lock",
     [("memchr", "2.3.3"), ("nom", "4.2.3"), ("version_check", "0.1.5")]),
])
def test_other_real_locks(cargo: Path, name: str, expected: list[tuple[str, str]]) -> None:
    parsed = parse_file(SOURCE, cargo / name)
    assert [(p.name, p.version) for p in parsed.packages] == expected
    assert {p.purl for p in parsed.packages} == {f"pkg:cargo/{n}@{v}" for n, v in expected}
    assert parsed.warnings == ()


def test_workspace_only_is_genuinely_empty(cargo: Path) -> None:
    # version = 3 and one [[package]], the project test-project itself.
    parsed = parse_file(SOURCE, cargo / "osv-scanner__rust-project__Cargo.lock")
    assert (parsed.packages, parsed.warnings) == ([], ())


def test_git_and_sparse_index_crates() -> None:
    # No real file holds these two sources: the entries are cargo's own format
    # (https://doc.rust-lang.org/cargo/reference/registry-index.html#sparse-protocol).
    data = (b'version = 3\n\n[[package]]\nname = "serde"\nversion = "1.0.196"\n'
            b'source = "sparse+https://index.crates.io/"\n\n'
            b'[[package]]\nname = "smallvec"\nversion = "0.6.13"\n'
            b'source = "git+https://github.com/servo/rust-smallvec?branch=v0.6#9a2f5ad"\n')
    parsed = SOURCE.parse(data, "Cargo.lock", None)
    assert [(p.name, p.version) for p in parsed.packages] == [("serde", "1.0.196")]
    assert parsed.warnings == (
        "Cargo.lock: smallvec 0.6.13 comes from git+https://github.com/servo/rust-smallvec"
        "?branch=v0.6#9a2f5ad, not a registry; not checked",)


def test_truncated_real_lock(cargo: Path) -> None:
    # The real file cut inside a table header, as an interrupted copy leaves it.
    data = (cargo / "osv-scanner__deprecated-vuln__Cargo.lock").read_bytes()
    cut = data[:data.index(b'[[package]]\nname = "net2"') + len(b"[[pack")]
    error = format_error(SOURCE, cut)
    # Line 17 is net2's [[package]] header, the line the file stops in.
    assert (error.detail, error.line) == (
        "invalid TOML: Expected ']]' at the end of an array declaration", 17)


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
