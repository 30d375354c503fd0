"""``collect(host)``: the one collection routine, over the local host, a captured file tree
and a real sshd on loopback (this machine seen through SSH).

The drift the routine exists to prevent is checked directly: an SSH scan of this machine
and a local collection of it give the same OS, packages, pending updates and reboot flag.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from pathlib import Path

import pytest

from patchpilot.inventory.collect import CollectOptions, collect
from patchpilot.inventory.host.kernel import REBOOT_REQUIRED_FLAG
from patchpilot.inventory.model import Inventory
from patchpilot.inventory.sources.apk import parse_apk_installed
from patchpilot.inventory.sources.dpkg import parse_dpkg_status
from patchpilot.inventory.transports.local import LocalHost, collect_local
from patchpilot.inventory.transports.ssh import (
    HostStatus,
    SshOptions,
    SshTarget,
    open_host,
    scan_hosts_sync,
)
from tests.sshd import SshServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BOOKWORM_SECURITY = ("var/lib/apt/lists/deb.debian.org_debian-security_dists_"
                     "bookworm-security_main_binary-amd64_Packages")


def _package_keys(inventory: Inventory) -> set[tuple[str, str, str, str | None, str | None]]:
    return {(p.ecosystem, p.name, p.version, p.arch, p.location) for p in inventory.packages}


def _ssh_options(sshd: SshServer, known_hosts: Path) -> SshOptions:
    return SshOptions(identities=(sshd.client_key,), known_hosts=known_hosts, use_agent=False)


def test_ssh_and_local_collect_the_same(sshd: SshServer, known_hosts: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine through sshd and read locally: the same inventory, pending security
    updates and reboot flag included (the SSH copy of the routine never had those)."""
    target = SshTarget("127.0.0.1", sshd.port, "root")
    options = _ssh_options(sshd, known_hosts)

    async def remote_path() -> str | None:
        async with open_host(target, options) as host:
            return await host.run(("sh", "-c", 'printf %s "$PATH"'), 5)

    path = asyncio.run(remote_path())
    assert path
    [result] = scan_hosts_sync([target], options)
    assert result.status is HostStatus.scanned, result.error
    remote = result.inventory
    assert remote is not None
    # The interpreters asked are those on PATH: give the local collection the SSH one.
    monkeypatch.setenv("PATH", path)
    local = collect_local()
    assert remote.collector.name == "ssh" and local.collector.name == "local"
    assert remote.os == local.os
    assert remote.os is not None and remote.os.kernel_running == os.uname().release
    assert _package_keys(remote) == _package_keys(local)
    assert len([p for p in remote.packages if p.ecosystem == "Debian:12"]) > 100
    assert any(p.ecosystem == "PyPI" for p in remote.packages)
    assert remote.pending_updates == local.pending_updates
    assert remote.os.reboot_required == local.os.reboot_required  # type: ignore[union-attr]
    # 127.0.0.1 is loopback, so the peer address adds nothing: the identities match too.
    assert remote.asset == local.asset
    assert remote.asset.hostname == socket.gethostname()
    assert remote.warnings == local.warnings
    assert remote.complete is local.complete is True


def test_collect_this_host_matches_its_files() -> None:
    """The local host: what collect reports is what this machine's files say."""
    inventory = asyncio.run(collect(LocalHost(), CollectOptions(python=False)))
    assert inventory.os is not None and inventory.os.id == "debian"
    assert inventory.os.kernel_running == os.uname().release
    assert inventory.asset.hostname == socket.gethostname()
    assert inventory.asset.machine_id == Path("/etc/machine-id").read_text().strip()
    status = parse_dpkg_status(Path("/var/lib/dpkg/status").read_text(), "Debian:12",
                               "/var/lib/dpkg/status")
    assert {(p.name, p.version, p.arch) for p in inventory.packages} == {
        (p.name, p.version, p.arch) for p in status}
    assert all(p.ecosystem == "Debian:12" for p in inventory.packages)
    if Path(REBOOT_REQUIRED_FLAG).exists():
        assert inventory.os.reboot_required is True


