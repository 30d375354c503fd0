"""The plan tests' estate (tests/builders/plan_estate.py) with its asset group and window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from patchpilot import worker
from patchpilot.assets.groups import add_members, create_group
from patchpilot.knowledge.update import update_from
from patchpilot.queue import Job
from patchpilot.scans.groups import add_window
from tests.builders.plan_estate import (
    AJENTI,
    FEEDS,
    NEW_FIREFOX,
    OLD_FIREFOX,
    OLD_KERNEL,
    OLD_PYGMENTS,
    context,
    scan,
)


@pytest.fixture
def kb(engine: Engine, feed_dir) -> Engine:  # type: ignore[no-untyped-def]
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    return engine


@pytest.fixture
def estate(kb: Engine) -> dict[str, int]:
    hosts = {
        "plant1-web-01": (OLD_FIREFOX, OLD_KERNEL, OLD_PYGMENTS),
        "plant1-web-02": (OLD_FIREFOX, OLD_KERNEL),
        "plant2-dev-07": (OLD_FIREFOX, AJENTI),
        "plant2-ws-11": (NEW_FIREFOX,),
    }
    ids = {name: scan(kb, name, *pkgs) for name, pkgs in hosts.items()}
    context(kb, ids["plant1-web-01"], 1, "internet-facing", "production")
    context(kb, ids["plant1-web-02"], 2, "internal", "production")
    context(kb, ids["plant2-dev-07"], 4, "isolated", "development")
    with kb.begin() as conn:
        plant1 = create_group(conn, "sato", "plant1")
        add_members(conn, "sato", plant1, [ids["plant1-web-01"], ids["plant1-web-02"]])
        add_window(conn, "sato", plant1, rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=1;BYMINUTE=0",
                   duration=timedelta(hours=4), timezone="Asia/Tokyo")
    # The CMDB context arrived after the scans: re-prioritise (what the job does).
    worker.HANDLERS["prioritise"](kb, Job(0, "prioritise", {}, 1, None, None, None, None))
    return ids
