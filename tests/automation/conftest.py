"""An estate with real finding events: the Nessus report of one web server imported through
the importers (15 ``new`` events and one ``import_finished``), the server given a CMDB
context (tier 1, its owner) and put in a group -- after the playbooks of a test are stored,
since a playbook acts on the events from its storing on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from patchpilot.assets.cmdb import CmdbRecord
from patchpilot.assets.context import set_context
from patchpilot.assets.groups import add_members, create_group
from patchpilot.automation.store import save_playbook
from patchpilot.importers.apply import import_file

NESSUS = "reports/tenable/nessus__nessus_with_cwe-.nessus"


@pytest.fixture
def estate_with(engine: Engine, shared_data: Path) -> Callable[..., Engine]:
    """``estate_with(*documents)``: store the playbooks (by ``sato``), then build the
    estate (asset 1 ``testphp``, findings 1-15, events 1-16)."""

    def build(*documents: str) -> Engine:
        with engine.begin() as conn:
            for document in documents:
                save_playbook(conn, "sato", document)
        summary = import_file(engine, shared_data / NESSUS)
        assert (summary.assets, summary.new) == (1, 15)
        set_context(engine, 1, CmdbRecord(
            where="test", criticality=1, environment="production",
            exposure="internet-facing", owner="web-owner@plant.example", tags=("web", "php"),
            present=frozenset({"criticality", "environment", "exposure", "owner", "tags"})),
            actor="test")
        with engine.begin() as conn:
            group_id = create_group(conn, "test", "dmz")
            add_members(conn, "test", group_id, [1])
        return engine

    return build


@pytest.fixture
def estate(estate_with: Callable[..., Engine]) -> Engine:
    """The estate without playbooks."""
    return estate_with()
