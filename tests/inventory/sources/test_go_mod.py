"""go.mod: require lines and blocks, replace applied, go/toolchain skipped.

The go.mod files are real, from the test suites of osv-scalibr and syft
(../shared/data/inventories/go-mod/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.inventory.sources.go_mod import SOURCE
from patchpilot.models import Package
from tests.inventory.sources.helpers import format_error, parse_file


@pytest.fixture(scope="module")
def gomod(inventories: Path) -> Path:
    """The folder of real go.mod files."""
    return inventories / "go-mod"


def test_replace_exclude_and_comments(gomod: Path) -> None:
    path = gomod / "syft__many-packages__go.mod"
    parsed = parse_file(SOURCE, path)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("github.com/adrg/xdg", "0.2.1"),  # the exclude line changes nothing
        # A trailing comment naming another module is not a second requirement.
        ("github.com/anchore/go-testutils", "0.0.0-20200624184116-66aa578126db"),
        ("github.com/anchore/go-version", "1.2.2-0.20200701162849-18adb9c92b9b"),
        ("github.com/anchore/stereoscope", "0.0.0-20200706164556-7cf39d7f4639"),
        # replace github.com/anchore/archiver/v3 v3.5.1 => … v3.5.2
        ("github.com/anchore/archiver/v3", "3.5.2"),
        # replace github.com/bmatcuk/doublestar => … v8.8.8 (every version replaced)
        ("github.com/bmatcuk/doublestar", "8.8.8"),
        ("github.com/go-test/deep", "1.0.6"),
    ]  # "//github.com/ignore/this v9.9.9" is commented out
    assert parsed.packages[4] == Package(
        ecosystem="Go", name="github.com/anchore/archiver/v3", version="3.5.2",
        purl="pkg:golang/github.com/anchore/archiver/v3@v3.5.2", location=str(path))
    assert parsed.warnings == ()


def test_indirect_requirements_are_kept(gomod: Path) -> None:
    parsed = parse_file(SOURCE, gomod / "osv-scalibr__indirect-packages.mod")
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("github.com/BurntSushi/toml", "1.0.0"), ("gopkg.in/yaml.v2", "2.4.0"),
        ("github.com/mattn/go-colorable", "0.1.9"), ("github.com/mattn/go-isatty", "0.0.14"),
        ("golang.org/x/sys", "0.0.0-20210630005230-0f9fa26af87c")]


@pytest.mark.parametrize("name", ["osv-scalibr__toolchain.mod",
                                  "osv-scalibr__toolchain-with-suffix.mod",
                                  "osv-scalibr__one-package.mod"])
def test_go_and_toolchain_lines_are_not_packages(gomod: Path, name: str) -> None:
    packages = parse_file(SOURCE, gomod / name).packages
    assert [(p.name, p.version, p.purl) for p in packages] == [
        ("github.com/BurntSushi/toml", "1.0.0", "pkg:golang/github.com/BurntSushi/toml@v1.0.0")]


def test_local_folder_replacement_is_a_warning(gomod: Path) -> None:
    path = gomod / "syft__relative-replace__go.mod"
    parsed = parse_file(SOURCE, path)
    assert parsed.packages == []
    assert parsed.warnings == (
        f"{path}:5: github.com/aws/aws-sdk-go-v2 is replaced by the local folder ../../../; "
        "not checked",)


def test_replace_of_another_version_does_not_apply() -> None:
    data = (b"module m\n\nrequire golang.org/x/net v0.17.0\n\n"
            b"replace golang.org/x/net v0.10.0 => golang.org/x/net v0.19.0\n")
    packages = SOURCE.parse(data, "go.mod", None).packages
    assert [(p.name, p.version) for p in packages] == [("golang.org/x/net", "0.17.0")]


def test_no_dependencies_is_genuinely_empty(gomod: Path) -> None:
    # The real file's module and go lines, before its require.
    data = (gomod / "syft__relative-replace__go.mod").read_bytes()
    head = data[:data.index(b"require")]
    assert head == b"module github.com/aws/aws-sdk-go-v2/feature/ec2/imds\n\ngo 1.22\n\n"
    assert SOURCE.parse(head, "go.mod", None).packages == []


def test_truncated_real_file(gomod: Path) -> None:
    # The real file cut inside its first require block.
    data = (gomod / "osv-scalibr__indirect-packages.mod").read_bytes()
    cut = data[:data.index(b"\tgopkg.in/yaml.v2")]
    error = format_error(SOURCE, cut)
    assert (error.detail, error.line) == ("require block not closed (truncated file?)", 5)


@pytest.mark.parametrize(("name", "detail", "line"), [
    ("osv-scalibr__empty.mod", "empty go.mod file", None),
    ("osv-scalibr__not-go-mod.mod", "no module directive, not a go.mod file", None),
    # osv-scalibr's replace-* files are fragments without a module line, which the go
    # command refuses too ("no module declaration in go.mod").
    ("osv-scalibr__replace-one.mod", "no module directive, not a go.mod file", None),
])
def test_real_files_that_are_not_go_mod(gomod: Path, name: str, detail: str,
                                        line: int | None) -> None:
    error = format_error(SOURCE, (gomod / name).read_bytes())
    assert (error.detail, error.line) == (detail, line)


@pytest.mark.parametrize(("data", "detail", "line"), [
    (b"", "empty go.mod file", None),
    (b"go 1.21\nrequire a v1\n", "no module directive, not a go.mod file", None),
])
def test_invalid(data: bytes, detail: str, line: int | None) -> None:
    error = format_error(SOURCE, data)
    assert (error.detail, error.line) == (detail, line)


@pytest.mark.parametrize(("data", "warnings"), [
    (b"module m\nrequire a v1\n<html>\n", ("go.mod:3: unknown go.mod directive '<html>'; "
                                           "skipped",)),
    (b"module m\nrequire a v1\nrequire (\n\tgithub.com/a/b\n)\n",
     ("go.mod:4: require needs a module path and a version; skipped",)),
    (b"module m\nrequire a v1\nreplace a v1 b v2\n", ("go.mod:3: replace without '=>'; "
                                                       "not applied",)),
    (b"module m\nrequire a v1\nreplace a v1 v2 => b\n",
     ("go.mod:3: replace needs 'path [version] => path [version]'; not applied",)),
])
def test_a_bad_line_is_a_warning(data: bytes, warnings: tuple[str, ...]) -> None:
    parsed = SOURCE.parse(data, "go.mod", None)
    assert [(p.name, p.version) for p in parsed.packages] == [("a", "1")]
    assert parsed.warnings == warnings


def test_renamed_go_mod_told_by_content(gomod: Path) -> None:
    for path in sorted(gomod.iterdir()):
        head = path.read_bytes()[:8192]
        fragment = path.name.startswith("osv-scalibr__replace-")
        expected = path.name not in ("osv-scalibr__empty.mod", "osv-scalibr__not-go-mod.mod")
        assert SOURCE.detect(path.name, head) is expected, path.name
        # Without the .mod suffix only a file with a module line is claimed.
        assert SOURCE.detect("saved-copy", head) is (expected and not fragment), path.name
    assert not SOURCE.detect("notes.txt", b"require that you read this\n")
