"""``patchpilot playbook``: add, list, show, enable/disable and the dry run on a real
estate; a bad document ends with its field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.db.tables import outbox, playbooks

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "playbooks"
TIER1 = """\
name: high-on-tier1
trigger: {events: [new]}
condition: finding.severity == "High" && asset.criticality == 1 && finding.epss_score == null
  && finding.vuln_id in ["CVE-2006-1015", "CVE-2007-5424"]
actions:
  - type: email
    with: {to: ["{{ asset.owner }}"]}
"""


@pytest.fixture
def run(estate: Engine, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), terminal_width=250, env={"COLUMNS": "250"})
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_playbook_commands(run, estate: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "tier1.yaml"
    path.write_text(TIER1, encoding="utf-8")
    # The dry run first: nothing is stored, nothing queued.
    shown = run("playbook", "test", str(path), "--since", "30d", "--json")
    assert [(m["event_id"], m["kind"], m["subject"], m["action"]) for m in json.loads(shown)] \
        == [(1, "new", "finding:1", "email"), (15, "new", "finding:15", "email")]
    table = run("playbook", "test", str(path))
    assert "2 events would fire, 2 actions (dry run: nothing sent)" in table
    assert "CVE-2007-5424" in table and "testphp" in table
    with estate.connect() as conn:
        assert conn.execute(select(func.count()).select_from(playbooks)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == 0
    assert run("playbook", "add", str(path)).strip() == \
        "playbook high-on-tier1 added: version 1, enabled"
    assert run("playbook", "add", str(EXAMPLES / "kev-added-webhook.yaml")).strip() == \
        "playbook kev-added-webhook added: version 1, enabled"
    assert run("playbook", "disable", "kev-added-webhook").strip() == \
        "playbook kev-added-webhook disabled"
    listed = json.loads(run("playbook", "list", "--json"))
    assert [(p["name"], p["enabled"], p["version"], p["events"], p["actions"])
            for p in listed] == [
        ("high-on-tier1", True, 1, ["new"], ["email"]),
        ("kev-added-webhook", False, 1, ["known_exploited_added"], ["webhook"])]
    assert run("playbook", "show", "high-on-tier1") == \
        "# high-on-tier1: version 1, enabled\n" + TIER1
    assert run("playbook", "enable", "nope", code=2).strip() == \
        "error: name: no playbook named 'nope'"


def test_a_bad_playbook_is_refused_naming_the_field(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.yaml"
    path.write_text(TIER1.replace("[new]", "[new, exploded]"), encoding="utf-8")
    out = run("playbook", "add", str(path), code=2)
    assert " ".join(out.split()).startswith(
        "error: trigger.events[1]: unknown event kind 'exploded'")
    path.write_text(TIER1.replace('== "High"', '== "High" &&&'), encoding="utf-8")
    out = run("playbook", "test", str(path), code=2)
    assert out.startswith("error: condition: does not compile at line 1, column ")
