"""The fixed version from an audit tool's constraint strings."""

from __future__ import annotations

import pytest

from patchpilot.importers.formats._audit import first_fix, fix_past


@pytest.mark.parametrize(("ecosystem", "installed", "constraints", "fixed"), [
    ("npm", "2.2.0", ">= 2.6.9 < 3.0.0 || >= 3.1.0", "2.6.9"),
    ("npm", "1.3.4", ">= 1.4.1 < 2.0.0 || >= 2.0.3 < 1.4.1 || > 2.0.0 < 2.0.3", "1.4.1"),
    ("npm", "1.0.0", "<0.0.0", None),  # npm's "no patch"
    ("RubyGems", "1.4.7", "upgrade to ~> 1.6.11, >= 2.0.6", "1.6.11"),
    ("RubyGems", "1.6.13", "update to '~> 2.1.3', '>= 2.2.0'", "2.1.3"),
    ("RubyGems", "2.2.3", ["< 3.0.0, >= 2.12.5", ">= 3.7.2, < 4.0.0", ">= 4.0.0.beta8"],
     "2.12.5"),
    ("crates.io", "1.5.0", [">=0.6.14, <1.0.0", ">=1.6.1"], "1.6.1"),
    ("PyPI", None, [">=3.7.4"], "3.7.4"),  # one bound, installed unknown
    ("PyPI", None, [">=2.2.25", ">=3.2.10"], None),
])
def test_first_fix(ecosystem: str, installed: str | None, constraints, fixed) -> None:
    assert first_fix(ecosystem, installed, constraints) == fixed


@pytest.mark.parametrize(("vulnerable", "fixed"), [
    ("<2.6.9", "2.6.9"), (">=2.0.0 <2.1.1", "2.1.1"), ("<=2.6.8", None),
    ("<1.1.4|>=2.0.0,<2.1.1", None), (None, None),
])
def test_fix_past(vulnerable: str | None, fixed: str | None) -> None:
    assert fix_past(vulnerable) == fixed
