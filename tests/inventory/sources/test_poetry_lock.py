"""poetry.lock: [[package]] tables; git/directory/file/url sources are warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.inventory.sources.poetry_lock import SOURCE
from patchpilot.models import Package
from tests.inventory.sources.helpers import format_error, parse_file

DIR = "poetry-lock"


@pytest.mark.parametrize(("name", "expected"), [
    ("osv-scalibr__language__python__poetrylock__one-package.lock", [("numpy", "1.23.3")]),
    ("osv-scalibr__language__python__poetrylock__two-packages.lock",
     [("proto-plus", "1.22.0"), ("protobuf", "4.21.5")]),
    # A legacy source is a private or mirror index: its releases are PyPI releases.
    ("syft__python__poetry__dev-deps__poetry.lock",
     [("added-value", "0.14.2"), ("alabaster", "0.7.12"), ("appnope", "0.1.0"),
      ("asciitree", "0.3.3")]),
    ("syft__python__poetry__simple-deps__poetry.lock",
     [("certifi", "2024.2.2"), ("charset-normalizer", "3.3.2"), ("idna", "3.7"),
      ("requests", "2.32.2"), ("urllib3", "2.2.1")]),
])
def test_packages(inventories: Path, name: str, expected: list[tuple[str, str]]) -> None:
    parsed = parse_file(SOURCE, inventories / DIR / name)
    assert [(p.name, p.version) for p in parsed.packages] == expected
    assert parsed.warnings == ()


def test_many_packages(inventories: Path) -> None:
    path = inventories / DIR / "syft__python__poetry__conflicting-with-extras__poetry.lock"
    packages = parse_file(SOURCE, path).packages
    assert [(p.name, p.version) for p in packages] == [
        ("anyio", "4.3.0"), ("brotli", "1.1.0"), ("brotlicffi", "1.1.0.0"),
        ("certifi", "2024.2.2"), ("cffi", "1.16.0"), ("click", "7.1.2"),
        ("colorama", "0.4.6"), ("h11", "0.14.0"), ("h2", "4.1.0"), ("hpack", "4.0.0"),
        ("httpcore", "1.0.5"), ("httpx", "0.27.0"), ("hyperframe", "6.0.1"), ("idna", "3.7"),
        ("pprintpp", "0.4.0"), ("pycparser", "2.22"), ("pygments", "1.6"), ("rich", "0.3.3"),
        ("sniffio", "1.3.1"), ("socksio", "1.0.0"), ("typing-extensions", "3.10.0.2"),
    ]
    assert packages[0] == Package(ecosystem="PyPI", name="anyio", version="4.3.0",
                                  purl="pkg:pypi/anyio@4.3.0", location=str(path))


def test_legacy_source_without_metadata(inventories: Path) -> None:
    # A legacy source is a private or mirror index: its releases are PyPI releases.  This
    # trimmed osv-scalibr fixture has no [metadata], which Poetry always writes last.
    path = inventories / DIR / "osv-scalibr__language__python__poetrylock__source-legacy.lock"
    parsed = parse_file(SOURCE, path)
    assert [(p.name, p.version) for p in parsed.packages] == [("appdirs", "1.4.4")]
    assert parsed.warnings == (f"{path}: no [metadata] table; the file may be truncated",)


def test_git_source_is_a_warning(inventories: Path) -> None:
    path = inventories / DIR / "osv-scalibr__language__python__poetrylock__source-git.lock"
    parsed = parse_file(SOURCE, path)
    assert parsed.packages == []
    assert parsed.warnings == (
        f"{path}: ike 0.2.0 comes from a git source (https://github.com/dzshn/ike), "
        "not a package index; not checked",)


def test_metadata_only_is_genuinely_empty() -> None:
    data = b'[metadata]\nlock-version = "2.0"\npython-versions = "^3.11"\ncontent-hash = "x"\n'
    assert SOURCE.parse(data, "poetry.lock", None).packages == []


def test_empty_file_is_an_error(inventories: Path) -> None:
    # osv-scalibr reads this one-newline file as "no packages"; an empty lock file is a
    # truncated one here, so it cannot close a project's findings (see _lockfiles.decode).
    path = inventories / DIR / "osv-scalibr__language__python__poetrylock__empty-file.lock"
    error = format_error(SOURCE, path.read_bytes(), str(path))
    assert (error.detail, error.line) == ("empty poetry.lock file", None)


@pytest.mark.parametrize(("data", "detail", "line"), [
    (b'[[package]]\nname = "numpy"\nversion = "1.2', "invalid TOML: Unterminated string", 3),
    (b'[[package]]\nname = "numpy"\nversion = "1.2"\n[[packa', "invalid TOML: Expected ']]' "
     "at the end of an array declaration", 4),
    (b'[[package]]\nname = "numpy"\n', "[[package]] number 1 (numpy) without a 'version'",
     None),
    (b'[[package]]\nversion = "1"\n', "[[package]] number 1 without a 'name'", None),
    (b'[tool.poetry]\nname = "x"\n', "no [[package]] or [metadata] table, not a poetry.lock "
                                      "file", None),
    (b'package = "numpy"\n', "poetry.lock file: 'package' is not an array of tables", None),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary data, not a poetry.lock file", None),
])
def test_invalid(data: bytes, detail: str, line: int | None) -> None:
    error = format_error(SOURCE, data)
    assert (error.detail, error.line) == (detail, line)


def test_truncated_real_file(inventories: Path) -> None:
    data = (inventories / DIR / "osv-scalibr__language__python__poetrylock__two-packages.lock"
            ).read_bytes()
    error = format_error(SOURCE, data[:data.index(b"description") + 5])
    assert (error.detail, error.line) == ("invalid TOML: Expected '=' after a key in a "
                                          "key/value pair", 4)
    # Cut between two tables the TOML is valid: the missing [metadata] is the only sign.
    parsed = SOURCE.parse(data[:data.index(b"description")], "poetry.lock", None)
    assert [(p.name, p.version) for p in parsed.packages] == [("proto-plus", "1.22.0")]
    assert parsed.warnings == ("poetry.lock: no [metadata] table; the file may be truncated",)
