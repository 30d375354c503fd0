"""Inventory fixtures: the real captured inventories in ../shared/data (never copied here)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def inventories(shared_data: Path) -> Path:
    """The directory of real package databases, lock files and SBOMs."""
    return shared_data / "inventories"
