"""``parse_systeminfo`` on real files of four eras and three languages, read in full, and on
relabelled text (the reading is by structure, not by the English labels)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.windows import WindowsFacts, decode, parse_systeminfo, read_windows_bytes
from patchpilot.inventory.windows.facts import normalise_product, release_of_build

FOLDER = "windows/systeminfo"


def _read(shared_data: Path, name: str) -> WindowsFacts:
    return read_windows_bytes((shared_data / FOLDER / name).read_bytes(), name)


def test_windows_xp_rtm(shared_data: Path) -> None:
    name = "xp_rtm_x86_professional_en-us_systeminfo.txt"
    assert _read(shared_data, name) == WindowsFacts(
        source=name, format="systeminfo", product_name="Microsoft Windows XP Professional",
        family="Windows XP", release=None, edition="Professional", os_version="5.1.2600",
        build=2600, ubr=None, service_pack=None, architecture="x86", kbs=("KB893803",),
        other_hotfixes=("File 1", "Q147222"), kbs_complete=True, hostname="WINXPSP0",
        domain="MSHOME", install_date=date(2014, 4, 23), warnings=())


def test_windows_server_2022(shared_data: Path) -> None:
    name = "srv_2022_systeminfo.txt"
    assert _read(shared_data, name) == WindowsFacts(
        source=name, format="systeminfo",
        product_name="Microsoft Windows Server 2022 Standard", family="Windows Server 2022",
        release="21H2", edition="Standard", os_version="10.0.20348", build=20348,
        ubr=None,  # systeminfo stops at the build: "10.0.20348 N/A Build 20348"
        service_pack=None, architecture="x64", kbs=("KB5004330", "KB5005039", "KB5005552"),
        other_hotfixes=(), kbs_complete=True, hostname="WIN-RIBN7SM07BK", domain="WORKGROUP",
        install_date=date(2021, 10, 1),  # "10/1/2021": the boot time "10/22/2021" tells M/D
        warnings=())


def test_windows_11_23h2(shared_data: Path) -> None:
    name = "11_23H2_x64_enterprise_systeminfo.txt"
    assert _read(shared_data, name) == WindowsFacts(
        source=name, format="systeminfo", product_name="Microsoft Windows 11 Enterprise",
        family="Windows 11", release="23H2", edition="Enterprise", os_version="10.0.22631",
        build=22631, architecture="x64",
        kbs=("KB5027397", "KB5029921", "KB5031354", "KB5031592"), hostname="DESKTOP-JNEKK9U",
        domain="WORKGROUP", install_date=None,
        warnings=(f"{name}:11: install date '11/3/2023, 8:10:27 AM' has no telling "
                  "day/month order; left out",))


def test_windows_7_sp1_german_cut_list(shared_data: Path) -> None:
    """German labels (UTF-8 with umlauts), duplicated entries, and systeminfo's own cut
    inside item 246 ("[24")."""
    name = "7_sp1_x64_ultimaten_de_systeminfo.txt"
    facts = _read(shared_data, name)
    assert (facts.product_name, facts.family, facts.release, facts.edition) == (
        "Microsoft Windows 7 Ultimate N", "Windows 7", None, "Ultimate N")
    assert (facts.os_version, facts.build, facts.service_pack, facts.architecture) == (
        "6.1.7601", 7601, 1, "x64")
    assert (facts.hostname, facts.domain, facts.install_date) == (
        "OLI7-PC", "WORKGROUP", date(2016, 6, 15))
    assert len(facts.kbs) == 242  # 245 items, some listed twice
    assert facts.kbs[:3] == ("KB968211", "KB2479943", "KB2491683")
    assert facts.kbs[-1] == "KB3162835"
    assert facts.other_hotfixes == ()
    assert facts.kbs_complete is False
    assert facts.warnings == (
        f"{name}:33: systeminfo listed only 245 of its 263 hotfixes (its own output limit); "
        "the KBs are incomplete -- add `wmic qfe list` or `Get-HotFix | ConvertTo-Json` "
        "output for the rest",)


def test_windows_7_french_oem_code_page(shared_data: Path) -> None:
    """cmd's ``systeminfo > file`` in French: cp850 bytes ("h\\x93te" is "hôte")."""
    name = "7_sp1_x64_enterprise_fr_systeminfo_cmd.txt"
    data = (shared_data / FOLDER / name).read_bytes()
    assert "Nom de l'hôte:" in decode(data, name)
    facts = read_windows_bytes(data, name)
    assert (facts.product_name, facts.edition, facts.build, facts.service_pack) == (
        "Microsoft Windows 7 Entreprise N", "Entreprise N", 7601, 1)
    assert (facts.hostname, facts.domain, facts.install_date) == (
        "WIN-IDKKFN87EL8", "WORKGROUP", date(2019, 4, 29))
    assert (len(facts.kbs), facts.kbs[0], facts.kbs[-1]) == (73, "KB976902", "KB4493472")
    assert facts.kbs_complete is True and facts.warnings == ()


def test_spanish_redacted_values_are_none(shared_data: Path) -> None:
    """The Spanish sample had its host name and logon server replaced by "..."."""
    name = "10_1809_x64_education_es_systeminfo.txt"
    facts = _read(shared_data, name)
    assert (facts.hostname, facts.domain, facts.build, facts.release) == (
        None, "WORKGROUP", 17763, "1809")


def test_missing_host_name_line_is_a_warning(shared_data: Path) -> None:
    name = "10_1803_x64_enterprise_es-ar_20190307_systeminfo.txt"
    facts = _read(shared_data, name)
    assert facts.hostname is None and facts.product_name == "Microsoft Windows 10 Enterprise"
    assert facts.warnings == (f"{name}: no host name line before the OS name",)


