"""read_inventory_file: every kind of file told apart by content, releases guessed or asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import Collector, Inventory
from patchpilot.inventory.transports.file import (
    UNKNOWN_CONTENT,
    guess_debian_release,
    kind_of,
    parse_distro,
    read_inventory_file,
)
from patchpilot.models import Package


def test_debian12_status_guesses_release(inventories: Path) -> None:
    inventory = read_inventory_file(inventories / "debian12-dpkg-status", hostname="web1")
    assert inventory.collector == Collector(name="file")
    assert inventory.asset.hostname == "web1"
    packages = inventory.to_packages()
    assert len(packages) == 710
    assert {p.ecosystem for p in packages} == {"Debian:12"}


def test_status_d_without_base_files_guesses_from_markers(inventories: Path) -> None:
    path = inventories / "dpkg-status" / \
        "syft__debian__var__lib__dpkg__status.d__coreutils-relationships"
    packages = read_inventory_file(path).to_packages()
    assert len(packages) == 9  # libc6 2.36-9+deb12u1 is the only marker
    assert packages[0].ecosystem == "Debian:12"


def test_ubuntu_status_release_from_backport_marker(inventories: Path) -> None:
    path = inventories / "dpkg-status" / "syft__debian__var__lib__dpkg__status.d__deinstall"
    inventory = read_inventory_file(path)
    assert inventory.warnings == [
        f"{path}: distribution inferred: ubuntu:24.04 from linux-image-6.14.0-1012-aws "
        "6.14.0-1012.12~24.04.1 (pass --distro to say otherwise)"]
    (kernel,) = inventory.to_packages()
    assert (kernel.ecosystem, kernel.name) == ("Ubuntu:24.04", "linux-image-6.14.0-1012-aws")
    assert read_inventory_file(path, "ubuntu:24.04").warnings == []


def test_status_without_release_hint(inventories: Path) -> None:
    path = inventories / "dpkg-status" / "syft__debian__var__lib__dpkg__status.d__single"
    with pytest.raises(InventoryFormatError) as raised:
        read_inventory_file(path)
    assert raised.value.path == str(path)
    # apt's own version suggests the release (only a hint: apt may be a backport).
    assert raised.value.detail == (
        "dpkg status: cannot tell the distribution release from the packages' versions; "
        "apt 1.8.2 is the one of debian:10: pass --distro debian:10 if the file comes "
        "from it (the host's /etc/os-release says)")
    path = inventories / "dpkg-status" / "osv-scalibr__os__dpkg__dpkg__transitional_dummy"
    with pytest.raises(InventoryFormatError, match=r"pass --distro with the release in the "
                                                   r"host's /etc/os-release \(ID:VERSION_ID"):
        read_inventory_file(path)


def test_apk_file_with_distro(inventories: Path) -> None:
    path = inventories / "apk-installed" / "syft__alpine__multiple-2__lib__apk__db__installed"
    with pytest.raises(InventoryFormatError) as raised:
        read_inventory_file(path)
    assert raised.value.detail == (
        "apk database: cannot tell the Alpine release: the database has no alpine-release "
        "or alpine-base package (alpine-baselayout 3.2.0-r22, apk-tools 2.12.9-r3, musl "
        "1.2.3-r0 do not name it); pass --distro alpine:X.Y with the release in the "
        "image's /etc/alpine-release")
    packages = read_inventory_file(path, "alpine:3.16.2").to_packages()
    assert len(packages) == 14 and packages[0].ecosystem == "Alpine:3.16"


def test_rpm_dump(tmp_path: Path) -> None:
    path = tmp_path / "rpm-qa.txt"
    path.write_text("bash\t0\t5.1.8\t6.el9_1\tx86_64\tbash-5.1.8-6.el9_1.src.rpm\n"
                    "gpg-pubkey\t0\t3abb34f8\t5ffd890e\t(none)\t(none)\n")
    with pytest.raises(InventoryFormatError) as raised:
        read_inventory_file(path)
    assert raised.value.detail == (
        "rpm package list: cannot tell the distribution release; its releases end in .el9: "
        "pass --distro almalinux:9, rocky:9 or rhel:9 (the host's own)")
    (bash,) = read_inventory_file(path, "rocky:9.3").to_packages()
    assert (bash.ecosystem, bash.version) == ("Rocky Linux:9", "5.1.8-6.el9_1")
    # A line that is not six fields is a warning naming it; the rest is read.
    path.write_text(path.read_text() + "openssl\t1\t3.0.7\n"
                    "zlib\t0\t1.2.11\t40.fc39\tx86_64\tzlib-1.2.11-40.fc39.src.rpm\n")
    inventory = read_inventory_file(path, "fedora:39")
    assert [p.name for p in inventory.packages] == ["bash", "zlib"]
    assert inventory.warnings == [
        f"{path}:3: expected 6 tab-separated fields (name, epoch, version, release, arch, "
        "sourcerpm), got 3; skipped"]


def test_inventory_json_file(tmp_path: Path) -> None:
    inventory = Inventory.from_packages(
        [Package(ecosystem="PyPI", name="pydantic", version="2.14.4")],
        collector=Collector(name="local"))
    path = tmp_path / "inventory.json"
    path.write_bytes(inventory.to_json())
    assert read_inventory_file(path) == inventory
    path.write_text('{"schema": 1, "collector": {"name": "x"}, "packages": [{}]}')
    with pytest.raises(InventoryFormatError) as raised:
        read_inventory_file(path)
    assert (raised.value.path, raised.value.detail) == (
        str(path), "packages[0].ecosystem: Field required (and 2 more errors)")


@pytest.mark.parametrize(("content", "detail"), [
    (b"", "empty file"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00", f"binary data, {UNKNOWN_CONTENT}"),
    (b"name,version\nbash,5.2\n", UNKNOWN_CONTENT),
])
def test_unknown_content(tmp_path: Path, content: bytes, detail: str) -> None:
    path = tmp_path / "input"
    path.write_bytes(content)
    with pytest.raises(InventoryFormatError) as raised:
        read_inventory_file(path)
    assert (raised.value.path, raised.value.detail) == (str(path), detail)


def test_truncated_status_names_line(tmp_path: Path) -> None:
    path = tmp_path / "status"
    path.write_text("Package: a\nStatus: install ok installed\nVersion: 1+deb12u1\n\n"
                    "Package: b\nStatus: install ok installed\n")
    inventory = read_inventory_file(path)
    assert [p.name for p in inventory.packages] == ["a"]
    assert inventory.warnings == [
        f"{path}: distribution inferred: debian:12 from a 1+deb12u1 (pass --distro to say "
        "otherwise)",
        f"{path}:5: installed package stanza (b) without Version; skipped"]


def test_apk_release_from_alpine_release_package(inventories: Path, tmp_path: Path) -> None:
    # The real database plus the record alpine-release writes in Alpine 3.17 and later.
    real = inventories / "apk-installed" / "syft__alpine__multiple-2__lib__apk__db__installed"
    path = tmp_path / "installed"
    path.write_bytes(real.read_bytes().rstrip(b"\n") + b"\n\nP:alpine-release\n"
                     b"V:3.18.4-r0\nA:x86_64\no:alpine-base\n\nP:broken\nA:x86_64\n"
                     b"this line is garbage\n")
    inventory = read_inventory_file(path)
    assert {p.ecosystem for p in inventory.packages} == {"Alpine:3.18"}
    assert len(inventory.packages) == 15
    lines = len(real.read_bytes().rstrip(b"\n").splitlines())
    assert inventory.warnings == [
        f"{path}: distribution inferred: alpine:3.18 from alpine-release 3.18.4-r0 (pass "
        "--distro to say otherwise)",
        f"{path}:{lines + 9}: not an 'X:value' line: 'this line is garbage'; skipped",
        f"{path}:{lines + 7}: package record (broken) without V: (version); skipped"]


def test_kind_of() -> None:
    assert kind_of("x.json", b'  {"schema": 1, "collector": {"name": "local"}}') == "json"
    assert kind_of("status", b"Package: a\nVersion: 1\n") == "dpkg"
    assert kind_of("installed", b"C:Q1x=\nP:zlib\nV:1.3-r0\n") == "apk"
    assert kind_of("rpm.txt", b"\nbash\t0\t5.1\t1.el9\tx86_64\tbash.src.rpm\n") == "rpm"
    assert kind_of("x.txt", b"hello\n") is None


def _deb(name: str, version: str) -> Package:
    return Package(ecosystem="Debian", name=name, version=version)


def test_guess_debian_release() -> None:
    assert guess_debian_release([_deb("base-files", "12.4+deb12u5")]) == "Debian:12"
    assert guess_debian_release([_deb("base-files", "11.1+deb11u9"),
                                 _deb("libc6", "2.36-9+deb12u1")]) == "Debian:11"
    assert guess_debian_release([_deb("libc6", "2.31-13+deb11u8"),
                                 _deb("openssl", "3.0.11-1~deb12u2"),
                                 _deb("libssl3", "3.0.11-1~deb12u2")]) == "Debian:12"
    assert guess_debian_release([_deb("base-files", "12ubuntu4.6")]) is None
    assert guess_debian_release([_deb("bash", "5.1-6ubuntu1.1")]) is None
    assert guess_debian_release([_deb("bash", "5.2.15-2+b8")]) is None


def test_parse_distro() -> None:
    assert parse_distro("debian:12") == "Debian:12"
    assert parse_distro("Debian:12") == "Debian:12"
    assert parse_distro("debian:bookworm") == "Debian:12"
    assert parse_distro("ubuntu:22.04") == "Ubuntu:22.04"
    assert parse_distro("almalinux:9.3") == "AlmaLinux:9"
    assert parse_distro("Rocky Linux:9") == "Rocky Linux:9"
    assert parse_distro("alpine:v3.18") == "Alpine:3.18"
    with pytest.raises(InventoryFormatError, match="unknown distribution 'windows:11'"):
        parse_distro("windows:11")
    with pytest.raises(InventoryFormatError, match="names no release"):
        parse_distro("debian")
