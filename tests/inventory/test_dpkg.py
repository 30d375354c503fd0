"""parse_dpkg_status on real dpkg databases (Debian 12 host, syft and osv-scalibr fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources.dpkg import parse_dpkg_status
from patchpilot.models import Package


def _parse(path: Path, **kwargs: object) -> list[Package]:
    return parse_dpkg_status(path.read_text(encoding="utf-8"), "Debian:12", str(path),
                             **kwargs)  # type: ignore[arg-type]


def _by_name(packages: list[Package]) -> dict[str, Package]:
    return {p.name: p for p in packages}


def test_debian12_host_status(inventories: Path) -> None:
    path = inventories / "debian12-dpkg-status"
    packages = _parse(path)
    # grep -c '^Package:' = 710 and every Status is "install ok installed".
    assert len(packages) == 710
    by_name = _by_name(packages)
    assert by_name["libssl3"] == Package(
        ecosystem="Debian:12", name="libssl3", version="3.0.19-1~deb12u2", arch="amd64",
        source_name="openssl", source_version="3.0.19-1~deb12u2",
        purl="pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64&distro=debian-12"
             "&upstream=openssl",
        location=str(path))
    openssl = by_name["openssl"]
    assert (openssl.source_name, openssl.version, openssl.source_version) == (
        "openssl", "3.0.19-1~deb12u2", "3.0.19-1~deb12u2")
    # binNMU: the source version is the parenthesised one, not the binary's +b8.
    bash = by_name["bash"]
    assert (bash.version, bash.source_name, bash.source_version) == (
        "5.2.15-2+b8", "bash", "5.2.15-2")
    assert by_name["base-files"].version == "12.4+deb12u11"
    assert {p.arch for p in packages} == {"amd64", "all"}


def test_statusfield_keeps_installed_state_only(inventories: Path) -> None:
    packages = _parse(inventories / "dpkg-status" / "osv-scalibr__os__dpkg__dpkg__statusfield")
    # The state word decides (files on disk), not the want word; no Status -> not a record.
    assert [p.name for p in packages] == [
        "wantinstall_installed", "wantdeinstall_installed", "wantpurge_installed"]


def test_transitional_dummy_with_epoch(inventories: Path) -> None:
    path = inventories / "dpkg-status" / "osv-scalibr__os__dpkg__dpkg__transitional_dummy"
    (git_core,) = _parse(path)
    assert (git_core.name, git_core.version, git_core.arch, git_core.source_name,
            git_core.source_version) == ("git-core", "1:2.14.2-1", "all", "git", "1:2.14.2-1")
    assert git_core.purl == "pkg:deb/debian/git-core@1:2.14.2-1?arch=all&distro=debian-12" \
                            "&upstream=git"


def test_image_status_skips_empty_package_stanza(inventories: Path) -> None:
    path = inventories / "dpkg-status" / "syft__debian__image-dpkg__var__lib__dpkg__status"
    (pam,) = _parse(path)
    assert (pam.name, pam.version, pam.source_name) == ("libpam-runtime", "1.1.8-3.6", "pam")


def test_deinstalled_package_excluded(inventories: Path) -> None:
    path = inventories / "dpkg-status" / "syft__debian__var__lib__dpkg__status.d__deinstall"
    packages = _parse(path)
    # linux-image-6.8.0-1029-aws is "deinstall ok config-files": only its conffiles remain.
    assert [(p.name, p.version, p.source_name) for p in packages] == [
        ("linux-image-6.14.0-1012-aws", "6.14.0-1012.12~24.04.1", "linux-signed-aws-6.14")]


def test_status_d_coreutils_relationships(inventories: Path) -> None:
    path = inventories / "dpkg-status" / \
        "syft__debian__var__lib__dpkg__status.d__coreutils-relationships"
    packages = _parse(path, assume_installed=True)
    assert [p.name for p in packages] == [
        "coreutils", "libacl1", "libc6", "libgcc-s1", "gcc-12-base", "libattr1", "libgmp10",
        "libselinux1", "libpcre2-8-0"]
    selinux = _by_name(packages)["libselinux1"]
    assert (selinux.version, selinux.source_name, selinux.source_version, selinux.arch) == (
        "3.4-1+b6", "libselinux", "3.4-1", "arm64")
    # No Source field: the binary package is its own source.
    coreutils = _by_name(packages)["coreutils"]
    assert (coreutils.source_name, coreutils.source_version) == ("coreutils", "9.1-1")


def test_status_d_single(inventories: Path) -> None:
    path = inventories / "dpkg-status" / "syft__debian__var__lib__dpkg__status.d__single"
    (apt,) = _parse(path, assume_installed=True)
    assert (apt.name, apt.version, apt.arch, apt.source_name, apt.source_version) == (
        "apt", "1.8.2", "amd64", "apt-dev", "1.8.2")


def test_distroless_stanza_without_status() -> None:
    text = "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n"
    assert parse_dpkg_status(text, "Debian:12") == []
    (base,) = parse_dpkg_status(text, "Debian:12", assume_installed=True)
    assert base.version == "12.4+deb12u5"


@pytest.mark.parametrize(("text", "detail", "line"), [
    ("", "empty dpkg status file", None),
    ("\n  \n", "empty dpkg status file", None),
    ("\x7fELF\x02\x01\x01\x00\x00\x00garbage", "binary data, not a dpkg status file", None),
    ("just some words\n", "not a 'Field: value' line: 'just some words'", 1),
    ("Origin: debian\nBugs: x\n", "no dpkg package stanzas", None),
    # Truncated: the last stanza lost its Version line.
    ("Package: a\nStatus: install ok installed\nVersion: 1\n\n"
     "Package: b\nStatus: install ok installed\n",
     "installed package stanza (b) without Version", 5),
    ("Package: a\nStatus: install ok\nVersion: 1\n",
     "Status 'install ok' is not '<want> <flag> <state>'", 1),
])
def test_invalid_input_names_file_and_line(text: str, detail: str, line: int | None) -> None:
    with pytest.raises(InventoryFormatError) as raised:
        parse_dpkg_status(text, "Debian:12", "/var/lib/dpkg/status")
    assert raised.value.path == "/var/lib/dpkg/status"
    assert raised.value.detail == detail
    assert raised.value.line == line
