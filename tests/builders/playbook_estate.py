"""An estate with real finding events for the playbooks' API and page tests, built as
tests/automation/conftest.py uses it too: the Nessus report of one web server imported
through the importers (15 ``new`` events, one ``import_finished``), the server given a
CMDB context (tier 1, its owner) and put in the group ``dmz``.

A helper module (like ``sessions.py``), not a test module: the API and the page tests
share it.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from patchpilot.assets.cmdb import CmdbRecord
from patchpilot.assets.context import set_context
from patchpilot.assets.groups import add_members, create_group
from patchpilot.automation.store import save_playbook
from patchpilot.importers.apply import import_file

NESSUS = "reports/tenable/nessus__nessus_with_cwe-.nessus"
# The report's 2007 CVEs, in event order (findings and events 10-15), all High.
CVE_2007 = ["CVE-2007-0448", "CVE-2007-1381", "CVE-2007-1584", "CVE-2007-1888",
            "CVE-2007-2844", "CVE-2007-5424"]


def build_estate(engine: Engine, shared_data: Path, *documents: str,
                 actor: str = "sato") -> Engine:
    """Store ``documents`` as playbooks (by ``actor``), then build the estate (asset 1
    ``testphp``, findings 1-15, events 1-16): the playbooks act on its events."""
    with engine.begin() as conn:
        for document in documents:
            save_playbook(conn, actor, document)
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
