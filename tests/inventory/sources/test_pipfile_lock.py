"""Pipfile.lock: every category, "==" versions; entries without a version are warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchpilot.inventory.sources.pipfile_lock import SOURCE
from patchpilot.models import Package
from tests.inventory.sources.helpers import format_error, parse_file

DIR = "pipfile-lock"


@pytest.mark.parametrize(("name", "expected"), [
    ("osv-scalibr__language__python__pipfilelock__empty.json", []),
    ("osv-scalibr__language__python__pipfilelock__one-package-dev.json",
     [("markupsafe", "2.1.1")]),
    ("osv-scalibr__language__python__pipfilelock__two-packages.json",
     [("itsdangerous", "2.1.2"), ("markupsafe", "2.1.1")]),
    ("syft__python__pipfile-lock__Pipfile.lock",
     [("aio-pika", "6.8.0"), ("aiodns", "2.0.0"), ("aiohttp", "3.7.4.post0"),
      ("aiohttp-jinja2", "1.4.2"), ("astroid", "2.5.2"), ("autopep8", "1.5.6")]),
])
def test_packages(inventories: Path, name: str, expected: list[tuple[str, str]]) -> None:
    parsed = parse_file(SOURCE, inventories / DIR / name)
    assert [(p.name, p.version) for p in parsed.packages] == expected
    assert parsed.warnings == ()


def test_fields(inventories: Path) -> None:
    path = inventories / DIR / "syft__python__pipfile-lock__Pipfile.lock"
    assert parse_file(SOURCE, path).packages[2] == Package(
        ecosystem="PyPI", name="aiohttp", version="3.7.4.post0",
        purl="pkg:pypi/aiohttp@3.7.4.post0", location=str(path))


def test_git_and_editable_entries_are_warnings() -> None:
    data = json.dumps({
        "_meta": {"pipfile-spec": 6},
        "default": {"flask": {"version": "==3.0.0"},
                    "mylib": {"editable": True, "path": "."},
                    "tool": {"git": "https://github.com/org/tool.git", "ref": "abc"}},
        "develop": {"flask": {"version": "==3.0.0"}},
        "docs": {"sphinx": {"version": "==7.2.6"}},  # a custom package category
    }).encode()
    parsed = SOURCE.parse(data, "Pipfile.lock", None)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("flask", "3.0.0"), ("sphinx", "7.2.6")]
    assert parsed.warnings == (
        "Pipfile.lock: default/mylib has no pinned version (path .); not checked",
        "Pipfile.lock: default/tool has no pinned version "
        "(git https://github.com/org/tool.git); not checked",
    )


@pytest.mark.parametrize(("data", "detail", "line"), [
    (b"", "empty Pipfile.lock file", None),
    (b'{\n  "_meta": {},\n  "default": {\n    "flask": {"version": "==3.0', "invalid JSON: "
     "Unterminated string starting at", 4),
    (b"[1, 2]", "Pipfile.lock file: the JSON document is not an object", None),
    (b'{"name": "x"}', "no _meta, default or develop object, not a Pipfile.lock file", None),
    (b'{"_meta": {}, "default": []}', "category 'default' is not an object", None),
    (b'{"_meta": {}, "default": {"flask": "==1"}}', "default/flask is not an object", None),
])
def test_invalid(data: bytes, detail: str, line: int | None) -> None:
    error = format_error(SOURCE, data)
    assert (error.detail, error.line) == (detail, line)


def test_truncated_real_file(inventories: Path) -> None:
    data = (inventories / DIR / "syft__python__pipfile-lock__Pipfile.lock").read_bytes()
    error = format_error(SOURCE, data[: len(data) // 2])
    assert error.detail.startswith("invalid JSON: ")
    assert error.line == data[: len(data) // 2].count(b"\n") + 1
