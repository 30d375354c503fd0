"""uv.lock: registry packages; the project itself skipped; git sources are warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.inventory.sources.interface import Parsed
from patchpilot.inventory.sources.uv_lock import SOURCE
from patchpilot.models import Package
from tests.inventory.sources.helpers import format_error, parse_file

DIR = "uv-lock"


def test_two_packages(inventories: Path) -> None:
    path = inventories / DIR / "osv-scalibr__language__python__uvlock__two-packages.lock"
    parsed = parse_file(SOURCE, path)
    # The virtual root project "uv-lockfiles" is the user's own code.
    assert parsed.packages == [
        Package(ecosystem="PyPI", name="emoji", version="2.14.0",
                purl="pkg:pypi/emoji@2.14.0", location=str(path)),
        Package(ecosystem="PyPI", name="protobuf", version="4.25.5",
                purl="pkg:pypi/protobuf@4.25.5", location=str(path)),
    ]
    assert parsed.warnings == ()


def test_no_dependencies_is_genuinely_empty(inventories: Path) -> None:
    path = inventories / DIR / "osv-scalibr__language__python__uvlock__no-dependencies.lock"
    assert parse_file(SOURCE, path) == Parsed([])


def test_git_source_is_a_warning(inventories: Path) -> None:
    path = inventories / DIR / "osv-scalibr__language__python__uvlock__source-git.lock"
    parsed = parse_file(SOURCE, path)
    assert parsed.packages == []
    assert parsed.warnings == (
        f"{path}: ruff comes from a git source (https://github.com/astral-sh/ruff"
        "#84748be16341b76e073d117329f7f5f4ee2941ad), not a package index; not checked",)


def test_editable_workspace_member_skipped() -> None:
    data = (b'version = 1\n[[package]]\nname = "app"\nsource = { editable = "." }\n'
            b'[[package]]\nname = "lib"\nversion = "0.1.0"\nsource = { directory = "../lib" }\n'
            b'[[package]]\nname = "idna"\nversion = "3.7"\n'
            b'source = { registry = "https://pypi.org/simple" }\n')
    parsed = SOURCE.parse(data, "uv.lock", None)
    assert [(p.name, p.version) for p in parsed.packages] == [("idna", "3.7")]
    assert parsed.warnings == ("uv.lock: lib comes from a directory source (../lib), not a "
                               "package index; not checked",)


def test_empty_file_is_an_error(inventories: Path) -> None:
    path = inventories / DIR / "osv-scalibr__language__python__uvlock__empty.lock"
    error = format_error(SOURCE, path.read_bytes(), str(path))
    assert (error.detail, error.line) == ("empty uv.lock file", None)


@pytest.mark.parametrize(("data", "detail", "line"), [
    (b'[project]\nname = "x"\n', "no 'version' or [[package]], not a uv.lock file", None),
    (b"version = 1\n[[package]\n", "invalid TOML: Expected ']]' at the end of an array "
                                   "declaration", 2),
])
def test_invalid(data: bytes, detail: str, line: int | None) -> None:
    error = format_error(SOURCE, data)
    assert (error.detail, error.line) == (detail, line)


def test_package_without_source_is_read(inventories: Path) -> None:
    # The real two-packages lock with its source lines removed (older or hand-edited
    # lock files), and one table that has neither source nor version.
    real = (inventories / DIR / "osv-scalibr__language__python__uvlock__two-packages.lock"
            ).read_text()
    text = "\n".join(line for line in real.splitlines() if not line.startswith("source ="))
    text += '\n\n[[package]]\nname = "broken"\n'
    parsed = SOURCE.parse(text.encode(), "uv.lock", None)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("emoji", "2.14.0"), ("protobuf", "4.25.5")]
    assert parsed.warnings == (
        "uv.lock: [[package]] number 3 (uv-lockfiles) has no source and no sdist or wheels "
        "(the project itself?); not checked",
        "uv.lock: [[package]] number 4 (broken) has neither a source nor a version; skipped",
        "uv.lock: 2 [[package]] without a 'source' read as PyPI releases: emoji 2.14.0, "
        "protobuf 4.25.5")


def test_registry_package_without_version_is_a_warning() -> None:
    parsed = SOURCE.parse(b'version = 1\n[[package]]\nname = "idna"\nsource = { registry = '
                          b'"x" }\n[[package]]\nname = "six"\nversion = "1.16.0"\nsource '
                          b'= { registry = "x" }\n', "uv.lock", None)
    assert [p.name for p in parsed.packages] == ["six"]
    assert parsed.warnings == ("uv.lock: [[package]] number 1 (idna) without a 'version'; "
                               "skipped",)
