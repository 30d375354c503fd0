"""pnpm-lock.yaml, lockfile versions 5.4, 6.0 and 9.0.

The fixtures were made here by the real tools: ``npx pnpm@7 / pnpm@8 / pnpm@9 install
--lockfile-only`` on a package.json depending on react and react-dom 18.2.0 (react-dom
has react as a peer, so its keys carry a peer suffix), and ``pnpm@9`` on the project
described in test_yarn_lock.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.inventory.sources.pnpm_lock import SOURCE, split_key
from patchpilot.models import Package
from tests.inventory.sources.helpers import format_error, parse_file

PEERS = [("js-tokens", "4.0.0"), ("loose-envify", "1.4.0"), ("react-dom", "18.2.0"),
         ("react", "18.2.0"), ("scheduler", "0.23.2")]


@pytest.mark.parametrize("name", ["v5_peers.yaml", "v6_peers.yaml", "v9_peers.yaml"])
def test_peer_suffixes_stripped(fixtures: Path, name: str) -> None:
    parsed = parse_file(SOURCE, fixtures / "pnpm-lock" / name)
    assert [(p.name, p.version) for p in parsed.packages] == PEERS
    assert parsed.warnings == ()


def test_v9_many_packages(fixtures: Path) -> None:
    path = fixtures / "pnpm-lock" / "v9_many_packages.yaml"
    parsed = parse_file(SOURCE, path)
    # The alias string-width-cjs is listed under its real name string-width.
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("@types/node", "20.11.0"), ("ansi-regex", "5.0.1"), ("debug", "4.3.1"),
        ("emoji-regex", "8.0.0"), ("is-fullwidth-code-point", "3.0.0"), ("lodash", "4.17.20"),
        ("minimist", "1.2.5"), ("ms", "2.1.2"), ("string-width", "4.2.3"),
        ("strip-ansi", "6.0.1"), ("undici-types", "5.26.5")]
    assert parsed.packages[0] == Package(
        ecosystem="npm", name="@types/node", version="20.11.0",
        purl="pkg:npm/%40types/node@20.11.0", location=str(path))


@pytest.mark.parametrize(("key", "version", "expected"), [
    ("/@types/node/20.11.0", 5.4, ("@types/node", "20.11.0")),
    ("/react-dom/18.2.0_react@18.2.0", 5.4, ("react-dom", "18.2.0")),
    ("/@babel/core@7.23.0(supports-color@8.1.1)", 6.0, ("@babel/core", "7.23.0")),
    ("react-dom@18.2.0(react@18.2.0)", 9.0, ("react-dom", "18.2.0")),
])
def test_split_key(key: str, version: float, expected: tuple[str, str]) -> None:
    assert split_key(key, version) == expected


def test_non_registry_and_empty() -> None:
    data = (b"lockfileVersion: '9.0'\npackages:\n"
            b"  tool@https://codeload.github.com/org/tool/tar.gz/abc:\n"
            b"    resolution: {tarball: https://codeload.github.com/org/tool/tar.gz/abc}\n"
            b"    version: 1.0.0\n"
            b"  ms@2.1.3:\n    resolution: {integrity: sha512-x}\n")
    parsed = SOURCE.parse(data, "pnpm-lock.yaml", None)
    assert [(p.name, p.version) for p in parsed.packages] == [("ms", "2.1.3")]
    assert parsed.warnings == ("pnpm-lock.yaml: tool@1.0.0 comes from tool@https://"
                               "codeload.github.com/org/tool/tar.gz/abc, not the npm registry;"
                               " not checked",)
    # A project without dependencies: pnpm writes no packages map at all.
    empty = b"lockfileVersion: '9.0'\n\nimporters:\n\n  .: {}\n"
    assert SOURCE.parse(empty, "pnpm-lock.yaml", None).packages == []


@pytest.mark.parametrize(("data", "detail", "line"), [
    (b"", "empty pnpm-lock.yaml file", None),
    (b"packages:\n  /a/1.0.0: {}\n", "no lockfileVersion, not a pnpm-lock.yaml file", None),
    (b"lockfileVersion: x\n", "lockfileVersion 'x' is not a number", None),
    (b"lockfileVersion: '9.0'\npackages: [a]\n", "'packages' is not a mapping", None),
    (b"lockfileVersion: '9.0'\npackages:\n  lodash: {}\n",
     "packages key 'lodash' names no version", None),
    (b"lockfileVersion: '9.0'\npackages:\n  'ms@2.1.3:\n", "invalid YAML: found unexpected "
     "end of stream", 4),
])
def test_invalid(data: bytes, detail: str, line: int | None) -> None:
    error = format_error(SOURCE, data)
    assert (error.detail, error.line) == (detail, line)


def test_truncated_fixture(fixtures: Path) -> None:
    data = (fixtures / "pnpm-lock" / "v6_peers.yaml").read_bytes()
    error = format_error(SOURCE, data[:data.index(b"/react-dom@") + 30])
    assert error.detail.startswith("invalid YAML: ")
