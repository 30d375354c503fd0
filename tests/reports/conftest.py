"""A small real estate for the report tests (``tests.builders.report_estate``): real
advisories (AlmaLinux, PyPI), the real CISA KEV catalogue, four hosts' inventories ingested
and matched, CMDB context, a group."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.builders.report_estate import report_estate


@pytest.fixture
def estate(engine: Engine, feed_dir: Callable[..., Path]) -> dict[str, int]:
    """plant1 (two web servers, web shop), a development box, and a patched workstation
    whose firefox findings were fixed by a later scan."""
    return report_estate(engine, feed_dir)
