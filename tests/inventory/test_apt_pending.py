"""apt's pending security updates: the -security Packages index and Debian changelogs.

Inputs: tests/fixtures/apt/ (an excerpt of this machine's bookworm-security index, taken
with ``apt-helper cat-file``; the head of curl's changelog.Debian), the real dpkg status
in ../shared/data, and -- when present -- this machine's own apt lists and changelogs,
read at test time.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.host import commands
from patchpilot.inventory.host.apt_lists import index_text
from patchpilot.inventory.model import PendingUpdate
from patchpilot.inventory.sources.apt_pending import (
    IndexEntry,
    merge_offers,
    parse_debian_changelog,
    parse_packages_index,
    pending_security_updates,
    security_list_files,
)
from patchpilot.inventory.sources.dpkg import parse_dpkg_status
from patchpilot.inventory.transports.local import LocalHost

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "apt"
APT_LISTS = Path("/var/lib/apt/lists")
CURL_CHANGELOG = Path("/usr/share/doc/curl/changelog.Debian.gz")


@pytest.fixture(scope="module")
def index() -> dict[tuple[str, str | None], IndexEntry]:
    return parse_packages_index((FIXTURES / "bookworm-security_Packages").read_text(),
                                "bookworm-security_Packages")


def test_security_list_files() -> None:
    names = [
        "deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages.lz4",
        "deb.debian.org_debian-security_dists_bookworm-security_main_binary-i386_Packages",
        "deb.debian.org_debian-security_dists_bookworm-security_InRelease",
        "deb.debian.org_debian-security_dists_bookworm-security_main_i18n_Translation-en.lz4",
        "deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages.lz4",
        "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4",
        "security.debian.org_dists_buster_updates_main_binary-amd64_Packages.gz",
        "archive.ubuntu.com_ubuntu_dists_jammy-security_main_binary-amd64_Packages",
        "lock", "partial", "auxfiles",
    ]
    assert security_list_files(names, "bookworm") == [names[0], names[1]]
    assert security_list_files(names, "buster") == [names[6]]
    assert security_list_files(names, "jammy") == [names[7]]
    assert security_list_files(names, "trixie") == []


def test_parse_packages_index_fixture(index: dict[tuple[str, str | None], IndexEntry]) -> None:
    assert sorted(index) == [
        ("curl", "amd64"), ("jq", "amd64"), ("libcurl4", "amd64"), ("libjq1", "amd64"),
        ("libssl3", "amd64"), ("openssl", "amd64"), ("tzdata", "all")]
    assert index[("libssl3", "amd64")] == IndexEntry(
        "libssl3", "3.0.22-1~deb12u2", "amd64", "openssl")
    assert index[("tzdata", "all")] == IndexEntry("tzdata", "2026f-0+deb12u1", "all", None)


def test_pending_updates_of_the_real_dpkg_status(
        shared_data: Path, index: dict[tuple[str, str | None], IndexEntry]) -> None:
    installed = parse_dpkg_status(
        (shared_data / "inventories/debian12-dpkg-status").read_text(), "Debian:12")
    pending = pending_security_updates(installed, index, "bookworm-security")
    # curl is at 7.88.1-10+deb12u14 (a point release), newer than the security suite's
    # deb12u5: not pending.  The others are older than the suite's version.
    assert [(u.package, u.source_name, u.arch, u.installed_version, u.candidate_version)
            for u in pending] == [
        ("jq", "jq", "amd64", "1.6-2.1+deb12u1", "1.6-2.1+deb12u3"),
        ("libjq1", "jq", "amd64", "1.6-2.1+deb12u1", "1.6-2.1+deb12u3"),
        ("libssl3", "openssl", "amd64", "3.0.19-1~deb12u2", "3.0.22-1~deb12u2"),
        ("openssl", "openssl", "amd64", "3.0.19-1~deb12u2", "3.0.22-1~deb12u2"),
        ("tzdata", "tzdata", "all", "2025b-0+deb12u2", "2026f-0+deb12u1"),
    ]
    assert pending[0] == PendingUpdate(
        package="jq", source_name="jq", arch="amd64", installed_version="1.6-2.1+deb12u1",
        candidate_version="1.6-2.1+deb12u3", repository="bookworm-security")


def test_an_i386_package_is_not_judged_by_the_amd64_index(
        index: dict[tuple[str, str | None], IndexEntry]) -> None:
    installed = parse_dpkg_status(
        "Package: libssl3\nStatus: install ok installed\nArchitecture: i386\n"
        "Source: openssl\nVersion: 3.0.11-1~deb12u2\n", "Debian:12")
    assert pending_security_updates(installed, index, "bookworm-security") == []


def test_merge_offers_keeps_the_newest() -> None:
    offered = {("jq", "amd64"): IndexEntry("jq", "1.6-2.1+deb12u3", "amd64", None)}
    merge_offers(offered, {("jq", "amd64"): IndexEntry("jq", "1.6-2.1+deb12u2", "amd64", None),
                           ("zip", "amd64"): IndexEntry("zip", "3.0-13+deb12u1", "amd64", None)})
    assert {k: e.version for k, e in offered.items()} == {
        ("jq", "amd64"): "1.6-2.1+deb12u3", ("zip", "amd64"): "3.0-13+deb12u1"}


@pytest.mark.parametrize(("name", "detail", "line"), [
    ("invalid_Packages", "not a 'Field: value' line: 'this line is not a field'", 3),
    ("no_version_Packages", "package stanza without Version", 1),
])
def test_bad_packages_index(name: str, detail: str, line: int) -> None:
    path = FIXTURES / name
    with pytest.raises(InventoryFormatError) as caught:
        parse_packages_index(path.read_text(), str(path))
    assert (caught.value.path, caught.value.detail, caught.value.line) == (
        str(path), detail, line)


def test_still_compressed_index_is_an_error() -> None:
    with pytest.raises(InventoryFormatError, match="binary data"):
        parse_packages_index("\x04\x22\x4d\x18\x00garbage", "x_Packages.lz4")


def test_empty_index_is_no_updates() -> None:
    assert parse_packages_index("", "empty_Packages") == {}


def _this_machines_security_lists() -> list[Path]:
    try:
        names = os.listdir(APT_LISTS)
    except OSError:
        return []
    return [APT_LISTS / n for n in security_list_files(names, "bookworm")]


@pytest.mark.skipif(not _this_machines_security_lists() or shutil.which("apt") is None,
                    reason="no bookworm-security apt list on this machine")
def test_real_security_list_agrees_with_apt() -> None:
    """This machine's own lists and dpkg status give exactly what apt itself lists."""
    offered: dict[tuple[str, str | None], IndexEntry] = {}
    for path in _this_machines_security_lists():
        # As collection reads it: decompressed and filtered by commands.apt_index.
        out = asyncio.run(LocalHost().run(commands.apt_index(str(path)), 60))
        text = index_text(out or "")
        assert text is not None
        merge_offers(offered, parse_packages_index(text, str(path)))
    assert len(offered) > 1000
    installed = parse_dpkg_status(Path("/var/lib/dpkg/status").read_text(), "Debian:12")
    ours = {(u.package, u.candidate_version)
            for u in pending_security_updates(installed, offered, "bookworm-security")}
    # apt's own view, read from the same cache (apt list never touches the network).
    listing = subprocess.run(["apt", "list", "--upgradable"], capture_output=True,
                             text=True, check=True).stdout
    upgradable = {line.split("/", 1)[0]: (line.split(" ", 1)[0], line.split()[1])
                  for line in listing.splitlines() if "/" in line and "[upgradable" in line}
    apts = {(name, version) for name, (origin, version) in upgradable.items()
            if "-security" in origin}
    assert apts <= ours
    # Where a point release supersedes the security suite's version, apt's candidate
    # comes from the main suite: the security update is still pending, and apt upgrades
    # it to a version at least as new as the one the security suite offers.
    for name, version in ours - apts:
        assert name in upgradable, name
        subprocess.run(["dpkg", "--compare-versions", upgradable[name][1], "ge", version],
                       check=True)


