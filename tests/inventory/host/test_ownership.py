"""Which OS package owns a language package, and what its changelog says it fixed: the
pure parsers on real inputs (this Debian 12 machine's dpkg file lists and changelogs, a
real apk installed database), and the collection of this machine."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.collect import CollectOptions, collect
from patchpilot.inventory.host import commands
from patchpilot.inventory.host.ownership import (
    debian_changelog_text,
    parse_apk_owners,
    parse_dpkg_owners,
    parse_rpm_changelog_cves,
    parse_rpm_owners,
)
from patchpilot.inventory.sources.apt_pending import parse_debian_changelog_fixed
from patchpilot.inventory.transports.local import LocalHost
from patchpilot.models import PackageOwner

DIST = "/usr/lib/python3/dist-packages"
CRYPTOGRAPHY = f"{DIST}/cryptography-38.0.4.dist-info"
CRYPTOGRAPHY_EGG = f"{DIST}/cryptography.egg-info"
PIP = f"{DIST}/pip-23.0.1.dist-info"
CHANGELOG = Path("/usr/share/doc/python3-cryptography/changelog.Debian.gz")

needs_debian_cryptography = pytest.mark.skipif(
    not Path("/var/lib/dpkg/info/python3-cryptography.list").exists()
    or not Path(CRYPTOGRAPHY).is_dir(),
    reason="this machine has no Debian python3-cryptography 38.0.4")


@needs_debian_cryptography
def test_dpkg_owners_of_this_machine() -> None:
    """The grep over /var/lib/dpkg/info/*.list prints only the asked entries' lines."""
    out = subprocess.run(commands.dpkg_owners([CRYPTOGRAPHY, CRYPTOGRAPHY_EGG, PIP,
                                               f"{DIST}/no-such-1.0.dist-info"]),
                         capture_output=True, text=True, check=True).stdout
    assert sorted(out.splitlines()) == [
        f"python3-cryptography.list:{CRYPTOGRAPHY}",
        f"python3-cryptography.list:{CRYPTOGRAPHY_EGG}",
        f"python3-pip.list:{PIP}"]
    assert parse_dpkg_owners(out) == {CRYPTOGRAPHY: "python3-cryptography",
                                      CRYPTOGRAPHY_EGG: "python3-cryptography",
                                      PIP: "python3-pip"}


def test_dpkg_owners_multiarch_and_shared_paths() -> None:
    """``name:arch.list`` names the package ``name``; a path two lists name keeps the
    first package by name; lines that are not ``LIST:PATH`` are skipped."""
    text = ("libpython3.11-stdlib:amd64.list:/usr/lib/python3.11/lib-dynload\n"
            "python3-zz.list:/usr/lib/python3/dist-packages\n"
            "python3-aa.list:/usr/lib/python3/dist-packages\n"
            "grep: something.list: Permission denied\n")
    assert parse_dpkg_owners(text) == {
        "/usr/lib/python3.11/lib-dynload": "libpython3.11-stdlib",
        "/usr/lib/python3/dist-packages": "python3-aa"}


def test_apk_owners_of_a_real_database(shared_data: Path) -> None:
    """F: lines own folders, R: lines the files in the last F: folder, with the record's
    P: and V:."""
    text = (shared_data / "inventories/apk-installed/"
            "syft__alpine__multiple-2__lib__apk__db__installed").read_text()
    wanted = {"/lib/ld-musl-x86_64.so.1", "/etc/network/if-up.d", "/etc/fstab",
              "/usr/lib/python3.11/site-packages/nothing.dist-info"}
    assert parse_apk_owners(text, wanted) == {
        "/lib/ld-musl-x86_64.so.1": PackageOwner("musl", "1.2.3-r0"),
        "/etc/network/if-up.d": PackageOwner("busybox", "1.35.0-r17"),
        "/etc/fstab": PackageOwner("alpine-baselayout-data", "3.2.0-r22")}


def test_rpm_owners_lines() -> None:
    """``rpm -qf --queryformat RPM_OWNERS_QUERYFORMAT``: one line per file of the owning
    package; only the asked paths are kept, the epoch shown when not 0, and rpm's own
    "not owned" message skipped."""
    site = "/usr/lib/python3.9/site-packages"
    text = (f"{site}/cryptography\tpython3-cryptography\t0\t3.4.7\t5.el9\n"
            f"{site}/cryptography-3.4.7-py3.9.egg-info\tpython3-cryptography\t0\t3.4.7\t"
            "5.el9\n"
            f"{site}/urllib3-1.26.5-py3.9.egg-info\tpython3-urllib3\t1\t1.26.5\t3.el9\n"
            f"file {site}/x.dist-info is not owned by any package\n")
    wanted = {f"{site}/cryptography-3.4.7-py3.9.egg-info",
              f"{site}/urllib3-1.26.5-py3.9.egg-info", f"{site}/x.dist-info"}
    assert parse_rpm_owners(text, wanted) == {
        f"{site}/cryptography-3.4.7-py3.9.egg-info":
            PackageOwner("python3-cryptography", "3.4.7-5.el9"),
        f"{site}/urllib3-1.26.5-py3.9.egg-info": PackageOwner("python3-urllib3",
                                                              "1:1.26.5-3.el9")}
    assert commands.rpm_owners([site])[-1] == site


def test_rpm_changelog_cves() -> None:
    text = ("* Tue Feb 14 2023 Christian Heimes <cheimes@redhat.com> - 36.0.1-3\n"
            "- Fix CVE-2023-23931: Don't allow update_into to mutate immutable objects\n"
            "  Resolves: rhbz#2171820\n\n"
            "* Mon Dec 12 2022 Someone <s@example.org> - 36.0.1-2\n"
            "- Backport CVE-2023-0286 and CVE-2023-23931 fixes\n")
    assert parse_rpm_changelog_cves(text) == ["CVE-2023-0286", "CVE-2023-23931"]


@pytest.mark.skipif(not CHANGELOG.exists(), reason="no python3-cryptography changelog")
def test_debian_changelog_fixed_up_to_the_installed_version() -> None:
    """This machine's changelog.Debian.gz: every CVE up to 38.0.4-3+deb12u1; the
    +deb12u1 entry's two are not fixed in 38.0.4-3."""
    text = debian_changelog_text(CHANGELOG.read_bytes(), str(CHANGELOG))
    assert parse_debian_changelog_fixed(text, "38.0.4-3+deb12u1", str(CHANGELOG)) == [
        "CVE-2020-25659", "CVE-2020-36242", "CVE-2023-23931", "CVE-2023-49083",
        "CVE-2024-26130"]
    assert parse_debian_changelog_fixed(text, "38.0.4-3", str(CHANGELOG)) == [
        "CVE-2020-25659", "CVE-2020-36242", "CVE-2023-23931"]


def test_debian_changelog_not_gzip() -> None:
    with pytest.raises(InventoryFormatError, match="changelog.Debian.gz: not a gzip file"):
        debian_changelog_text(b"python-cryptography (38.0.4-3) unstable; urgency=medium\n",
                              "/usr/share/doc/x/changelog.Debian.gz")


@needs_debian_cryptography
def test_collect_this_machine_records_owners_and_changelog_cves() -> None:
    """The local host: Debian's cryptography and pip are owned by their python3-*
    packages (versions from dpkg), the owner's changelog CVEs are in the inventory, and
    a distribution nobody owns has no owner."""
    inventory = asyncio.run(collect(LocalHost(), CollectOptions()))
    by_place = {(p.name, p.location): p for p in inventory.packages if p.ecosystem == "PyPI"}
    crypto = by_place[("cryptography", DIST)]
    assert crypto.version == "38.0.4"
    assert crypto.owner is not None
    assert (crypto.owner.name, crypto.owner.version) == (
        "python3-cryptography", "38.0.4-3+deb12u1")
    pip = by_place[("pip", DIST)]
    assert pip.owner is not None and pip.owner.name == "python3-pip"
    dpkg = {p.name: p.version for p in inventory.packages if p.ecosystem == "Debian:12"}
    assert pip.owner.version == dpkg["python3-pip"]
    assert {"CVE-2023-49083", "CVE-2023-23931"} <= set(
        inventory.changelog_cves["python3-cryptography"])
    # Only owners' changelogs are read.
    owners = {p.owner.name for p in inventory.packages if p.owner is not None}
    assert set(inventory.changelog_cves) <= owners
    # A virtualenv's or pip-installed copy outside dpkg's lists is nobody's.
    unowned = [p for p in inventory.packages
               if p.ecosystem == "PyPI" and not p.location.startswith(DIST)]  # type: ignore[union-attr]
    assert unowned and all(p.owner is None for p in unowned)
    assert all(p.owner is None for p in inventory.packages if p.ecosystem == "Debian:12")
