"""Python distributions on a host: the site-folder script, the dist-entry listing and the
METADATA headers -- run on this machine's own interpreters and folders, and on a venv."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.collect import CollectOptions, python_packages
from patchpilot.inventory.host import commands
from patchpilot.inventory.host.python import (
    DistEntry,
    packages_from_metadata,
    parse_python_sites,
)
from patchpilot.inventory.transports.local import LocalHost

DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def _sites(monkeypatch: pytest.MonkeyPatch, path: str) -> str:
    monkeypatch.setenv("PATH", path)
    out = asyncio.run(LocalHost().run(commands.python_sites(True), 30))
    assert out is not None
    return out


def test_interpreters_deduped_and_filtered(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path(sys.executable).resolve()
    for name in ("python3", "python3.11", "python3-config", "python-argcomplete-tcsh"):
        (tmp_path / name).symlink_to(real)
    # /usr/bin too: the script's own tools (readlink, timeout) live there.
    sites = parse_python_sites(_sites(monkeypatch, f"{tmp_path}:/usr/bin:/bin"))
    assert sites.interpreters[0] == str(real)
    assert sites.interpreters.count(str(real)) == 1
    assert all(Path(i).name.startswith("python") for i in sites.interpreters)
    assert str(real.parents[1] / f"lib/python{sys.version_info[0]}.{sys.version_info[1]}"
               / "site-packages") in sites.site_dirs


def test_pyenv_shims_mean_every_version(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A shims folder is replaced by each installed version's interpreters."""
    real = Path(sys.executable).resolve()
    (tmp_path / "shims").mkdir()
    (tmp_path / "shims" / "python3").symlink_to("/bin/false")  # a shim for another version
    for version in ("3.11.7", "3.12.1"):
        bin_dir = tmp_path / "versions" / version / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "python3").symlink_to(real)
    sites = parse_python_sites(_sites(monkeypatch, f"{tmp_path / 'shims'}:/usr/bin:/bin"))
    assert sites.interpreters[0] == str(real)  # both versions' links: one real interpreter


def test_system_python_of_this_machine() -> None:
    """The distribution's own folder is listed even with no interpreter asked."""
    if not Path(DIST_PACKAGES).is_dir():
        pytest.skip("no Debian system Python here")
    out = asyncio.run(LocalHost().run(commands.python_sites(True), 30))
    sites = parse_python_sites(out or "")
    assert DIST_PACKAGES in sites.site_dirs
    assert DistEntry(DIST_PACKAGES, "Pygments-2.14.0.egg-info", True) in sites.entries
    assert {e.site_dir for e in sites.entries} <= set(sites.site_dirs)


def test_parse_python_sites() -> None:
    text = ("path\t/srv/app/.venv/lib/python3.11/site-packages\n"
            "interp\t/opt/py 3/bin/python3.12\n"
            "dir\t/opt/py 3/lib/python3.12/site-packages\n"
            "interp\t/usr/bin/python3.11\n"
            "dir\t/usr/lib/python3/dist-packages\n"
            "dir\t/usr/local/lib/python3.11/dist-packages\n"
            "site\t/usr/lib/python3/dist-packages\n"
            "missing\t/srv/nowhere\n")
    sites = parse_python_sites(text)
    assert sites.site_dirs == ["/opt/py 3/lib/python3.12/site-packages",
                               "/usr/lib/python3/dist-packages",
                               "/usr/local/lib/python3.11/dist-packages",
                               "/srv/app/.venv/lib/python3.11/site-packages"]
    assert sites.interpreters == ["/opt/py 3/bin/python3.12", "/usr/bin/python3.11"]
    assert sites.missing == ["/srv/nowhere"]


def test_interpreter_folders_match_what_each_interpreter_reports(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The folders derived from each interpreter's prefix and version are those it names
    itself (site.getsitepackages), for every interpreter on this machine's PATH."""
    import json
    import subprocess

    sites = parse_python_sites(asyncio.run(LocalHost().run(commands.python_sites(True), 30))
                               or "")
    assert sites.interpreters
    reported: set[str] = set()
    for interpreter in sites.interpreters:
        out = subprocess.run(
            [interpreter, "-E", "-s", "-c",
             "import json,os,site;g=getattr(site,'getsitepackages',None);"
             "d=(g() if g else [])+[site.getusersitepackages()];"
             "print(json.dumps([os.path.realpath(p) for p in d if os.path.isdir(p)]))"],
            capture_output=True, text=True, check=True, cwd="/").stdout
        reported.update(json.loads(out))
    system = {d for d in sites.site_dirs if d.startswith(("/usr/lib", "/usr/local/lib"))}
    assert reported <= set(sites.site_dirs)
    assert set(sites.site_dirs) - reported <= system


def test_packages_from_metadata() -> None:
    site = DIST_PACKAGES
    entries = parse_python_sites(
        f"site\t{site}\nd\t{site}/PyYAML-6.0.dist-info\nd\t{site}/Pygments-2.14.0.egg-info\n"
        f"f\t{site}/six-1.16.0.egg-info\nd\t{site}/broken.dist-info\n"
        f"d\t{site}/~ip-23.0.dist-info\nd\t{site}/__pycache__\n").entries
    assert [e.metadata_path for e in entries] == [
        f"{site}/PyYAML-6.0.dist-info/METADATA", f"{site}/Pygments-2.14.0.egg-info/PKG-INFO",
        f"{site}/broken.dist-info/METADATA", f"{site}/six-1.16.0.egg-info"]
    texts = ["Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0\n",
             "Name: Pygments\nVersion: 2.14.0\n", "Summary: x\n",
             "Metadata-Version: 1.0\n"]
    warnings: list[str] = []
    found = packages_from_metadata(entries, texts, warnings)
    assert [(p.name, p.version, p.location) for p in found] == [
        ("PyYAML", "6.0", site), ("Pygments", "2.14.0", site), ("six", "1.16.0", site)]
    assert warnings == [f"skipped {site}/broken.dist-info/METADATA: "
                        "core metadata without Name"]


def test_venv_only(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    (site / "requests-2.31.0.dist-info").mkdir(parents=True)
    (site / "requests-2.31.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n\nLong text\n")
    (site / "Old_Thing-1.0-py3.11.egg-info").write_text("Name: Old-Thing\nVersion: 1.0\n")
    (site / "broken-0.1.dist-info").mkdir()  # no METADATA: name and version from the dir
    (site / "~ip-23.0.dist-info").mkdir()  # pip's temporary rename
    options = CollectOptions(python=False, python_paths=(str(tmp_path),))
    found = asyncio.run(python_packages(LocalHost(), options))
    assert sorted((p.name, p.version) for p in found.packages) == [
        ("Old-Thing", "1.0"), ("broken", "0.1"), ("requests", "2.31.0")]
    assert {p.location for p in found.packages} == {str(site.resolve())}
    assert found.warnings == []
    with pytest.raises(InventoryFormatError, match="not a virtualenv or site-packages"):
        asyncio.run(python_packages(LocalHost(), CollectOptions(
            python=False, python_paths=(str(tmp_path / "missing"),))))