def test_captured_debian_tree(tmp_path: Path, shared_data: Path, tree_host: type) -> None:
    """A captured Debian 12 file tree: packages from its dpkg status, pending security
    updates from its bookworm-security list, the reboot flag, kernels from /boot."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
        "VERSION_CODENAME=bookworm\n")
    (tmp_path / "etc/machine-id").write_text("4b2c8f0e6e3d4e0a9c1d2e3f4a5b6c7d\n")
    (tmp_path / "etc/hosts").write_text("127.0.0.1 localhost\n192.0.2.5 web1.example.org web1\n")
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/hostname").write_text("web1\n")
    (tmp_path / "proc/sys/kernel/osrelease").write_text("6.1.0-17-amd64\n")
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    shutil.copy(shared_data / "inventories/debian12-dpkg-status",
                tmp_path / "var/lib/dpkg/status")
    (tmp_path / "var/lib/apt/lists").mkdir(parents=True)
    shutil.copy(FIXTURES / "apt/bookworm-security_Packages", tmp_path / BOOKWORM_SECURITY)
    (tmp_path / "var/run").mkdir(parents=True)
    (tmp_path / "var/run/reboot-required").write_text("")  # touched, empty: still a flag
    (tmp_path / "boot").mkdir()
    for name in ("vmlinuz-6.1.0-17-amd64", "vmlinuz-6.1.0-18-amd64", "config-6.1.0-18-amd64"):
        (tmp_path / "boot" / name).write_text("")
    inventory = asyncio.run(collect(tree_host(tmp_path), CollectOptions(python=False)))
    expected = parse_dpkg_status((tmp_path / "var/lib/dpkg/status").read_text(), "Debian:12")
    assert {(p.name, p.version) for p in inventory.packages} == {
        (p.name, p.version) for p in expected}
    assert [(u.package, u.candidate_version) for u in inventory.pending_updates] == [
        ("jq", "1.6-2.1+deb12u3"), ("libjq1", "1.6-2.1+deb12u3"),
        ("libssl3", "3.0.22-1~deb12u2"), ("openssl", "3.0.22-1~deb12u2"),
        ("tzdata", "2026f-0+deb12u1")]
    assert inventory.os is not None
    assert (inventory.os.version_id, inventory.os.codename) == ("12", "bookworm")
    assert inventory.os.kernel_running == "6.1.0-17-amd64"
    assert "6.1.0-18-amd64" in inventory.os.kernels_installed
    assert inventory.os.reboot_required is True
    assert inventory.asset.hostname == "web1"
    assert inventory.asset.fqdn == "web1.example.org"
    assert inventory.asset.machine_id == "4b2c8f0e6e3d4e0a9c1d2e3f4a5b6c7d"
    assert inventory.asset.ip_addresses == []  # a file tree has no `ip`
    assert inventory.warnings == []
    assert inventory.complete is True


def test_captured_alpine_tree(tmp_path: Path, shared_data: Path, tree_host: type) -> None:
    """Alpine: the apk database; no apt or dnf, so no pending-update step and no warning."""
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/os-release").write_text(  # only the /usr/lib copy: the fallback
        'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\n')
    (tmp_path / "lib/apk/db").mkdir(parents=True)
    shutil.copy(shared_data / "inventories/apk-installed/"
                "syft__alpine__multiple-2__lib__apk__db__installed",
                tmp_path / "lib/apk/db/installed")
    inventory = asyncio.run(collect(tree_host(tmp_path), CollectOptions(python=False)))
    expected = parse_apk_installed((tmp_path / "lib/apk/db/installed").read_text(),
                                   "Alpine:v3.19")
    assert len(inventory.packages) == len(expected) > 10
    assert {p.name for p in inventory.packages} == {p.name for p in expected}
    assert inventory.os is not None and inventory.os.id == "alpine"
    assert inventory.os.reboot_required is None  # no kernel installed: a container
    assert inventory.pending_updates == []
    assert inventory.warnings == []


def test_tree_without_os_release_is_incomplete(tmp_path: Path, tree_host: type) -> None:
    inventory = asyncio.run(collect(tree_host(tmp_path), CollectOptions(python=False)))
    assert inventory.complete is False
    assert inventory.os is None
    assert inventory.packages == []
    assert inventory.warnings == [
        "no /etc/os-release: operating system packages not collected"]


def test_unknown_database_is_a_warning(tmp_path: Path, tree_host: type) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text("ID=debian\nVERSION_ID=12\n")
    inventory = asyncio.run(collect(tree_host(tmp_path), CollectOptions(python=False)))
    assert inventory.packages == []
    assert inventory.warnings == ["no package database of Debian:12 found"]
    assert inventory.complete is True
