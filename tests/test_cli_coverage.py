"""Coverage in the command line: ``scan file`` says which ecosystems no advisory covers in
the table, the JSON and the SARIF; ``db status`` shows advisories per ecosystem and
release beside the estate's packages.  Real feeds (twelve Django advisories, Alpine 3.10's
secdb) and real inventories, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.db.engine import make_engine
from patchpilot.db.tables import affected
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.transports.file import read_inventory_file

runner = CliRunner()

NPM_LOCK = "inventories/npm-package-lock/osv-scanner__fix__in-place-npm__package-lock.json"
POETRY_LOCK = "inventories/poetry-lock/syft__python__poetry__simple-deps__poetry.lock"
DPKG_12 = "inventories/debian12-dpkg-status"
NOT_COVERED_NPM = "not covered: npm 106 packages (0 advisories loaded)"


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, feed_dir,  # type: ignore[no-untyped-def]
        shared_data: Path):
    """Run ``patchpilot …`` against a knowledge base of PyPI and Alpine 3.10 advisories."""
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PATCHPILOT_FEEDS_DIR", raising=False)
    django = sorted((shared_data / "osv/pypi/django").glob("PYSEC-*.yaml"))[:12]
    root = feed_dir({**{f"osv/{p.name}": p for p in django},
                     "alpine/main.yaml": "osv/alpine-secdb/v3.10/main.yaml"})

    def run(*args: str, code: int = 0):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result

    run("db", "update", "--from", str(root))
    return run


def test_scan_file_table_says_what_is_not_covered(cli, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    lines = cli("scan", "file", str(shared_data / NPM_LOCK)).stdout.splitlines()
    summary = next(line for line in lines if line.startswith("no findings"))
    assert summary.endswith("· 1 ecosystem not covered by the advisories loaded")
    at = lines.index(NOT_COVERED_NPM)
    assert lines[at + 1].startswith("No findings in an ecosystem that is not covered means "
                                    "nothing could be checked, not that it is clean")
    # A covered lock says nothing more than its findings.
    out = cli("scan", "file", str(shared_data / POETRY_LOCK)).stdout
    assert "not covered" not in out


def test_scan_file_json_and_sarif_carry_the_coverage(cli, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(cli("scan", "file", str(shared_data / NPM_LOCK), "-f", "json").stdout)
    assert doc["findings"] == []
    assert doc["coverage"] == {
        "min_advisories": 10, "not_covered": ["npm"],
        "ecosystems": [{"ecosystem": "npm", "packages": 106, "advisories": 0, "assets": 1,
                        "covered": False}]}
    sarif = json.loads(cli("scan", "file", str(shared_data / NPM_LOCK), "-f", "sarif").stdout)
    run = sarif["runs"][0]
    assert run["results"] == []
    assert run["properties"]["coverage"] == doc["coverage"]
    [invocation] = run["invocations"]
    assert invocation["executionSuccessful"] is True
    assert [(n["level"], n["message"]["text"]) for n in
            invocation["toolExecutionNotifications"]] == [("warning", NOT_COVERED_NPM)]
    # Covered: the section is there, with nothing to warn about.
    covered = json.loads(cli("scan", "file", str(shared_data / POETRY_LOCK), "-f",
                             "sarif").stdout)["runs"][0]
    assert covered["invocations"][0]["toolExecutionNotifications"] == []
    assert covered["properties"]["coverage"]["not_covered"] == []
    assert covered["properties"]["coverage"]["ecosystems"][0]["advisories"] == 12


def test_db_status_shows_coverage_per_ecosystem_and_release(  # type: ignore[no-untyped-def]
        cli, shared_data: Path, database_url: str) -> None:
    # The estate: this build machine's Debian 12 and an npm project (as the server stores
    # an uploaded inventory).
    engine = make_engine(database_url)
    try:
        for path, distro, host in ((DPKG_12, "debian:12", "plant3-ci"),
                                   (NPM_LOCK, None, "shop-frontend")):
            ingest_inventory(engine, read_inventory_file(shared_data / path, distro,
                                                         hostname=host))
        with engine.connect() as conn:
            alpine_rows = conn.execute(select(func.count()).select_from(affected).where(
                affected.c.ecosystem == "Alpine:3.10")).scalar()
    finally:
        engine.dispose()
    doc = json.loads(cli("db", "status", "--json").stdout)
    # What the estate has and no advisory covers first, most packages first.
    assert doc["coverage"] == [
        {"ecosystem": "Debian:12", "advisories": 0, "affected": 0, "covered": False,
         "packages": 710, "assets": 1},
        {"ecosystem": "npm", "advisories": 0, "affected": 0, "covered": False,
         "packages": 106, "assets": 1},
        {"ecosystem": "Alpine:3.10", "advisories": 1111, "affected": alpine_rows,
         "covered": True, "packages": 0, "assets": 0},
        {"ecosystem": "PyPI", "advisories": 12, "affected": 12, "covered": True,
         "packages": 0, "assets": 0}]
    text = cli("db", "status").stdout
    assert "Coverage per ecosystem and release" in text
    cells = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[1:-1]]
             for line in text.splitlines() if line.count("│") == 7}
    assert cells["Debian:12"] == ["Debian:12", "0", "0", "710", "1", "not covered"]
    assert cells["PyPI"] == ["PyPI", "12", "12", "0", "0", "yes"]
    assert ("An ecosystem with fewer than 10 advisories loaded is not covered"
            in " ".join(text.split()))
