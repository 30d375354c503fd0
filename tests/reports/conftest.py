"""A small real estate for the report tests: real advisories (AlmaLinux, PyPI), the real
CISA KEV catalogue, four hosts' inventories ingested and matched, CMDB context, a group.
The hosts, advisories and helpers are the patch plan tests' (tests/scans/test_plan.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from patchpilot import worker
from patchpilot.assets.groups import add_members, create_group
from patchpilot.knowledge.update import update_from
from patchpilot.queue import Job
from tests.scans.test_plan import (
    AJENTI,
    FEEDS,
    NEW_FIREFOX,
    OLD_FIREFOX,
    OLD_KERNEL,
    OLD_PYGMENTS,
    context,
    scan,
)

__all__ = ["AJENTI", "FEEDS", "NEW_FIREFOX", "OLD_FIREFOX", "OLD_KERNEL", "OLD_PYGMENTS",
           "scan"]


@pytest.fixture
def estate(engine: Engine, feed_dir) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """plant1 (two web servers, web shop), a development box, and a patched workstation
    whose firefox findings were fixed by a later scan."""
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    hosts = {
        "plant1-web-01": (OLD_FIREFOX, OLD_KERNEL, OLD_PYGMENTS),
        "plant1-web-02": (OLD_FIREFOX, OLD_KERNEL),
        "plant2-dev-07": (OLD_FIREFOX, AJENTI),
        "plant2-ws-11": (OLD_FIREFOX,),
    }
    ids = {name: scan(engine, name, *pkgs) for name, pkgs in hosts.items()}
    scan(engine, "plant2-ws-11", NEW_FIREFOX)  # patched: its firefox findings are fixed
    context(engine, ids["plant1-web-01"], 1, "internet-facing", "production", "web shop")
    context(engine, ids["plant1-web-02"], 2, "internal", "production", "web shop")
    context(engine, ids["plant2-dev-07"], 4, "isolated", "development", "lab")
    with engine.begin() as conn:
        plant1 = create_group(conn, "sato", "plant1")
        add_members(conn, "sato", plant1, [ids["plant1-web-01"], ids["plant1-web-02"]])
    worker.HANDLERS["prioritise"](engine, Job(0, "prioritise", {}, 1, None, None, None, None))
    return ids


