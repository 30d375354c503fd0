"""``patchpilot plan`` on the stored plan: table, CSV, JSON and Ansible, by group."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.scans.plan import build_plan, plan_rows


@pytest.fixture
def cli(estate: dict[str, int], kb: Engine, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, ["plan", *args])
        assert result.exit_code == 0, result.output
        return result.output

    return run


def test_plan_formats(cli, kb: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with kb.connect() as conn:
        built = build_plan(conn)
        plant1 = build_plan(conn, group="plant1")
    table = cli()
    for item in built.items:
        assert item.summary in table.replace("\n", " ") or item.package in table
    assert "no fix yet: ajenti-panel (PyPI) 1 vulnerabilities on 1 hosts" in table
    rows = list(csv.DictReader(io.StringIO(cli("--format", "csv", "--group", "plant1"))))
    assert rows == [{k: str(v) for k, v in r.items()} for r in plan_rows(plant1.items)]
    document = json.loads(cli("--format", "json"))
    assert [(i["package"], i["fixed_version"], len(i["hosts"])) for i in document["items"]] == [
        (i.package, i.fixed_version, len(i.hosts)) for i in built.items]
    cli("--format", "ansible", "-o", str(tmp_path / "ansible"))
    plays = yaml.safe_load((tmp_path / "ansible" / "playbook.yml").read_text())
    inventory = yaml.safe_load((tmp_path / "ansible" / "inventory.yml").read_text())
    assert [p["hosts"] for p in plays] == [f"pp_item_{n}" for n in range(1, len(plays) + 1)]
    assert set(inventory["all"]["children"]) == {p["hosts"] for p in plays}
