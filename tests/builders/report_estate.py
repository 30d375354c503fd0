"""The report tests' estate: the patch plan's hosts and advisories (``plan_estate``), one
host patched by a later scan, CMDB context, the plant1 group, every finding prioritised;
and the figures its reports must show, counted by hand."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from patchpilot import worker
from patchpilot.assets.groups import add_members, create_group
from patchpilot.knowledge.update import update_from
from patchpilot.queue import Job
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

# The figures of this estate, by hand from its data:
# 122 findings matched, of which plant2-ws-11's 10 firefox ones were fixed by its rescan.
OPEN, P1, P2, P4 = 112, 61, 42, 9
KEV_FINDINGS, KEV_CVES, KEV_ASSETS = 6, 2, 3
# Due dates of the KEV findings (CISA's due date) are past: 6 open ones are overdue and
# 2 of the 10 fixed ones were fixed late -- 8 within SLA of 16 due, 50 %.
OVERDUE, FIXED, WITHIN = 6, 10, 8


def pdf_text(path: Path) -> str:
    """The PDF's text layer, laid out as on the page."""
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def report_estate(engine: Engine, feed_dir: Callable[..., Path]) -> dict[str, int]:
    """The report tests' estate, host name -> asset id: plant1 (two web servers, web
    shop), a development box, and a patched workstation whose firefox findings were fixed
    by a later scan."""
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
