"""package-lock.json v1 (dependencies tree), v2 and v3 (packages map)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchpilot.inventory.sources.npm_lock import SOURCE
from patchpilot.models import Package
from tests.inventory.sources.helpers import format_error, parse_file

DIR = "npm-package-lock"
SCALIBR = "osv-scalibr__language__javascript__packagelockjson__"


@pytest.mark.parametrize(("name", "expected"), [
    (f"{SCALIBR}empty.v1.json", []),
    (f"{SCALIBR}one-package.v1.json", [("wrappy", "1.0.2")]),
    (f"{SCALIBR}one-package.v2.json", [("wrappy", "1.0.2")]),
    (f"{SCALIBR}two-packages.v1.json", [("wrappy", "1.0.2"), ("supports-color", "5.5.0")]),
    (f"{SCALIBR}two-packages.v2.json", [("wrappy", "1.0.2"), ("supports-color", "5.5.0")]),
    (f"{SCALIBR}optional-package.v1.json",
     [("wrappy", "1.0.2"), ("supports-color", "5.5.0")]),
    (f"{SCALIBR}same-package-different-groups.v1.json",
     [("ajv", "5.5.2"), ("eslint", "1.2.3"), ("table", "1.0.0")]),
    # v1 aliases spell the real package in the version: "npm:@babel/code-frame@7.0.0".
    (f"{SCALIBR}alias.v1.json", [("@babel/code-frame", "7.0.0"), ("string-width", "5.1.2"),
                                 ("string-width", "4.2.0")]),
    # Bundled and development packages are installed too.
    (f"{SCALIBR}bundled-dependencies.v3.json",
     [("ansi-regex", "6.2.2"), ("semver", "7.7.2"), ("strip-ansi", "7.1.2")]),
    # Nested node_modules copies of other versions are separate packages.
    (f"{SCALIBR}nested-dependencies.v2.json",
     [("postcss", "6.0.23"), ("postcss-calc", "7.0.1"), ("postcss", "7.0.16"),
      ("supports-color", "6.1.0"), ("supports-color", "5.5.0")]),
    ("syft__image-pkg-coverage__pkgs__javascript__package-lock__package-lock.json",
     [("get-stdin", "8.0.0")]),
    ("syft__npm-lock__package-lock.json",
     [("collapse-white-space", "2.0.0"), ("end-of-stream", "1.4.4"), ("insert-css", "2.0.0"),
      ("once", "1.4.0"), ("pump", "3.0.0"), ("wrappy", "1.0.2")]),
])
def test_packages(inventories: Path, name: str, expected: list[tuple[str, str]]) -> None:
    parsed = parse_file(SOURCE, inventories / DIR / name)
    assert [(p.name, p.version) for p in parsed.packages] == expected
    assert parsed.warnings == ()


@pytest.mark.parametrize(("name", "count"), [
    # Counted independently: distinct (name, version) pairs of the nested v1 tree (73
    # entries) and of the v2 packages map (root excluded).
    (f"{SCALIBR}nested-dependencies-dup.v1.json", 39),
    ("osv-scanner__fix__in-place-npm__package-lock.json", 106),
    ("syft__javascript__pkg-lock__package-lock.json", 12),
])
def test_counts(inventories: Path, name: str, count: int) -> None:
    assert len(parse_file(SOURCE, inventories / DIR / name).packages) == count


def test_fields_and_scoped_purl(inventories: Path) -> None:
    path = inventories / DIR / "syft__javascript__pkg-lock__package-lock.json"
    assert parse_file(SOURCE, path).packages[0] == Package(
        ecosystem="npm", name="@actions/core", version="1.6.0",
        purl="pkg:npm/%40actions/core@1.6.0", location=str(path))


def test_git_dependencies_are_warnings(inventories: Path) -> None:
    path = inventories / DIR / f"{SCALIBR}commits.v2.json"
    parsed = parse_file(SOURCE, path)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("ansi-styles", "1.0.0"), ("postcss-calc", "7.0.1")]
    assert len(parsed.warnings) == 12
    assert parsed.warnings[0] == (
        f"{path}: node_modules/@segment/analytics.js-integration-facebook-pixel comes from "
        "git+ssh://git@github.com/segmentio/analytics.js-integrations.git"
        "#3b1bb80b302c2e552685dc8a029797ec832ea7c9, not the npm registry; not checked")


def test_v3_alias_links_and_workspaces() -> None:
    data = b"""{"name": "app", "lockfileVersion": 3, "packages": {
      "": {"name": "app", "workspaces": ["packages/*"]},
      "packages/lib": {"name": "lib", "version": "1.0.0"},
      "node_modules/lib": {"resolved": "packages/lib", "link": true},
      "node_modules/string-width-cjs": {"name": "string-width", "version": "4.2.3",
        "resolved": "https://registry.npmjs.org/string-width/-/string-width-4.2.3.tgz"},
      "packages/lib/node_modules/ms": {"version": "2.1.3",
        "resolved": "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz"},
      "node_modules/local": {"version": "0.1.0", "resolved": "file:../local"}}}"""
    parsed = SOURCE.parse(data, "package-lock.json", None)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("string-width", "4.2.3"), ("ms", "2.1.3")]
    assert parsed.warnings == ("package-lock.json: node_modules/local comes from "
                               "file:../local, not the npm registry; not checked",)


@pytest.mark.parametrize(("data", "detail", "line"), [
    (b"", "empty package-lock.json file", None),
    (b'{"lockfileVersion": 3, "packages": {"node_modules/a": {"version": "1.0.0"}',
     "invalid JSON: Expecting ',' delimiter", 1),
    (b'{"name": "x", "version": "1.0.0"}', "lockfileVersion None with no 'packages' or "
     "'dependencies', not a package-lock.json file PatchPilot knows (1, 2 or 3)", None),
    (b'{"lockfileVersion": 3, "packages": {"node_modules/a": {}}}',
     "packages['node_modules/a'] without a 'version'", None),
    (b'{"lockfileVersion": 1, "dependencies": {"a": {"requires": {}}}}',
     "dependency a without a 'version'", None),
    (b'{"lockfileVersion": 1, "dependencies": {"a": {"version": "1", "dependencies": {'
     b'"b": {}}}}}', "dependency a > b without a 'version'", None),
    (b'{"lockfileVersion": 2, "packages": []}', "'packages' is not an object", None),
])
def test_invalid(data: bytes, detail: str, line: int | None) -> None:
    error = format_error(SOURCE, data)
    assert (error.detail, error.line) == (detail, line)


def test_truncated_real_file(inventories: Path) -> None:
    data = (inventories / DIR / "osv-scanner__fix__in-place-npm__package-lock.json").read_bytes()
    cut = data[:40_000]
    error = format_error(SOURCE, cut)
    assert error.detail.startswith("invalid JSON: ")
    assert error.line == cut.count(b"\n") + 1


def test_v2_file_dependency_is_a_warning(inventories: Path) -> None:
    # The real v2 lock plus what npm 7+ writes for "local-lib": "file:../local-lib" and
    # for a workspace member (a link into the project's "workspaces": silent).
    path = inventories / DIR / "osv-scalibr__language__javascript__packagelockjson__" \
                               "two-packages.v2.json"
    document = json.loads(path.read_text())
    document["packages"][""]["workspaces"] = ["packages/*"]
    document["packages"]["node_modules/local-lib"] = {"resolved": "../local-lib",
                                                      "link": True}
    document["packages"]["../local-lib"] = {"name": "local-lib", "version": "1.0.0"}
    document["packages"]["node_modules/member"] = {"resolved": "packages/member",
                                                   "link": True}
    document["packages"]["packages/member"] = {"name": "member", "version": "0.1.0"}
    parsed = SOURCE.parse(json.dumps(document).encode(), "package-lock.json", None)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("wrappy", "1.0.2"), ("supports-color", "5.5.0")]
    assert parsed.warnings == (
        "package-lock.json: node_modules/local-lib links to the folder ../local-lib (a file: "
        "dependency), not the npm registry; not checked",)
