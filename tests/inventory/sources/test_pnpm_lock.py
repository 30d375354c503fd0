"""pnpm-lock.yaml, lockfile versions 5.3, 5.4, 6.0 and 9.0.

The lock files are real, written by pnpm for osv-scalibr's test suite
(../shared/data/inventories/pnpm-lock/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.inventory.sources.pnpm_lock import SOURCE, split_key
from patchpilot.models import Package
from tests.inventory.sources.helpers import format_error, parse_file


@pytest.fixture(scope="module")
def pnpm(inventories: Path) -> Path:
    """The folder of real pnpm-lock.yaml files."""
    return inventories / "pnpm-lock"


# react-dom has react as a peer, so its key carries a peer suffix in each format:
# 5.x "/react-dom/18.2.0_react@18.2.0", 6.0 "/react-dom@18.2.0(react@18.2.0)".
@pytest.mark.parametrize(("name", "expected"), [
    ("osv-scalibr__peer-dependencies.yaml",  # 5.3: /acorn-jsx/5.3.2_acorn@8.7.0
     [("acorn-jsx", "5.3.2"), ("acorn", "8.7.0")]),
    ("osv-scalibr__peer-dependencies.v9.yaml",  # 9.0: snapshots acorn-jsx@5.3.2(acorn@…)
     [("acorn-jsx", "5.3.2"), ("acorn", "8.11.3")]),
    ("osv-scalibr__peer-dependencies-v6.yaml",  # 6.0: /react-dom@18.2.0(react@18.2.0)
     [("js-tokens", "4.0.0"), ("loose-envify", "1.4.0"), ("react-dom", "18.2.0"),
      ("react", "18.2.0"), ("scheduler", "0.23.0")]),
    ("osv-scalibr__peer-dependencies-advanced-rc-v6.yaml",  # a pre-release with peers
     [("js-tokens", "4.0.0"), ("loose-envify", "1.4.0"), ("react-dom", "18.0.0-rc.3"),
      ("react", "18.2.0"), ("scheduler", "0.21.0")]),
])
def test_peer_suffixes_stripped(pnpm: Path, name: str,
                                expected: list[tuple[str, str]]) -> None:
    parsed = parse_file(SOURCE, pnpm / name)
    assert [(p.name, p.version) for p in parsed.packages] == expected
    assert parsed.warnings == ()


def test_v9_packages_and_snapshots_counted_once(pnpm: Path) -> None:
    # 13 entries under packages:, the same 13 again (with nested peer suffixes) under
    # snapshots:, e.g. '@typescript-eslint/eslint-plugin@5.62.0(@typescript-eslint/
    # parser@5.62.0(eslint@8.57.0)(typescript@4.9.5))(eslint@8.57.0)(typescript@4.9.5)'.
    path = pnpm / "osv-scalibr__peer-dependencies-advanced.v9.yaml"
    parsed = parse_file(SOURCE, path)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("@eslint-community/eslint-utils", "4.4.0"), ("@eslint/eslintrc", "2.1.4"),
        ("@typescript-eslint/eslint-plugin", "5.62.0"), ("@typescript-eslint/parser", "5.62.0"),
        ("@typescript-eslint/type-utils", "5.62.0"),
        ("@typescript-eslint/typescript-estree", "5.62.0"),
        ("@typescript-eslint/utils", "5.62.0"), ("debug", "4.3.4"), ("eslint", "8.57.0"),
        ("has-flag", "4.0.0"), ("supports-color", "7.2.0"), ("tsutils", "3.21.0"),
        ("typescript", "4.9.5")]
    assert parsed.packages[1] == Package(
        ecosystem="npm", name="@eslint/eslintrc", version="2.1.4",
        purl="pkg:npm/%40eslint/eslintrc@2.1.4", location=str(path))


@pytest.mark.parametrize(("name", "version"), [
    ("osv-scalibr__scoped-packages.yaml", "5.13.0"),  # 5.3: /@typescript-eslint/types/5.13.0
    ("osv-scalibr__scoped-packages-v6-lockfile.yaml", "5.57.1"),
    ("osv-scalibr__scoped-packages.v9.yaml", "5.62.0"),
])
def test_scoped_names(pnpm: Path, name: str, version: str) -> None:
    packages = parse_file(SOURCE, pnpm / name).packages
    assert [(p.name, p.version, p.purl) for p in packages] == [
        ("@typescript-eslint/types", version, f"pkg:npm/%40typescript-eslint/types@{version}")]


@pytest.mark.parametrize(("name", "expected"), [
    ("osv-scalibr__multiple-packages.yaml",
     [("aws-sdk", "2.1087.0"), ("base64-js", "1.5.1"), ("buffer", "4.9.2"),
      ("events", "1.1.1"), ("ieee754", "1.1.13"), ("isarray", "1.0.0"),
      ("jmespath", "0.16.0"), ("punycode", "1.3.2"), ("querystring", "0.2.0"),
      ("sax", "1.2.1"), ("url", "0.10.3"), ("uuid", "3.3.2"), ("xml2js", "0.4.19"),
      ("xmlbuilder", "9.0.7")]),
    # Two versions of one package are two packages.
    ("osv-scalibr__multiple-versions.yaml",
     [("uuid", "3.3.2"), ("uuid", "8.3.2"), ("xmlbuilder", "9.0.7")]),
    ("osv-scalibr__multiple-versions.v9.yaml",
     [("uuid", "8.0.0"), ("uuid", "8.3.2"), ("xmlbuilder", "11.0.1")]),
    # Production, dev and optional dependencies are all installed, so all are kept.
    ("osv-scalibr__mixed-groups.v53.yaml",
     [("ansi-regex", "5.0.1"), ("is-number", "7.0.0"), ("uuid", "8.3.2")]),
    ("osv-scalibr__mixed-groups.v54.yaml",
     [("ansi-regex", "5.0.1"), ("is-number", "7.0.0"), ("uuid", "8.3.2")]),
    ("osv-scalibr__mixed-groups.v6.yaml",
     [("ansi-regex", "5.0.0"), ("is-number", "7.0.0"), ("uuid", "8.0.0")]),
    ("osv-scalibr__mixed-groups.v9.yaml",
     [("ansi-regex", "5.0.1"), ("is-number", "7.0.0"), ("uuid", "8.3.2")]),
    ("osv-scalibr__one-package-dev.v9.yaml", [("acorn", "8.11.3")]),
    ("osv-scalibr__one-package-v6-lockfile.yaml", [("acorn", "8.7.0")]),
])
def test_other_real_locks(pnpm: Path, name: str, expected: list[tuple[str, str]]) -> None:
    parsed = parse_file(SOURCE, pnpm / name)
    assert [(p.name, p.version) for p in parsed.packages] == expected
    assert parsed.warnings == ()


def test_non_registry_packages_are_warnings(pnpm: Path) -> None:
    path = pnpm / "osv-scalibr__commits.v9.yaml"
    parsed = parse_file(SOURCE, path)
    assert parsed.packages == []
    assert parsed.warnings == (
        f"{path}: ansi-regex@6.0.1 comes from ansi-regex@https://codeload.github.com/chalk/"
        "ansi-regex/tar.gz/02fa893d619d3da85411acc8fd4e2eea0e95a9d9, not the npm registry; "
        "not checked",
        f"{path}: is-number@7.0.0 comes from is-number@https://codeload.github.com/"
        "jonschlinkert/is-number/tar.gz/98e8ff1da1a89f93d1397a24d7413ed15421c139, not the "
        "npm registry; not checked")
    tarball = pnpm / "osv-scalibr__tarball.yaml"
    assert parse_file(SOURCE, tarball).warnings == (
        f"{tarball}: @my-org/my-package@3.2.3 comes from @gitlab.my-org.org/api/v4/projects/1/"
        "packages/npm/@my-org/my-package/-/@my-org/my-package-3.2.3.tgz, not the npm "
        "registry; not checked",)


@pytest.mark.parametrize("name", ["osv-scalibr__no-packages.yaml",  # packages: empty
                                  "osv-scalibr__missing-packages.yaml"])  # no packages map
def test_no_packages_is_genuinely_empty(pnpm: Path, name: str) -> None:
    parsed = parse_file(SOURCE, pnpm / name)
    assert (parsed.packages, parsed.warnings) == ([], ())


@pytest.mark.parametrize(("key", "version", "expected"), [
    ("/@types/node/20.11.0", 5.4, ("@types/node", "20.11.0")),
    ("/react-dom/18.2.0_react@18.2.0", 5.4, ("react-dom", "18.2.0")),
    ("/@babel/core@7.23.0(supports-color@8.1.1)", 6.0, ("@babel/core", "7.23.0")),
    ("react-dom@18.2.0(react@18.2.0)", 9.0, ("react-dom", "18.2.0")),
])
def test_split_key(key: str, version: float, expected: tuple[str, str]) -> None:
    assert split_key(key, version) == expected


@pytest.mark.parametrize(("name", "detail"), [
    ("osv-scalibr__empty.yaml", "no lockfileVersion, not a pnpm-lock.yaml file"),  # a comment
])
def test_real_invalid_files(pnpm: Path, name: str, detail: str) -> None:
    error = format_error(SOURCE, (pnpm / name).read_bytes())
    assert (error.detail, error.line) == (detail, None)


@pytest.mark.parametrize(("data", "detail", "line"), [
    (b"", "empty pnpm-lock.yaml file", None),
    (b"packages:\n  /a/1.0.0: {}\n", "no lockfileVersion, not a pnpm-lock.yaml file", None),
    (b"lockfileVersion: x\n", "lockfileVersion 'x' is not a number", None),
    (b"lockfileVersion: '9.0'\npackages: [a]\n", "'packages' is not a mapping", None),
    (b"lockfileVersion: '9.0'\npackages:\n  'ms@2.1.3:\n", "invalid YAML: found unexpected "
     "end of stream", 4),
])
def test_invalid(data: bytes, detail: str, line: int | None) -> None:
    error = format_error(SOURCE, data)
    assert (error.detail, error.line) == (detail, line)


def test_truncated_real_lock(pnpm: Path) -> None:
    # The real file cut inside a quoted key, as an interrupted copy leaves it.
    data = (pnpm / "osv-scalibr__scoped-packages.v9.yaml").read_bytes()
    error = format_error(SOURCE, data[:data.index(b"'@typescript-eslint/types@5.62.0':") + 10])
    assert (error.detail, error.line) == (
        "invalid YAML: found unexpected end of stream", 17)


def test_keys_without_a_version_are_warnings(pnpm: Path) -> None:
    parsed = SOURCE.parse((pnpm / "osv-scalibr__invalid-paths.yaml").read_bytes(), "lock", None)
    assert [(p.name, p.version) for p in parsed.packages] == [("acorn", "8.7.0")]
    assert parsed.warnings == ("lock: packages key 'invalidpath1' names no version; skipped",
                               "lock: packages key 'invalidpath2' names no version; skipped")
    parsed = SOURCE.parse((pnpm / "osv-scalibr__invalid-path.yaml").read_bytes(), "lock", None)
    assert [(p.name, p.version) for p in parsed.packages] == [("acorn", "8.7.0")]
    assert parsed.warnings == ("lock: packages key 'invalidpath' names no version; skipped",)
