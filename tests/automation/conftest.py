"""An estate with real finding events: the Nessus report of one web server imported through
the importers (15 ``new`` events and one ``import_finished``), the server given a CMDB
context (tier 1, its owner) and put in a group."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from patchpilot.assets.cmdb import CmdbRecord
from patchpilot.assets.context import set_context
from patchpilot.assets.groups import add_members, create_group
from patchpilot.importers.apply import import_file

NESSUS = "reports/tenable/nessus__nessus_with_cwe-.nessus"


@pytest.fixture
def estate(engine: Engine, shared_data: Path) -> Engine:
    """The imported estate (asset 1 ``testphp``, findings 1-15, events 1-16)."""
    summary = import_file(engine, shared_data / NESSUS)
    assert (summary.assets, summary.new) == (1, 15)
    set_context(engine, 1, CmdbRecord(
        where="test", criticality=1, environment="production", exposure="internet-facing",
        owner="web-owner@plant.example", tags=("web", "php"),
        present=frozenset({"criticality", "environment", "exposure", "owner", "tags"})),
        actor="test")
    with engine.begin() as conn:
        group_id = create_group(conn, "test", "dmz")
        add_members(conn, "test", group_id, [1])
    return engine
