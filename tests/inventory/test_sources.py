"""os-release, rpm, apk and Python core-metadata parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources.apk import parse_apk_installed
from patchpilot.inventory.sources.os_release import parse_os_release
from patchpilot.inventory.sources.python import parse_dist_dir_name, parse_metadata
from patchpilot.inventory.sources.rpm import RPM_QUERYFORMAT, parse_rpm_qa
from patchpilot.knowledge.ecosystems import ecosystem_for_os
from patchpilot.models import OsRelease, Package

DEBIAN_12 = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""
UBUNTU_2204 = """\
PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=jammy
"""
ALPINE_318 = """\
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.18.4
PRETTY_NAME="Alpine Linux v3.18"
HOME_URL="https://alpinelinux.org/"
"""
ALMA_93 = """\
NAME="AlmaLinux"
VERSION="9.3 (Shamrock Pampas Cat)"
ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="AlmaLinux 9.3 (Shamrock Pampas Cat)"
"""
DEBIAN_TRIXIE = """\
PRETTY_NAME="Debian GNU/Linux trixie/sid"
NAME="Debian GNU/Linux"
VERSION_CODENAME=trixie
ID=debian
"""


@pytest.mark.parametrize(("text", "expected", "ecosystem"), [
    (DEBIAN_12, OsRelease("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)"),
     "Debian:12"),
    (UBUNTU_2204, OsRelease("ubuntu", "22.04", "jammy", "Ubuntu 22.04.4 LTS", ("debian",)),
     "Ubuntu:22.04"),
    (ALPINE_318, OsRelease("alpine", "3.18.4", None, "Alpine Linux v3.18"), "Alpine:3.18"),
    (ALMA_93, OsRelease("almalinux", "9.3", None, "AlmaLinux 9.3 (Shamrock Pampas Cat)",
                        ("rhel", "centos", "fedora")), "AlmaLinux:9"),
    (DEBIAN_TRIXIE, OsRelease("debian", None, "trixie", "Debian GNU/Linux trixie/sid"),
     "Debian:13"),
])
def test_os_release(text: str, expected: OsRelease, ecosystem: str) -> None:
    release = parse_os_release(text)
    assert release == expected
    assert ecosystem_for_os(release) == ecosystem


def test_os_release_quoting_and_comments() -> None:
    text = "# comment\nID='arch'\nPRETTY_NAME=\"Say \\\"hi\\\"\"\n\nBUILD_ID=rolling\n"
    assert parse_os_release(text) == OsRelease("arch", pretty_name='Say "hi"')
    assert parse_os_release("NAME=x\n").id == "linux"  # the spec's default ID


@pytest.mark.parametrize(("text", "detail", "line"), [
    ("", "empty os-release file", None),
    ("ID=debian\n<html>\n", "not a KEY=value line: '<html>'", 2),
])
def test_os_release_invalid(text: str, detail: str, line: int | None) -> None:
    with pytest.raises(InventoryFormatError) as raised:
        parse_os_release(text, "/etc/os-release")
    assert (raised.value.path, raised.value.detail, raised.value.line) == (
        "/etc/os-release", detail, line)


RPM_QA = (
    "bash\t0\t5.1.8\t6.el9_1\tx86_64\tbash-5.1.8-6.el9_1.src.rpm\n"
    "gpg-pubkey\t0\t3abb34f8\t5ffd890e\t(none)\t(none)\n"
    "openssl-libs\t1\t3.0.7\t24.el9\tx86_64\topenssl-3.0.7-24.el9.src.rpm\n"
    "tzdata\t0\t2023c\t1.el9\tnoarch\ttzdata-2023c-1.el9.src.rpm\n"
)


def test_rpm_qa() -> None:
    assert RPM_QUERYFORMAT.count("\\t") == 5 and RPM_QUERYFORMAT.endswith("\\n")
    packages = parse_rpm_qa(RPM_QA, "AlmaLinux:9", "rpm -qa")
    assert [p.name for p in packages] == ["bash", "openssl-libs", "tzdata"]  # no gpg-pubkey
    assert packages[1] == Package(
        ecosystem="AlmaLinux:9", name="openssl-libs", version="1:3.0.7-24.el9", arch="x86_64",
        source_name="openssl", source_version="1:3.0.7-24.el9",
        purl="pkg:rpm/almalinux/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=almalinux-9"
             "&epoch=1&upstream=openssl",
        location="rpm -qa")
    assert (packages[0].version, packages[0].source_name) == ("5.1.8-6.el9_1", "bash")
    assert packages[2].arch == "noarch"


@pytest.mark.parametrize(("text", "detail", "line"), [
    ("", "empty rpm package list", None),
    ("bash\t0\t5.1.8\t6.el9\tx86_64\tbash.src.rpm\nbroken line\n",
     "expected 6 tab-separated fields (name, epoch, version, release, arch, sourcerpm), got 1",
     2),
    ("bash\tX\t5.1.8\t6.el9\tx86_64\tbash.src.rpm\n", "epoch 'X' is not a number", 1),
])
def test_rpm_qa_invalid(text: str, detail: str, line: int | None) -> None:
    with pytest.raises(InventoryFormatError) as raised:
        parse_rpm_qa(text, "AlmaLinux:9", "rpm.txt")
    assert (raised.value.path, raised.value.detail, raised.value.line) == (
        "rpm.txt", detail, line)


@pytest.mark.parametrize(("name", "count"), [
    ("osv-scanner__scan__source__locks-many__installed", 1),
    ("syft__alpine__multiple-2__lib__apk__db__installed", 14),
    ("syft__image-pkg-coverage__lib__apk__db__installed", 2),
])
def test_apk_counts(inventories: Path, name: str, count: int) -> None:
    path = inventories / "apk-installed" / name
    assert len(parse_apk_installed(path.read_text(encoding="utf-8"), "Alpine:3.16")) == count


def test_apk_fields(inventories: Path) -> None:
    path = inventories / "apk-installed" / "syft__alpine__multiple-2__lib__apk__db__installed"
    packages = parse_apk_installed(path.read_text(encoding="utf-8"), "Alpine:3.16", str(path))
    libssl = next(p for p in packages if p.name == "libssl1.1")
    assert libssl == Package(
        ecosystem="Alpine:3.16", name="libssl1.1", version="1.1.1q-r0", arch="x86_64",
        source_name="openssl", source_version="1.1.1q-r0",
        purl="pkg:apk/alpine/libssl1.1@1.1.1q-r0?arch=x86_64&distro=alpine-3.16"
             "&upstream=openssl",
        location=str(path))
    # This database holds apk-tools 2.12.9-r3 (the locks-many one holds 2.12.10-r1).
    assert [p.version for p in packages if p.name == "apk-tools"] == ["2.12.9-r3"]
    assert [p.name for p in packages][:3] == ["alpine-baselayout-data", "musl", "busybox"]


@pytest.mark.parametrize(("text", "detail", "line"), [
    ("", "empty apk installed database", None),
    ("C:Q1abc=\nV:1.0-r0\nA:x86_64\n", "package record without P: (name)", 1),
    ("P:zlib\nV:1.2.12-r3\n\nthis is not apk\n", "not an 'X:value' line: 'this is not apk'", 4),
])
def test_apk_invalid(text: str, detail: str, line: int | None) -> None:
    with pytest.raises(InventoryFormatError) as raised:
        parse_apk_installed(text, "Alpine:3.18", "installed")
    assert (raised.value.path, raised.value.detail, raised.value.line) == (
        "installed", detail, line)


def test_parse_metadata() -> None:
    text = ("Metadata-Version: 2.1\nName: Pydantic_Core\nVersion: 2.33.2\n"
            "Classifier: Programming Language :: Python\n\nName: not-this\n")
    assert parse_metadata(text) == ("Pydantic_Core", "2.33.2")
    with pytest.raises(InventoryFormatError, match="METADATA: core metadata without Version"):
        parse_metadata("Metadata-Version: 2.1\nName: x\n\nVersion: 1\n")


def test_parse_dist_dir_name() -> None:
    assert parse_dist_dir_name("pydantic_core-2.33.2.dist-info") == ("pydantic_core", "2.33.2")
    assert parse_dist_dir_name("PyYAML-6.0-py3.11.egg-info") == ("PyYAML", "6.0")
    assert parse_dist_dir_name("README.txt") is None
