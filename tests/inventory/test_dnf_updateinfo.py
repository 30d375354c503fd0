"""dnf's pending security updates: ``dnf updateinfo list --security [--with-cve]``.

dnf is not installed on this (Debian) machine, so the fixtures in tests/fixtures/dnf/ were
written with dnf 4's own format string (``'%s%-*s %-*s %s'`` in
dnf/cli/commands/updateinfo.py ``display_list``) from real AlmaLinux 8 errata in
../shared/data: ALSA-2022:0818 (firefox, 10 CVEs) and ALSA-2022:0267 (polkit, pwnkit).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import Collector, Inventory, OsInfo, PendingUpdate
from patchpilot.inventory.sources.dnf_updateinfo import (
    UpdateinfoLine,
    parse_updateinfo_list,
    pending_dnf_updates,
    split_nevra,
)
from patchpilot.models import Ecosystem, Package

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dnf"
ALMA8 = Ecosystem("AlmaLinux:8")
INSTALLED = [
    Package(ALMA8, "firefox", "91.6.0-1.el8_5.alma", arch="x86_64", source_name="firefox",
            source_version="91.6.0-1.el8_5.alma"),
    Package(ALMA8, "polkit", "0.115-12.el8", arch="x86_64", source_name="polkit",
            source_version="0.115-12.el8"),
    Package(ALMA8, "polkit-libs", "0.115-12.el8", arch="x86_64", source_name="polkit",
            source_version="0.115-12.el8"),
]


def _read(name: str) -> list[UpdateinfoLine]:
    return parse_updateinfo_list((FIXTURES / name).read_text(), name)


def test_parse_advisory_list() -> None:
    lines = _read("almalinux8_security.txt")
    assert lines == [
        UpdateinfoLine("ALSA-2022:0818", True, "Critical", "firefox", "91.7.0-3.el8_5.alma",
                       "x86_64"),
        UpdateinfoLine("ALSA-2022:0267", True, "Important", "polkit", "0.115-13.el8_5.2",
                       "x86_64"),
        UpdateinfoLine("ALSA-2022:0267", True, "Important", "polkit-libs",
                       "0.115-13.el8_5.2", "x86_64"),
    ]
    assert lines[0].nevra == "firefox-91.7.0-3.el8_5.alma.x86_64"
    assert _read("with_preamble.txt") == lines


def test_parse_cve_list() -> None:
    lines = _read("almalinux8_security_with_cve.txt")
    assert len(lines) == 12
    assert {ln.ref_id for ln in lines if ln.name == "firefox"} == {
        "CVE-2022-25235", "CVE-2022-25236", "CVE-2022-25315", "CVE-2022-26381",
        "CVE-2022-26383", "CVE-2022-26384", "CVE-2022-26386", "CVE-2022-26387",
        "CVE-2022-26485", "CVE-2022-26486"}


def test_pending_updates_join_advisories_and_cves() -> None:
    pending = pending_dnf_updates(_read("almalinux8_security.txt"),
                                  _read("almalinux8_security_with_cve.txt"), INSTALLED)
    assert len(pending) == 3
    firefox, polkit, polkit_libs = pending
    assert polkit == PendingUpdate(
        package="polkit", source_name="polkit", arch="x86_64",
        installed_version="0.115-12.el8", candidate_version="0.115-13.el8_5.2",
        repository="dnf updateinfo", advisory_id="ALSA-2022:0267",
        cve_ids=["CVE-2021-4034"], severity="Important")
    assert (polkit_libs.package, polkit_libs.source_name, polkit_libs.cve_ids) == (
        "polkit-libs", "polkit", ["CVE-2021-4034"])
    assert (firefox.advisory_id, firefox.severity, len(firefox.cve_ids),
            firefox.candidate_version) == (
        "ALSA-2022:0818", "Critical", 10, "91.7.0-3.el8_5.alma")


def test_packages_not_installed_and_other_types_are_left_out() -> None:
    text = ("RHBA-2022:1000 bugfix         tzdata-2022a-1.el8.noarch\n"
            "ALSA-2022:0267 Unknown/Sec.   polkit-0.115-13.el8_5.2.x86_64\n"
            "ALSA-2022:0267 Important/Sec. polkit-0.115-13.el8_5.2.i686\n")
    lines = parse_updateinfo_list(text, "dnf")
    assert [(ln.security, ln.severity) for ln in lines] == [
        (False, None), (True, None), (True, "Important")]
    pending = pending_dnf_updates(lines, [], INSTALLED)
    assert [(u.package, u.arch, u.severity, u.cve_ids) for u in pending] == [
        ("polkit", "x86_64", None, [])]


def test_empty_output_is_nothing_pending() -> None:
    assert parse_updateinfo_list("", "dnf") == []


def test_split_nevra_with_epoch() -> None:
    assert split_nevra("bind-libs-32:9.11.36-3.el8_6.1.x86_64") == (
        "bind-libs", "32:9.11.36-3.el8_6.1", "x86_64")
    assert split_nevra("polkit-libs-0.115-1") is None


@pytest.mark.parametrize(("text", "detail", "line"), [
    (None, "not a name-version-release.arch: 'polkit-libs-0.115-1'", 3),
    ("ALSA-2022:0267 Important/Sec.\n", "expected 'ID TYPE/SEVERITY NEVRA', "
                                       "got 'ALSA-2022:0267 Important/Sec.'", 1),
    ("\nALSA-2022:0267 Importan polkit-0.115-13.el8_5.2.x86_64\n",
     "unknown advisory type 'Importan'", 2),
])
def test_truncated_or_garbled_output(text: str | None, detail: str, line: int) -> None:
    source = "dnf updateinfo list --security"
    body = (FIXTURES / "truncated.txt").read_text() if text is None else text
    with pytest.raises(InventoryFormatError) as caught:
        parse_updateinfo_list(body, source)
    assert (caught.value.path, caught.value.detail, caught.value.line) == (source, detail, line)


def test_pending_updates_round_trip_in_the_inventory_document() -> None:
    pending = pending_dnf_updates(_read("almalinux8_security.txt"),
                                  _read("almalinux8_security_with_cve.txt"), INSTALLED)
    inventory = Inventory.from_packages(
        INSTALLED, os=OsInfo(id="almalinux", version_id="8.5", reboot_required=True),
        pending_updates=pending, collector=Collector(name="local"))
    assert Inventory.from_json(inventory.to_json()) == inventory
    # Schema 1 documents written before these fields still read: nothing pending known,
    # reboot need unknown.
    old = Inventory.from_json(b'{"schema": 1, "os": {"id": "almalinux"}, '
                              b'"collector": {"name": "agent"}}')
    assert old.pending_updates == [] and old.os is not None and old.os.reboot_required is None
