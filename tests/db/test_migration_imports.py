"""No migration imports application code (issue 11 item 10)."""

from __future__ import annotations

import ast
from pathlib import Path

import patchpilot.db

VERSIONS = Path(patchpilot.db.__file__).parent / "migrations" / "versions"


def test_no_migration_imports_application_code() -> None:
    # A migration runs against the code of every later release: one that imported
    # patchpilot would change (or break) when that code does.
    files = sorted(VERSIONS.glob("*.py"))
    assert len(files) >= 11
    offenders = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names
                          if n == "patchpilot" or n.startswith("patchpilot.")]
    assert offenders == []
