"""The command line end to end: ``db update``, ``db status``, ``scan`` in every format.

Each test runs the real ``patchpilot`` commands against a real database (SQLite and
PostgreSQL) loaded from real feed files, and checks the exact output.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.models import Ecosystem, Package

runner = CliRunner()

FEEDS = {
    "osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json",
    "osv/PYSEC-2023-117.yaml": "osv/pypi/pygments/PYSEC-2023-117.yaml",
    "debian/debian.json": "distro/vunnel-fixtures/debian/input/debian.json",
    "cve/CVE-2022-26486.json": "nvd/cve5-critical-cvelist/CVE-2022-26486.json",
    "kev/known_exploited_vulnerabilities.json": "kev/known_exploited_vulnerabilities.json",
    "epss/CVE_2022_EPSS.csv": "epss/CVE_2022_EPSS.csv",
}


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, feed_dir):  # type: ignore[no-untyped-def]
    """Run ``patchpilot …`` against a loaded knowledge base; returns the runner."""
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PATCHPILOT_FEEDS_DIR", raising=False)
    root = feed_dir(FEEDS)

    def run(*args: str, code: int = 0):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result

    run("db", "update", "--from", str(root))
    return run


def _inventory(tmp_path: Path) -> Path:
    inv = Inventory.from_packages(
        [Package(Ecosystem("AlmaLinux:8"), "firefox", "91.6.0-1.el8_5.alma", arch="x86_64"),
         Package(Ecosystem("PyPI"), "Pygments", "2.14.0", location="/srv/app/venv"),
         Package(Ecosystem("Debian:12"), "libsope1", "5.8.0-1+deb12u1", source_name="sope"),
         Package(Ecosystem("Debian:12"), "libsope-appserver4.9", "5.8.0-1",
                 source_name="sope")],
        asset=AssetIdentity(hostname="plant1-app-07"), collector=Collector(name="file"))
    path = tmp_path / "inventory.json"
    path.write_bytes(inv.to_json())
    return path


def test_db_status_counts(cli) -> None:  # type: ignore[no-untyped-def]
    out = json.loads(cli("db", "status", "--json").stdout)
    assert out["advisories"] == 9  # 1 ALSA + 1 PYSEC + 7 tracker CVEs
    assert out["kev"] == 1404 and out["cve_records"] == {"cve5": 1}
    assert {(e["feed"], e["ecosystem"]) for e in out["ecosystems"]} >= {
        ("osv", "AlmaLinux:8"), ("osv", "PyPI"), ("debian-tracker", "Debian:12")}
    assert sorted(s["source"] for s in out["sources"]) == [
        "cve5:feeds/cve", "debian-tracker:feeds/debian", "epss:feeds/epss", "kev:feeds/kev",
        "osv:feeds/osv"]


def test_scan_json_carries_every_report_field(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(cli("scan", "inventory", str(_inventory(tmp_path)), "-f", "json").stdout)
    assert doc["asset"]["hostname"] == "plant1-app-07"
    found = {(f["vuln_id"], f["package"]) for f in doc["findings"]}
    # ALSA-2022:0818 fixes 10 CVEs in firefox; pygments 2.14.0 < 2.15.1; libsope-appserver
    # 5.8.0-1 misses Debian's backport (5.8.0-1+deb12u1) while libsope1 has it.
    assert len(found) == 12
    assert ("CVE-2022-40896", "pygments") in found
    assert ("CVE-2025-53603", "sope") in found
    f = next(f for f in doc["findings"] if f["vuln_id"] == "CVE-2022-26486")
    assert f["name"] == "Mozilla Firefox Use-After-Free Vulnerability"  # KEV's name
    assert f["summary"].startswith("An unexpected message in the WebGPU IPC framework")
    assert (f["ecosystem"], f["package"]) == ("AlmaLinux:8", "firefox")
    assert f["cve"] == "CVE-2022-26486" and "ALSA-2022:0818" in f["aliases"]
    assert f["cvss"] == {"version": "3.1", "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H",
                         "score": 9.6, "severity": "Critical", "source": "CISA-ADP"}
    assert f["severity"] == "Critical"
    assert f["exploit"]["known_exploited"] is True
    assert (f["exploit"]["kev_date_added"], f["exploit"]["kev_due_date"]) == (
        "2022-03-07", "2022-03-21")
    assert (f["exploit"]["epss_score"], f["exploit"]["epss_percentile"]) == (0.02349, 0.82231)
    assert f["fix"] == {"fixed_version": "91.7.0-3.el8_5.alma",
                        "command": "dnf upgrade firefox", "state": "fixed"}
    assert f["workaround"] == "none published"
    assert f["evidence"] == {"installed_version": "91.6.0-1.el8_5.alma",
                             "advisory_id": "ALSA-2022:0818",
                             "affected_range": "< 91.7.0-3.el8_5.alma",
                             "feed": "osv", "source": "osv:feeds/osv", "packages": ["firefox"],
                             "owners": []}
    assert f["severity_source"] == "cvss"
    # No CVSS vector is known for CVE-2022-25235 here: AlmaLinux's own rating of the
    # erratum ("Critical: firefox security update") gives the band.
    expat = next(f for f in doc["findings"] if f["vuln_id"] == "CVE-2022-25235")
    assert (expat["cvss"], expat["severity"], expat["severity_source"]) == (
        None, "Critical", "distribution")
    sope = next(f for f in doc["findings"] if f["vuln_id"] == "CVE-2025-53603")
    assert sope["evidence"]["packages"] == ["libsope-appserver4.9"]
    assert sope["fix"]["command"] == "apt-get install --only-upgrade libsope-appserver4.9"
    # The most severe first.
    assert doc["findings"][0]["severity"] == "Critical"
    assert doc["summary"] == {
        sev: sum(1 for x in doc["findings"] if x["severity"] == sev)
        for sev in {x["severity"] for x in doc["findings"]}}


def test_scan_csv_and_sarif(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inventory = str(_inventory(tmp_path))
    text = cli("scan", "inventory", inventory, "-f", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 12
    pyg = next(r for r in rows if r["vuln_id"] == "CVE-2022-40896")
    assert (pyg["package"], pyg["installed_version"], pyg["fixed_version"],
            pyg["upgrade_command"], pyg["advisory_id"]) == (
        "pygments", "2.14.0", "2.15.1",
        # The command names the environment (the inventory's location: a venv's root).
        "/srv/app/venv/bin/python -m pip install --upgrade 'Pygments>=2.15.1'",
        "PYSEC-2023-117")
    sarif = json.loads(cli("scan", "inventory", inventory, "-f", "sarif").stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    assert len(run["results"]) == 12
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "CVE-2022-26486")
    assert rule["properties"]["security-severity"] == "9.6"
    result = next(r for r in run["results"] if r["ruleId"] == "CVE-2022-26486")
    assert result["level"] == "error"


def test_scan_table_and_fail_on(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inventory = str(_inventory(tmp_path))
    out = cli("scan", "inventory", inventory).stdout
    assert "CVE-2022-26486" in out and "91.7.0-3.el8_5.alma" in out
    assert "4 packages (4 distinct)" in out
    cli("scan", "inventory", inventory, "--fail-on", "critical", code=3)


def test_scan_output_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "out.json"
    cli("scan", "inventory", str(_inventory(tmp_path)), "-f", "json", "-o", str(target))
    assert len(json.loads(target.read_text())["findings"]) == 12


def test_scan_file_dpkg_status_needs_a_release(cli, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    status = (shared_data / "inventories/dpkg-status"
              / "syft__debian__image-dpkg__var__lib__dpkg__status")
    out = cli("scan", "file", str(status), "--distro", "debian:12", "-f", "json").stdout
    doc = json.loads(out)
    assert doc["findings"] == [] and doc["packages"] > 0
    bad = cli("scan", "file", str(status), "--distro", "plan9:4", code=2)
    assert "unknown distribution" in bad.stderr


def test_errors_are_one_clear_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"schema": 1, "packages": [{"name": "x"}]}')
    result = cli("scan", "inventory", str(garbage), code=2)
    assert "error:" in result.stderr and "Traceback" not in result.output
    missing = cli("db", "update", "--from", str(tmp_path / "nope"), code=2)
    assert "no such file or directory" in missing.stderr


def test_scan_file_shows_the_inventory_warnings(cli, shared_data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # osv-scalibr's requirements example saved as base.txt: told by content, 1 pinned
    # requirement, and 12 lines that name code but no pinned version (issue 12 §3).
    base = tmp_path / "base.txt"
    base.write_bytes((shared_data / "inventories/pip-requirements"
                      / "osv-scalibr__language__python__requirements__example.txt").read_bytes())
    doc = json.loads(cli("scan", "file", str(base), "-f", "json").stdout)
    assert doc["packages"] == 1 and doc["warning_count"] == 12
    assert doc["warnings"][0] == f"{base}:3: pytest is not pinned; not checked"
    assert doc["warnings"][-1].startswith(f"{base}:28: 'http://wxpython.org/")
    sarif = json.loads(cli("scan", "file", str(base), "-f", "sarif").stdout)
    (invocation,) = sarif["runs"][0]["invocations"]
    assert invocation["properties"] == {"inventoryWarningCount": 12}
    # The warnings, then the coverage notes (the test database holds 1 PyPI advisory).
    assert [n["message"]["text"] for n in invocation["toolExecutionNotifications"]] == \
        [*doc["warnings"], "not covered: PyPI 1 package (1 advisory loaded)"]
    assert {n["level"] for n in invocation["toolExecutionNotifications"]} == {"warning"}
    table = cli("scan", "file", str(base)).stdout
    assert "12 inventory warnings" in table
    assert f"{base}:21: included file 'other-requirements.txt' not read" in table
    target = tmp_path / "out.txt"
    cli("scan", "file", str(base), "-o", str(target))
    assert "12 inventory warnings" in target.read_text()
    assert f"{base}:28:" in target.read_text()
