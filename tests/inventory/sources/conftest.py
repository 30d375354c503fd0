"""Fixtures for the lock-file sources: real shared data and this repository's fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """tests/fixtures: files made here by the real tools (or by hand where none runs)."""
    return FIXTURES
