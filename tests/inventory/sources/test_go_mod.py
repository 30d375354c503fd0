"""go.mod: require lines and blocks, replace applied, go/toolchain skipped.

No Go toolchain or module proxy is reachable here, so the fixtures are hand-written after
https://go.dev/ref/mod#go-mod-file (each says so in its header comment).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.inventory.sources.go_mod import SOURCE
from patchpilot.models import Package
from tests.inventory.sources.helpers import format_error, parse_file


def test_many_packages(fixtures: Path) -> None:
    path = fixtures / "go-mod" / "many_packages.mod"
    parsed = parse_file(SOURCE, path)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("github.com/gin-gonic/gin", "1.9.1"),
        # replace github.com/sirupsen/logrus => github.com/patchpilot/logrus v1.9.4-fork
        ("github.com/patchpilot/logrus", "1.9.4-fork"),
        # replace golang.org/x/net v0.17.0 => golang.org/x/net v0.19.0
        ("golang.org/x/net", "0.19.0"),
        ("golang.org/x/text", "0.13.0"),  # indirect, kept; the exclude changes nothing
        ("gopkg.in/yaml.v3", "3.0.1"),
        ("github.com/docker/docker", "24.0.7+incompatible"),
    ]
    assert parsed.packages[0] == Package(
        ecosystem="Go", name="github.com/gin-gonic/gin", version="1.9.1",
        purl="pkg:golang/github.com/gin-gonic/gin@v1.9.1", location=str(path))
    assert parsed.warnings == (
        f"{path}:17: github.com/example/internal is replaced by the local folder "
        "../internal; not checked",)


def test_replace_of_another_version_does_not_apply() -> None:
    data = (b"module m\n\nrequire golang.org/x/net v0.17.0\n\n"
            b"replace golang.org/x/net v0.10.0 => golang.org/x/net v0.19.0\n")
    packages = SOURCE.parse(data, "go.mod", None).packages
    assert [(p.name, p.version) for p in packages] == [("golang.org/x/net", "0.17.0")]


def test_no_dependencies_is_genuinely_empty(fixtures: Path) -> None:
    assert parse_file(SOURCE, fixtures / "go-mod" / "no_dependencies.mod").packages == []


def test_truncated_fixture(fixtures: Path) -> None:
    error = format_error(SOURCE, (fixtures / "go-mod" / "truncated.mod").read_bytes())
    assert (error.detail, error.line) == ("require block not closed (truncated file?)", 5)


@pytest.mark.parametrize(("data", "detail", "line"), [
    (b"", "empty go.mod file", None),
    (b"go 1.21\nrequire a v1\n", "no module directive, not a go.mod file", None),
    (b"module m\nrequire a v1\n<html>\n", "unknown go.mod directive '<html>'", 3),
    (b"module m\nrequire (\n\tgithub.com/a/b\n)\n", "require needs a module path and a "
                                                   "version", 3),
    (b"module m\nreplace a v1 b v2\n", "replace without '=>'", 2),
    (b"module m\nreplace a v1 v2 => b\n", "replace needs 'path [version] => path [version]'",
     2),
])
def test_invalid(data: bytes, detail: str, line: int | None) -> None:
    error = format_error(SOURCE, data)
    assert (error.detail, error.line) == (detail, line)
