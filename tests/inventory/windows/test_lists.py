"""``wmic qfe list``, ``Get-HotFix | ConvertTo-Json`` and update-history lists; format
detection; decoding; and hostile input refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.windows import (
    decode,
    detect,
    looks_windows,
    parse_hotfix_json,
    parse_qfe,
    parse_update_history,
    read_windows_bytes,
)

FOLDER = "windows/systeminfo"

# Get-HotFix | ConvertTo-Json as Windows PowerShell 5.1 prints it (InstalledOn as a
# DateTime object; trimmed of the WMI __ properties it also prints).
HOTFIX_JSON = r"""[
    {
        "PSComputerName":  "SRV22",
        "InstalledOn":  {"value":  "\/Date(1709596800000)\/",
                         "DateTime":  "Tuesday, March 5, 2024 12:00:00 AM"},
        "Caption":  "https://support.microsoft.com/help/5034439",
        "CSName":  "SRV22",
        "Description":  "Update",
        "HotFixID":  "KB5034439",
        "InstalledBy":  "NT AUTHORITY\\SYSTEM"
    },
    {
        "PSComputerName":  "SRV22",
        "InstalledOn":  {"value":  "\/Date(1709596800000)\/",
                         "DateTime":  "Tuesday, March 5, 2024 12:00:00 AM"},
        "Caption":  "https://support.microsoft.com/help/5035857",
        "CSName":  "SRV22",
        "Description":  "Security Update",
        "HotFixID":  "KB5035857",
        "InstalledBy":  "NT AUTHORITY\\SYSTEM"
    }
]
"""


def test_hotfix_json_array_and_single_object() -> None:
    facts = parse_hotfix_json(HOTFIX_JSON, "h.json")
    assert (facts.format, facts.kbs, facts.hostname, facts.product_name, facts.build) == (
        "hotfix-json", ("KB5034439", "KB5035857"), "SRV22", None, None)
    single = '{"HotFixID": "KB5034439", "CSName": "PC1", "InstalledOn": "2024-03-05"}'
    assert parse_hotfix_json(single, "one.json").kbs == ("KB5034439",)


def test_hotfix_json_saved_by_powershell_as_utf16() -> None:
    data = b"\xff\xfe" + HOTFIX_JSON.encode("utf-16-le")
    assert read_windows_bytes(data, "h.json").kbs == ("KB5034439", "KB5035857")


@pytest.mark.parametrize(("text", "message"), [
    ("[{", "h.json: not valid JSON: "),
    ("[]", "h.json: Get-HotFix JSON holds no hotfix object"),
    ('[{"HotFixID": "KB1234567"}, {"Name": "x"}]',
     'h.json: entry 1 has no "HotFixID": not Get-HotFix output'),
    ('[{"HotFixID": "File 1"}]', "h.json: no KB number in any hotfix entry (only: File 1)"),
])
def test_bad_hotfix_json_is_refused(text: str, message: str) -> None:
    with pytest.raises(InventoryFormatError) as caught:
        parse_hotfix_json(text, "h.json")
    assert str(caught.value).startswith(message)


def test_wmic_qfe_utf16_after_an_ascii_preamble(shared_data: Path) -> None:
    """XP x64's first wmic run: "Please wait while WMIC is being installed." in ASCII, then
    UTF-16LE without a BOM; XP keeps the KB in ServicePackInEffect ("KB941569_WM11")."""
    name = "xp_sp2_x64_qfe.txt"
    data = (shared_data / FOLDER / name).read_bytes()
    assert data.startswith(b"Please wait while WMIC is being installed.C\x00a\x00")
    facts = read_windows_bytes(data, name)
    assert (facts.format, len(facts.kbs), facts.kbs[0], facts.kbs[-1], facts.hostname) == (
        "qfe", 149, "KB915800", "KB2930275", "USER-8CEF73C787")
    assert "KB941569" in facts.kbs
    assert facts.other_hotfixes == ("Q147222", "MSCompPackV1")


def test_wmic_qfe_vista_bare_numbers_and_guid_rows(shared_data: Path) -> None:
    name = "vista_x64_sp1_qfe.txt"
    facts = read_windows_bytes((shared_data / FOLDER / name).read_bytes(), name)
    assert "KB943729" in facts.kbs  # HotFixID printed as a bare "943729"
    assert facts.other_hotfixes == ("{7A068575-C5DB-43D9-BE20-3895D0C69B17}",)


def test_qfe_header_without_rows_is_refused() -> None:
    header = "Description  FixComments  HotFixID   InstallDate\n\n"
    with pytest.raises(InventoryFormatError) as caught:
        parse_qfe(header, "q.txt")
    assert str(caught.value) == "q.txt:1: wmic qfe header but no hotfix row under it"


def test_update_history_with_repeated_kbs_and_a_stray_line() -> None:
    text = ("KB2483139: Czech Language Pack - Windows 7 Service Pack 1 (KB2483139)\n"
            "KB2483139: Danish Language Pack - Windows 7 Service Pack 1 (KB2483139)\n"
            "garbage here\n"
            "KB890830: Windows Malicious Software Removal Tool x64 - February 2019\n")
    facts = parse_update_history(text, "u.txt")
    assert facts.kbs == ("KB890830", "KB2483139")
    assert facts.warnings == ('u.txt:3: not a "KBnnnnnnn: title" line; skipped',)


def test_real_update_history(shared_data: Path) -> None:
    name = "10_1803_x64_proforworkstations_en-us_B_20190306_updates.txt"
    facts = read_windows_bytes((shared_data / FOLDER / name).read_bytes(), name)
    assert facts.kbs == ("KB890830", "KB4100347", "KB4462930", "KB4487017", "KB4487038")


@pytest.mark.parametrize(("name", "fmt"), [
    ("srv_2022_systeminfo.txt", "systeminfo"),
    ("7_sp1_x64_enterprise_fr_systeminfo_cmd.txt", "systeminfo"),
    ("srv_2012r2_u1_qfe.txt", "qfe"),
    ("xp_rtm_x86_professional_en-us_qfe.txt", "qfe"),
    ("srv_2012r2_u1_updates_optional.txt", "update-history"),
])
def test_detect_real_files(shared_data: Path, name: str, fmt: str) -> None:
    data = (shared_data / FOLDER / name).read_bytes()
    assert detect(decode(data, name)) == fmt
    assert looks_windows(data[:8192]) is True


def test_detect_others() -> None:
    assert detect(HOTFIX_JSON) == "hotfix-json"
    assert detect("Package: bash\nStatus: install ok installed\nVersion: 5.2\n") is None
    assert detect('{"bomFormat": "CycloneDX"}') is None
    assert looks_windows(b"Package: bash\nVersion: 5.2\n") is False


@pytest.mark.parametrize(("data", "message"), [
    (b"", "x.txt: empty file"),
    (b"\r\n \r\n", "x.txt: empty file"),
    (b"\xff\xfe\r\x00\n\x00", "x.txt: empty file (only blank lines)"),
    (bytes(range(256)) * 8, "x.txt: binary data, not Windows systeminfo, wmic qfe, "
                            "Get-HotFix JSON or update-history output"),
    (b"\x00\x01\x02ELF", "x.txt: binary data, not Windows systeminfo, wmic qfe, "
                         "Get-HotFix JSON or update-history output"),
    (b"hello world\nthis is a note\n", "x.txt: not Windows systeminfo, wmic qfe, "
                                       "Get-HotFix JSON or update-history output"),
])
def test_hostile_bytes_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(InventoryFormatError) as caught:
        read_windows_bytes(data, "x.txt")
    assert str(caught.value) == message


def test_truncated_real_file_is_refused(shared_data: Path) -> None:
    """srv_2012r2's systeminfo cut in the middle of its hotfix list (a damaged copy, not
    systeminfo's own limit: nothing follows the list)."""
    name = "srv_2012r2_u1_systeminfo.txt"
    text = (shared_data / FOLDER / name).read_bytes().decode("ascii")
    cut = text[:text.index("[100]:")]
    with pytest.raises(InventoryFormatError) as caught:
        read_windows_bytes(cut.encode(), name)
    assert str(caught.value) == (f"{name}:34: the hotfix list says 154 hotfix(es) but 99 "
                                 "follow: truncated output?")
    with pytest.raises(InventoryFormatError) as caught:
        read_windows_bytes(text[:300].encode(), name)
    assert str(caught.value) == f"{name}: not Windows systeminfo, wmic qfe, Get-HotFix " \
                                "JSON or update-history output"
