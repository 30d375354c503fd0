"""The plan's Windows work on a mixed estate (tests/builders/windows_plan_estate.py): one
item per KB with the real February and March 2026 MSRC documents deciding supersedence and
restarts, each host's next window, the stored plan, and ``patchpilot plan``'s Windows
formats."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.findings.lifecycle import apply_findings
from patchpilot.findings.model import MSRC
from patchpilot.knowledge.update import update_from
from patchpilot.scans import plan_store
from patchpilot.scans.plan import WINDOWS_UPDATE, build_plan, manager_of, windows_updates
from tests.builders.windows_plan_estate import WINDOWS_FEEDS, build_windows_estate

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)  # a Friday
# The group windows-servers' window: Sundays 02:00 in Tokyo.
SUNDAY_TOKYO = "2026-12-05T17:00:00+00:00"
MARCH_STEP = "install KB5078766 (2026-03 cumulative update), restart required"


@pytest.fixture
def estate(engine: Engine, feed_dir) -> dict[str, int]:  # type: ignore[no-untyped-def]
    assert {r.status for r in update_from(engine, [feed_dir(WINDOWS_FEEDS)])} == {"loaded"}
    return build_windows_estate(engine)


def test_supersedence_and_restart_from_the_documents(estate: dict[str, int],
                                                     engine: Engine) -> None:
    with engine.connect() as conn:
        updates = windows_updates(conn)
    # March's cumulative update supersedes February's, which superseded January's.
    assert updates.newest("KB5075906", {"KB5075906", "KB5078766"}) == "KB5078766"
    assert updates.newest("KB5073457", {"KB5073457", "KB5078766"}) == "KB5078766"
    assert updates.newest("KB5078766", {"KB5075906", "KB5078766"}) == "KB5078766"
    # The hotpatch chain is another: the cumulative update does not replace it.
    assert updates.newest("KB5078737", {"KB5078737", "KB5078766"}) == "KB5078737"
    assert (updates.restart["KB5078766"], updates.restart["KB5078737"],
            updates.restart["KB5077465"]) == (True, False, False)
    assert manager_of("Windows") == WINDOWS_UPDATE


def test_windows_items_by_kb(estate: dict[str, int], engine: Engine) -> None:
    with engine.connect() as conn:
        plan = build_plan(conn, now=NOW)
    assert [(i.summary, i.manager, i.command, i.reboot) for i in plan.items] == [
        ("firefox → 91.7.0-3.el8_5.alma fixes 10 CVEs on 2 hosts", "dnf",
         "dnf upgrade firefox", False),
        # February's 27 CVEs on win-dc-01 are fixed by March's update, which supersedes
        # February's: no item for KB5075906.
        ("KB5078766 fixes 67 CVEs on 3 hosts; restart", WINDOWS_UPDATE, MARCH_STEP, True),
        ("kernel → 4.18.0-372.9.1.el8 fixes 40 CVEs on 1 host", "dnf", "dnf upgrade kernel",
         True),
        ("KB5077465 fixes 2 CVEs on 1 host", WINDOWS_UPDATE,
         "install KB5077465 (2026-03 security update)", False)]
    march = plan.items[1]
    assert (march.ecosystem, march.package, march.by_priority) == (
        "Windows", "Windows Server 2022", {"P3": 146, "P4": 1})
    assert [(h.name, h.status, h.installed_version, len(h.vulns), h.groups, h.next_window,
             [(i.location, i.installed_version, i.command) for i in h.installations])
            for h in march.hosts] == [
        ("win-app-02", "pending", "10.0.20348.4773", 40, ("windows-servers",), SUNDAY_TOKYO,
         [(None, "10.0.20348.4773", None)]),
        ("win-dc-01", "pending", "10.0.20348.3270", 67, ("windows-servers",), SUNDAY_TOKYO,
         [(None, "10.0.20348.3270", None)]),
        ("win-sql-03", "pending", "10.0.20348.4773", 40, (), None,
         [(None, "10.0.20348.4773", None)])]
    sql = plan.items[3]
    assert (sql.package, [h.name for h in sql.hosts], sql.vulns) == (
        "Microsoft SQL Server 2022", ["win-sql-03"], ["CVE-2026-21262", "CVE-2026-26115"])
    assert plan.unfixed[0].package == "ajenti-panel" and len(plan.unfixed) == 1

    # win-app-02 installed March's update: its next complete report has none of them.
    apply_findings(engine, estate["win-app-02"], [], complete=True, producer=MSRC)
    with engine.connect() as conn:
        after = build_plan(conn, now=NOW)
    assert after.items[1].summary == ("KB5078766 fixes 67 CVEs on 2 hosts (1 verified fixed); "
                                      "restart")
    assert [(h.name, h.status) for h in after.items[1].hosts] == [
        ("win-app-02", "verified"), ("win-dc-01", "pending"), ("win-sql-03", "pending")]


def test_stored_plan(estate: dict[str, int], engine: Engine) -> None:
    state = plan_store.rebuild(engine, now=NOW)
    with engine.connect() as conn:
        page = plan_store.read_page(conn, state, now=NOW)
        group = plan_store.read_page(conn, state, plan_store.query_for(
            conn, group="windows-servers"), now=NOW)
        kb_items = list(plan_store.iter_items(conn, state, manager=WINDOWS_UPDATE,
                                                  now=NOW))
    march = page.items[1]
    assert (march.summary, march.manager, march.reboot, march.pending) == (
        "KB5078766 fixes 67 CVEs on 3 hosts; restart", WINDOWS_UPDATE, True, 3)
    assert march.hosts_by_window == [{"window": SUNDAY_TOKYO, "hosts": 2},
                                     {"window": None, "hosts": 1}]
    assert [v.summary for v in group.items] == ["KB5078766 fixes 67 CVEs on 2 hosts; restart"]
    assert [(i.fixed_version, [h.name for h in i.hosts], [h.next_window for h in i.hosts])
            for i in kb_items] == [
        ("KB5078766", ["win-app-02", "win-dc-01", "win-sql-03"],
         [SUNDAY_TOKYO, SUNDAY_TOKYO, None]),
        ("KB5077465", ["win-sql-03"], [None])]


def test_cli_windows_formats(estate: dict[str, int], database_url: str, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    result = runner.invoke(app, ["plan", "--format", "windows-kbs"])
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.output))) == [
        ["host", "kb", "title", "restart"],
        ["win-app-02", "KB5078766", "2026-03 cumulative update for Windows Server 2022",
         "yes"],
        ["win-dc-01", "KB5078766", "2026-03 cumulative update for Windows Server 2022",
         "yes"],
        ["win-sql-03", "KB5078766", "2026-03 cumulative update for Windows Server 2022",
         "yes"],
        ["win-sql-03", "KB5077465", "2026-03 security update for Microsoft SQL Server 2022",
         "no"]]
    script = tmp_path / "updates.ps1"
    result = runner.invoke(app, ["plan", "--format", "powershell", "--group",
                                 "windows-servers", "-o", str(script)])
    assert result.exit_code == 0, result.output
    text = script.read_text()
    assert "if ($me -eq 'win-dc-01') {" in text and "win-sql-03" not in text
    assert text.count("Install-WindowsUpdate -KBArticleID 'KB5078766' -AcceptAll "
                      "-AutoReboot") == 2
