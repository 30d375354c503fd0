"""``patchpilot scan file`` on real Windows files (issue 16, "Inventory" bullet 2): a
``systeminfo`` output is scanned like any other file and its product, build and KB count
are printed; several files of one host are read together; a QFE list alone says the
product is unknown; files of two hosts are refused naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from patchpilot.cli import app

runner = CliRunner()
FOLDER = "windows/systeminfo"


@pytest.fixture
def scan(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data: Path):  # type: ignore[no-untyped-def]
    """Run ``patchpilot scan file`` on named real files against an empty database."""
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", engine.url.render_as_string(False))
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))

    def run(*names: str, args: tuple[str, ...] = (), code: int = 0):  # type: ignore[no-untyped-def]
        paths = [str(shared_data / FOLDER / n) for n in names]
        result = runner.invoke(app, ["scan", "file", *paths, *args], terminal_width=200,
                               env={"COLUMNS": "200"})
        assert result.exit_code == code, result.output
        return result

    return run


def test_a_server_2022_systeminfo_is_scanned_with_its_build_and_kbs(scan) -> None:  # type: ignore[no-untyped-def]
    out = scan("srv_2022_systeminfo.txt").stdout
    assert out.splitlines()[:3] == [
        "Windows: WIN-RIBN7SM07BK: Microsoft Windows Server 2022 Standard "
        "(Windows Server 2022 21H2)",
        "  build 10.0.20348 (UBR unknown — from systeminfo), x64",
        "  3 KBs installed"]
    assert "0 findings on WIN-RIBN7SM07BK" in out


def test_a_japanese_or_german_systeminfo_reads_the_same(scan) -> None:  # type: ignore[no-untyped-def]
    out = scan("7_sp1_x64_ultimaten_de_systeminfo.txt").stdout
    assert out.splitlines()[:3] == [
        "Windows: OLI7-PC: Microsoft Windows 7 Ultimate N (Windows 7)",
        "  build 6.1.7601 (UBR unknown — from systeminfo), x64",
        "  242 KBs installed (the list is cut short: at least these)"]


def test_systeminfo_and_qfe_of_one_host_are_merged(scan, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    # systeminfo printed 245 of its 271 hotfixes; the host's QFE list has all 271.
    done = scan("7_sp1_x64_enterprise_en-us_B_systeminfo.txt",
                "7_sp1_x64_enterprise_en-us_B_qfe.txt", args=("-f", "json"))
    assert done.stderr.splitlines()[:3] == [
        "Windows: WIN7SP1X64: Microsoft Windows 7 Enterprise (Windows 7)",
        "  build 6.1.7601 (UBR unknown — from systeminfo), x64",
        "  271 KBs installed"]
    doc = json.loads(done.stdout)
    assert doc["asset"]["hostname"] == "WIN7SP1X64"
    assert doc["os"]["version_id"] == "6.1.7601"
    # systeminfo's "listed only 245 of its 271 hotfixes" is answered by the QFE list.
    assert [w.replace(f"{shared_data / FOLDER}/", "") for w in doc["warnings"]] == [
        "7_sp1_x64_enterprise_en-us_B_systeminfo.txt: its hotfix list, cut short, is "
        "completed by 7_sp1_x64_enterprise_en-us_B_qfe.txt"]


def test_three_files_of_a_windows_10_host(scan) -> None:  # type: ignore[no-untyped-def]
    # systeminfo 9 KBs, qfe 9 (no host name in it), update history 1 more: 10.
    done = scan("10_1809_x64_education_en-us_20190306_systeminfo.txt",
                "10_1809_x64_education_en-us_20190306_qfe.txt",
                "10_1809_x64_education_en-us_20190306_updates.txt")
    assert done.stdout.splitlines()[:3] == [
        "Windows: LAPTOP: Microsoft Windows 10 Education (Windows 10 1809)",
        "  build 10.0.17763 (UBR unknown — from systeminfo), x64",
        "  10 KBs installed"]


def test_a_qfe_list_alone_says_the_product_is_unknown(scan) -> None:  # type: ignore[no-untyped-def]
    done = scan("xp_sp2_x64_qfe.txt", args=("-f", "json"))
    assert done.stderr.splitlines()[:2] == [
        "Windows: USER-8CEF73C787: product unknown (no systeminfo output among the files)",
        "  149 KBs installed"]
    doc = json.loads(done.stdout)
    assert doc["os"] is None
    assert [w.rpartition("/")[2] for w in doc["warnings"]] == [
        "xp_sp2_x64_qfe.txt: a qfe list names no Windows product; upload the host's "
        "systeminfo output too, so its updates can be judged"]


def test_files_of_two_hosts_or_a_non_windows_file_are_refused(scan, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    folder = shared_data / FOLDER
    done = scan("srv_2022_systeminfo.txt", "xp_sp2_x64_qfe.txt", code=2)
    assert " ".join(done.stderr.split()) == (
        f"error: {folder}/xp_sp2_x64_qfe.txt: host 'USER-8CEF73C787', but "
        f"{folder}/srv_2022_systeminfo.txt is host 'WIN-RIBN7SM07BK': files read together "
        "must be of one host")
    done = scan("srv_2022_systeminfo.txt", "xp_sp2_x86_qfe.txt", code=2)
    assert " ".join(done.stderr.split()) == (
        f"error: {folder}/xp_sp2_x86_qfe.txt: no KB number in any hotfix entry (only: "
        "Q147222)")
    dpkg = "../../inventories/dpkg-status/syft__debian__image-dpkg__var__lib__dpkg__status"
    done = scan("srv_2022_systeminfo.txt", dpkg, code=2)
    assert "not Windows systeminfo, wmic qfe, Get-HotFix JSON or update-history output; " \
           "only files saved on one Windows host are read together" in done.stderr
    done = scan("srv_2022_systeminfo.txt", args=("--hostname", "other-host"), code=2)
    assert "the file is of host 'WIN-RIBN7SM07BK', not 'other-host'" in done.stderr
