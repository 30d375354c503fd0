"""collect_local on this machine (a Debian 12 host), and its pure helpers."""

from __future__ import annotations

import re
import socket
import sys
from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import Inventory
from patchpilot.inventory.transports.local import (
    collect_local,
    collect_python_packages,
    fqdn_from_hosts,
    installed_kernels,
    parse_ip_addr,
    python_interpreters,
)
from patchpilot.models import Package

VENV = Path(sys.prefix)  # the project's .venv when pytest runs from it


@pytest.fixture(scope="module")
def local_inventory() -> Inventory:
    """This machine's inventory, collected once for the module (with the project venv)."""
    return collect_local([VENV])


def test_collect_local_this_host(local_inventory: Inventory) -> None:
    inventory = local_inventory
    assert inventory.collector.name == "local"
    assert inventory.asset.hostname == socket.gethostname()
    assert inventory.os is not None and inventory.os.id == "debian"
    packages = inventory.to_packages()
    debian = [p for p in packages if p.ecosystem == "Debian:12"]
    status_count = len(re.findall(r"^Package:", Path("/var/lib/dpkg/status").read_text(),
                                  re.MULTILINE))
    assert 100 < len(debian) <= status_count
    libc = next(p for p in debian if p.name == "libc6")
    assert libc.source_name == "glibc" and libc.location == "/var/lib/dpkg/status"
    assert libc.purl is not None and libc.purl.startswith("pkg:deb/debian/libc6@")
    site = str(next(VENV.glob("lib/python*/site-packages")).resolve())
    pydantic = [p for p in packages if p.ecosystem == "PyPI" and p.name == "pydantic"
                and p.location == site]
    import pydantic as installed
    assert [p.version for p in pydantic] == [installed.VERSION]
    assert pydantic[0].purl == f"pkg:pypi/pydantic@{installed.VERSION}"
    assert inventory.complete is True
    assert inventory.os.kernel_running


def test_no_duplicate_python_packages(local_inventory: Inventory) -> None:
    keys = [(p.name, p.version, p.location) for p in local_inventory.packages
            if p.ecosystem == "PyPI"]
    assert len(keys) == len(set(keys))


def test_venv_only(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    (site / "requests-2.31.0.dist-info").mkdir(parents=True)
    (site / "requests-2.31.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n\nLong text\n")
    (site / "Old_Thing-1.0-py3.11.egg-info").write_text("Name: Old-Thing\nVersion: 1.0\n")
    (site / "broken-0.1.dist-info").mkdir()  # no METADATA: name and version from the dir
    (site / "~ip-23.0.dist-info").mkdir()  # pip's temporary rename
    warnings: list[str] = []
    packages = collect_python_packages([tmp_path], include_path_pythons=False,
                                       warnings=warnings)
    assert sorted((p.name, p.version) for p in packages) == [
        ("Old-Thing", "1.0"), ("broken", "0.1"), ("requests", "2.31.0")]
    assert {p.location for p in packages} == {str(site.resolve())}
    assert warnings == []
    with pytest.raises(InventoryFormatError, match="not a virtualenv or site-packages"):
        collect_python_packages([tmp_path / "missing"], include_path_pythons=False)


def test_python_interpreters_dedupes_and_filters(tmp_path: Path) -> None:
    real = Path(sys.executable).resolve()
    for name in ("python3", "python3.11", "python3-config", "python-argcomplete-tcsh"):
        (tmp_path / name).symlink_to(real)
    assert python_interpreters(str(tmp_path)) == [real]


def test_parse_ip_addr() -> None:
    text = (
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
        "1: lo    inet6 ::1/128 scope host \\       valid_lft forever\n"
        "2: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\n"
        "2: eth0    inet6 fd00::2/64 scope global \\       valid_lft forever\n"
        "2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever\n"
    )
    assert parse_ip_addr(text) == ["192.0.2.2", "fd00::2"]


def test_fqdn_from_hosts() -> None:
    hosts = "127.0.0.1 localhost\n192.0.2.5 web1.example.org web1  # main\n"
    assert fqdn_from_hosts(hosts, "web1") == "web1.example.org"
    assert fqdn_from_hosts("127.0.0.1 localhost\n", "web1") is None
    assert fqdn_from_hosts("", "db.example.org") == "db.example.org"


def test_installed_kernels() -> None:
    packages = [Package(ecosystem="Debian:12", name=n, version="1")
                for n in ("linux-image-6.1.0-18-amd64", "linux-image-amd64", "bash")]
    assert installed_kernels(["vmlinuz-6.1.0-17-amd64", "config-6.1.0-17-amd64"], packages) \
        == ["6.1.0-17-amd64", "6.1.0-18-amd64"]