def test_labels_in_an_unknown_language_are_read_by_position(shared_data: Path) -> None:
    """Every label replaced by a made-up word: the facts come from the line order and the
    values' shapes; only the cross-check notes the unknown labels."""
    name = "srv_2022_systeminfo.txt"
    text = decode((shared_data / FOLDER / name).read_bytes(), name)
    relabelled = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line[:1].isalpha():
            label, _, rest = line.partition(":")
            while rest.startswith(" Max Size") or rest.startswith(" Available") or \
                    rest.startswith(" In Use"):
                _, _, rest = rest.partition(":")  # "Virtual Memory: Max Size:"
            width = len(line) - len(rest)
            line = f"Xyzzy{number}:".ljust(width) + rest
        relabelled.append(line)
    facts = parse_systeminfo("\n".join(relabelled), "relabelled")
    original = _read(shared_data, name)
    assert (facts.product_name, facts.build, facts.architecture, facts.kbs, facts.hostname,
            facts.domain, facts.install_date) == (
        original.product_name, original.build, original.architecture, original.kbs,
        original.hostname, original.domain, original.install_date)
    assert facts.warnings == (
        "relabelled:3: label 'Xyzzy3' of the OS name is not one PatchPilot knows; read by "
        "position",
        "relabelled:31: label 'Xyzzy31' of the domain is not one PatchPilot knows; read by "
        "position",
    )


@pytest.mark.parametrize(("build", "release"), [
    (10240, "1507"), (17134, "1803"), (17763, "1809"), (19044, "21H2"), (19045, "22H2"),
    (20348, "21H2"), (22000, "21H2"), (22621, "22H2"), (22631, "23H2"), (26100, "24H2"),
    (9600, None), (99999, None),
])
def test_release_of_build(build: int, release: str | None) -> None:
    assert release_of_build(build) == release


@pytest.mark.parametrize(("name", "build", "expected"), [
    ("Microsoft Windows 10 Enterprise", 22000, ("Windows 11", "21H2", "Enterprise")),
    ("Microsoft Windows Server Datacenter", 20348, ("Windows Server 2022", "21H2",
                                                    "Datacenter")),
    ("Microsoftr Windows Serverr 2008 Standard", 6001, ("Windows Server 2008", None,
                                                        "Standard")),
    ("Microsoft(R) Windows(R) Server 2003, Standard Edition", 3790,
     ("Windows Server 2003", None, "Standard")),
    ("Microsoft(R) Windows(R) XP Professional x64 Edition", 3790,
     ("Windows XP", None, "Professional")),
    ("Microsoftr Windows VistaT Enterprise", 6000, ("Windows Vista", None, "Enterprise")),
    ("Microsoft Windows Server 2012 R2 Standard", 9600, ("Windows Server 2012 R2", None,
                                                         "Standard")),
    ("Linux", 1, (None, None, None)),
])
def test_normalise_product(name: str, build: int,
                           expected: tuple[str | None, str | None, str | None]) -> None:
    assert normalise_product(name, build) == expected


def test_an_arm64_system_type() -> None:
    text = (SAMPLE.replace("x64-based PC", "ARM64-based PC"))
    assert parse_systeminfo(text, "arm").architecture == "arm64"


SAMPLE = """
Host Name:                 H1
OS Name:                   Microsoft Windows 11 Pro
OS Version:                10.0.26100 N/A Build 26100
OS Manufacturer:           Microsoft Corporation
OS Configuration:          Standalone Workstation
OS Build Type:             Multiprocessor Free
Registered Owner:          User
Registered Organization:   N/A
Product ID:                00330-80000-00000-AA111
Original Install Date:     2024-11-02, 10:00:00
System Boot Time:          2025-01-05, 08:00:00
System Type:               x64-based PC
Processor(s):              1 Processor(s) Installed.
                           [01]: ARMv8 (64-bit) Family 8
Domain:                    CORP
Logon Server:              \\\\DC1
Hotfix(s):                 2 Hotfix(s) Installed.
                           [01]: KB5044284
                           [02]: KB5043080
Network Card(s):           N/A
"""


def test_a_compact_sample_in_full() -> None:
    facts = parse_systeminfo(SAMPLE, "s.txt")
    assert facts == WindowsFacts(
        source="s.txt", format="systeminfo", product_name="Microsoft Windows 11 Pro",
        family="Windows 11", release="24H2", edition="Pro", os_version="10.0.26100",
        build=26100, architecture="x64", kbs=("KB5043080", "KB5044284"), hostname="H1",
        domain="CORP", install_date=date(2024, 11, 2))


@pytest.mark.parametrize(("text", "message"), [
    ("just some words\nand more\n", "t.txt: no \"label: value\" lines: not systeminfo output"),
    (SAMPLE.replace("10.0.26100 N/A Build 26100", "unknown"),
     "t.txt: no OS version line (a value like \"10.0.20348 N/A Build 20348\"): not "
     "systeminfo output, or truncated before it"),
    (SAMPLE.split("Processor(s)")[0],
     "t.txt: no hotfix list (the \"Hotfix(s): N Hotfix(s) Installed.\" line): truncated "
     "output?"),
    (SAMPLE.split("[02]: KB5043080")[0],
     "t.txt:18: the hotfix list says 2 hotfix(es) but 1 follow: truncated output?"),
    (SAMPLE.replace("Microsoft Windows 11 Pro", "Contoso OS"),
     "t.txt:4: no OS name line (\"Microsoft Windows ...\") before the OS version line"),
])
def test_unreadable_systeminfo_is_refused_with_why(text: str, message: str) -> None:
    with pytest.raises(InventoryFormatError) as caught:
        parse_systeminfo(text, "t.txt")
    assert str(caught.value) == message
