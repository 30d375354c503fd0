"""The summary tests' estate, scanned on a test clock: the report estate's hosts and
advisories plus a CI host with GitPython and Werkzeug advisories, CMDB context, the
plant1 group; two hosts patched on later days.  The summary and the findings list tests
build on it (their ``clock`` and ``timeline`` fixtures: tests/findings/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from patchpilot import worker
from patchpilot.assets.cmdb import parse_records
from patchpilot.assets.context import apply_records
from patchpilot.assets.groups import add_members, create_group
from patchpilot.findings import ingest, lifecycle, summary, triage
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package
from patchpilot.queue import Job
from patchpilot.scoring import apply as scoring_apply
from tests.builders.plan_estate import (
    AJENTI,
    NEW_FIREFOX,
    OLD_FIREFOX,
    OLD_KERNEL,
    OLD_PYGMENTS,
    scan,
)
from tests.builders.plan_estate import FEEDS as REPORT_FEEDS

PYPI = Ecosystem("PyPI")
# Five GitPython advisories affect 3.1.0 (three carry a CVSS vector: 7.8, 6.5, 7.8), three
# Werkzeug ones 2.2.2 (one scored, 7.5): scores, ties and unscored findings for the list.
GITPYTHON = Package(PYPI, "GitPython", "3.1.0")
WERKZEUG = Package(PYPI, "Werkzeug", "2.2.2")
FEEDS = {
    **REPORT_FEEDS,
    **{f"osv/{name}.yaml": f"osv/pypi/gitpython/{name}.yaml" for name in (
        "PYSEC-2022-42992", "PYSEC-2023-137", "PYSEC-2023-161", "PYSEC-2023-165",
        "PYSEC-2024-4")},
    **{f"osv/{name}.yaml": f"osv/pypi/werkzeug/{name}.yaml" for name in (
        "PYSEC-2023-57", "PYSEC-2023-58", "PYSEC-2023-221")},
}
HOSTS = {
    "plant1-web-01": (OLD_FIREFOX, OLD_KERNEL, OLD_PYGMENTS),
    "plant1-web-02": (OLD_FIREFOX, OLD_KERNEL),
    "plant2-dev-07": (OLD_FIREFOX, AJENTI),
    "plant2-ws-11": (OLD_FIREFOX,),
    "plant2-ci-03": (GITPYTHON, WERKZEUG, OLD_PYGMENTS),
}
CMDB = [
    {"hostname": "plant1-web-01", "criticality": 1, "exposure": "internet-facing",
     "environment": "production", "service": "web shop"},
    {"hostname": "plant1-web-02", "criticality": 2, "exposure": "internal",
     "environment": "production", "service": "web shop"},
    {"hostname": "plant2-dev-07", "criticality": 4, "exposure": "isolated",
     "environment": "development", "service": "lab"},
]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning
NOW = T0 + timedelta(days=20)
BANDS = ("Critical", "High", "Medium", "Low", "None")


class Clock:
    """The time the lifecycle, the prioritiser and the summary read; the test moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: float) -> None:
        """Let ``days`` pass."""
        self.now += timedelta(days=days)


def set_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A Clock at T0, which every write of the lifecycle, the prioritiser and the summary
    reads from now on (through ``monkeypatch``: undone after the test)."""
    c = Clock(T0)
    for module in (lifecycle, triage, ingest, scoring_apply, summary):
        monkeypatch.setattr(module, "now_utc", c)
    return c


def prioritise_all(engine: Engine) -> None:
    """The ``prioritise`` worker job for the whole estate."""
    worker.HANDLERS["prioritise"](engine, Job(0, "prioritise", {}, 1, None, None, None, None))


def build_timeline(engine: Engine, feed_dir: Callable[..., Path], clock: Clock
                   ) -> dict[str, int]:
    """Five hosts scanned at T0, CMDB context and the plant1 group, a full prioritise;
    plant2-ws-11 patched firefox at T0+5d, plant1-web-02 at T0+12d; the clock then
    stands at T0+20d.  Host name → asset id."""
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    ids = {name: scan(engine, name, *packages) for name, packages in HOSTS.items()}
    apply_records(engine, parse_records(CMDB), source="cmdb-import", actor="sato")
    with engine.begin() as conn:
        plant1 = create_group(conn, "sato", "plant1")
        add_members(conn, "sato", plant1, [ids["plant1-web-01"], ids["plant1-web-02"]])
    prioritise_all(engine)
    clock.advance(5)
    scan(engine, "plant2-ws-11", NEW_FIREFOX)
    clock.advance(7)
    scan(engine, "plant1-web-02", NEW_FIREFOX, OLD_KERNEL)
    clock.advance(8)
    assert clock.now == NOW
    return ids