def test_changelog_cves_since_the_installed_version() -> None:
    """curl's real changelog: the CVEs of the entries after the installed version."""
    text = (FIXTURES / "curl_changelog.Debian").read_text()
    if CURL_CHANGELOG.exists():
        real = gzip.decompress(CURL_CHANGELOG.read_bytes()).decode()
        if real.startswith("curl (7.88.1-10+deb12u14)"):  # the version the excerpt is of
            text = real
    # deb12u13 names CVE-2023-27534 (a regression fix of that CVE's patch), u11
    # CVE-2025-0167, u10 CVE-2024-11053; u9 (CVE-2024-9681) is the installed one.
    assert parse_debian_changelog(text, "7.88.1-10+deb12u9") == [
        "CVE-2023-27534", "CVE-2024-11053", "CVE-2025-0167"]
    assert parse_debian_changelog(text, "7.88.1-10+deb12u8") == [
        "CVE-2023-27534", "CVE-2024-11053", "CVE-2024-9681", "CVE-2025-0167"]
    assert parse_debian_changelog(text, "7.88.1-10+deb12u14") == []


def test_changelog_errors() -> None:
    with pytest.raises(InventoryFormatError) as caught:
        parse_debian_changelog("Fixed CVE-2024-1234.\n", "1.0-1", "apt-get changelog x")
    assert caught.value.path == "apt-get changelog x"
    assert "not a Debian changelog" in caught.value.detail
    with pytest.raises(InventoryFormatError, match="binary data"):
        parse_debian_changelog("\x1f\x8b\x08\x00", "1.0-1")
