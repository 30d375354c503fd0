"""``patchpilot agents list|approve|reject`` and ``scan file`` of a file with nothing in it,
against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.db.tables import agents, audit_log
from patchpilot.findings.ingest import AssetClaimedError, ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.models import Ecosystem, Package
from patchpilot.server.api.agents import EnrolRequest, enrol
from patchpilot.server.security import create_enrolment_token

runner = CliRunner()
PYGMENTS = Package(Ecosystem("PyPI"), "Pygments", "2.14.0")


@pytest.fixture
def held(engine: Engine, database_url: str, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> tuple[int, int, int]:
    """Agent 1 reports for asset vm; agent 2 asked for it too and is held: (vm, 1, 2)."""
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    token = create_enrolment_token(engine, created_by="test", uses=2)
    first, second = (enrol(EnrolRequest(token=token, name=n), engine).agent_id
                     for n in ("vm", "intruder"))
    inv = Inventory.from_packages([PYGMENTS], asset=AssetIdentity(hostname="vm"),
                                  collector=Collector(name="agent"))
    vm = ingest_inventory(engine, inv, agent_id=first).asset_id
    with pytest.raises(AssetClaimedError):
        ingest_inventory(engine, inv, agent_id=second)
    return vm, first, second


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_agents_list_approve_reject(held: tuple[int, int, int], engine: Engine) -> None:
    vm, first, second = held
    listed = json.loads(_run("agents", "list", "--pending", "--json"))
    assert [(a["id"], a["name"], a["asset_id"], a["pending_asset_id"], a["pending_asset"])
            for a in listed] == [(second, "intruder", None, vm, "vm")]
    assert listed[0]["pending_since"]
    table = _run("agents", "list")
    assert f"vm ({vm})" in table and "intruder" in table
    assert f"agent {first}: is not waiting for approval" in _run(
        "agents", "approve", str(first), code=2)
    assert "agent 99: no such active agent" in _run("agents", "reject", "99", code=2)
    assert _run("agents", "approve", str(second)) == (
        f"agent {second} now reports for asset {vm}\n")
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(
            agents.c.id, agents.c.asset_id, agents.c.pending_asset_id).order_by(agents.c.id))]
        actions = [(r.actor, r.action, r.target) for r in conn.execute(
            select(audit_log).where(audit_log.c.action.in_(("agent.approve", "agent.reject")))
            .order_by(audit_log.c.id))]
    assert rows == [(first, None, None), (second, vm, None)]
    assert actions == [("cli", "agent.approve", str(second))]
    # The unbound agent reports "vm" again: held; rejected with --revoke.
    inv = Inventory.from_packages([PYGMENTS], asset=AssetIdentity(hostname="vm"),
                                  collector=Collector(name="agent"))
    with pytest.raises(AssetClaimedError):
        ingest_inventory(engine, inv, agent_id=first)
    assert _run("agents", "reject", str(first), "--revoke") == (
        f"agent {first} may not report for asset {vm}; its credential is revoked\n")
    with engine.connect() as conn:
        row = conn.execute(select(agents).where(agents.c.id == first)).one()
    assert (row.asset_id, row.pending_asset_id, row.revoked_at is not None) == (
        None, None, True)
    assert json.loads(_run("agents", "list", "--pending", "--json")) == []


def test_the_agent_command_still_runs_the_agent() -> None:
    """`patchpilot agent --server … --enrol …` (make run, docs, systemd) is unchanged."""
    assert "--enrol" in _run("agent", "--help")
    assert "approve" in _run("agents", "--help")


@pytest.mark.parametrize("name", [
    "cyclonedx/osv-scalibr__sbom__cdx__sbom.bom.json",  # components without usable purls
    "spdx/osv-scalibr__sbom__spdx__minimal.spdx.json",  # no packages at all
    "npm-package-lock/osv-scalibr__language__javascript__packagelockjson__empty.v1.json",
])
def test_scan_file_refuses_a_file_with_no_package(name: str, shared_data: Path,
                                                  engine: Engine, database_url: str,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    path = shared_data / "inventories" / name
    output = runner.invoke(app, ["scan", "file", str(path)])
    assert output.exit_code == 2, output.output
    assert f"error: {path}: no package could be read from it" in output.output
