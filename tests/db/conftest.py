"""Shared fixtures of the database tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

import patchpilot.db


def _migrate(engine: Engine, direction: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location",
                            str(Path(patchpilot.db.__file__).parent / "migrations"))
        cfg.attributes["connection"] = conn
        getattr(command, direction)(cfg, revision)


@pytest.fixture
def migrate() -> Callable[[Engine, str, str], None]:
    """``migrate(engine, "upgrade"|"downgrade", revision)``, as upgrade_schema runs it."""
    return _migrate
