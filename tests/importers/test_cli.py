"""``patchpilot import``: the summary table, JSON, dry runs, refusals, the formats list,
and ``patchpilot assets unknown`` naming the report that created an asset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.db.tables import findings
from patchpilot.importers.registry import FORMATS


@pytest.fixture
def run(engine: Engine, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), terminal_width=250, env={"COLUMNS": "250"})
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_import_prints_a_summary_and_lists_created_assets(
        run, engine: Engine, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    reports = shared_data / "reports"
    out = run("import", str(reports / "tenable" / "nessus__nessus_with_cwe-.nessus"),
              str(reports / "npm_audit" / "many_vuln.json"), "--asset", "shop-frontend")
    lines = [" ".join(line.replace("│", " ").split()) for line in out.splitlines()]
    assert ("nessus__nessus_with_cwe-.nessus nessus importer:tenable 1 (1) 15 15 0 0 0 0 -"
            in " ".join(lines))
    assert "many_vuln.json npm-audit importer:npm-audit 1 (1) 5 5 0 0 0 0 -" in " ".join(lines)
    assert "2 assets created: testphp, shop-frontend" in " ".join(lines)
    unknown = json.loads(run("assets", "unknown", "--json"))
    assert sorted((a["name"], a["discovered_by"]) for a in unknown) == [
        ("shop-frontend", "importer:npm-audit"), ("testphp", "importer:tenable")]
    again = run("import", str(reports / "npm_audit" / "many_vuln.json"), "--asset",
                "shop-frontend", "--json")
    [summary] = json.loads(again)
    assert (summary["duplicate"], summary["new"]) == (True, 0)


def test_dry_run_and_refusal(run, engine: Engine, shared_data: Path,
                             tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sample = shared_data / "reports" / "trivy" / "severity_prio.json"
    out = run("import", str(sample), "--dry-run")
    assert "dry run: nothing was stored" in out
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(findings)).scalar_one() == 0
    junk = tmp_path / "junk.txt"
    junk.write_text("not a report\n", encoding="utf-8")
    refused = " ".join(run("import", str(junk), code=2).split())
    assert "junk.txt: no importer recognises this text file; tried nessus," in refused
    assert "nothing of this file was stored" in refused
    wrong = " ".join(run("import", str(sample), "--format", "nope", code=2).split())
    assert "no report format 'nope'; the formats are:" in wrong


def test_formats_lists_every_format(run) -> None:  # type: ignore[no-untyped-def]
    out = run("import", "--formats")
    for f in FORMATS:
        assert f" {f.name} " in out
    assert f"{len(FORMATS)} formats" in out
