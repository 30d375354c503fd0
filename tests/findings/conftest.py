"""Fixtures the findings tests share: the summary tests' estate on its test clock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.builders.summary_estate import Clock, build_timeline, set_clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Every write of the lifecycle, the prioritiser and the summary happens at ``clock``
    (T0 to begin with)."""
    return set_clock(monkeypatch)


@pytest.fixture
def timeline(engine: Engine, feed_dir: Callable[..., Path], clock: Clock) -> dict[str, int]:
    """Five hosts scanned at T0, CMDB context and the plant1 group, a full prioritise;
    plant2-ws-11 patched firefox at T0+5d, plant1-web-02 at T0+12d; the clock then
    stands at T0+20d.  Host name -> asset id."""
    return build_timeline(engine, feed_dir, clock)
