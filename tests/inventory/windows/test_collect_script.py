"""The Windows collection script and its parser (``inventory.windows.collect``).

No Windows machine is here, so the two outputs below are CONSTRUCTED samples, written by
hand in the shape ``COLLECT_SCRIPT`` prints (``ConvertTo-Json -Compress``, non-ASCII as
``\\uXXXX``), with values consistent with real hosts: a Windows Server 2022 Standard
(Desktop Experience) at build 20348.3270 running SQL Server 2019 CU 32 (15.0.4415.2),
Exchange 2019 CU15 (15.2.1748.10), IIS 10.0 and .NET Framework 4.8; and a Windows 11 Pro
24H2 PC at 26100.7623, the build of the January 2026 cumulative update KB5074109 (as the
real MSRC document of that month in ../shared/data/msrc says).  A Windows 11 registry
still names itself "Windows 10 Pro" in ProductName: the build tells.  The Server's KB
numbers are illustrative, not claimed to be those that give build 3270.
"""

from __future__ import annotations

import base64
import re

import orjson
import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import WindowsProgram
from patchpilot.inventory.windows import collect as wc
from patchpilot.inventory.windows.collect import (
    CMD_LINE_LIMIT,
    COLLECT_SCRIPT,
    REGISTRY_KEYS,
    compact,
    parse_collected,
    ssh_command,
    stdin_script,
)

SERVER_2022 = (
    '{"patchpilot":1,"os":{"ProductName":"Windows Server 2022 Standard","EditionID":'
    '"ServerStandard","DisplayVersion":"21H2","ReleaseId":"2009","CurrentBuildNumber":'
    '"20348","UBR":3270,"InstallationType":"Server","CurrentMajorVersionNumber":10,'
    '"CurrentMinorVersionNumber":0,"CurrentVersion":"6.3"},"architecture":"AMD64",'
    '"network":{"Hostname":"SRV-SQL01","Domain":"corp.example.com"},"machine":'
    '{"MachineGuid":"5f0c8a3e-2b9d-4c61-9a57-0e4d6b1f7c22"},"ips":["10.20.30.41",'
    '"fe80::8d4c:1a2b:3c4d:5e6f%6","127.0.0.1","::1"],"qfe":["KB5050187","KB5051979",'
    '"KB5052106"],"history":[{"t":"2025-02 Cumulative Update for Microsoft server operating'
    ' system version 21H2 for x64-based Systems (KB5051979)","o":1,"r":2,"d":'
    '"2025-02-12T03:14:07"},{"t":"2025-01 Cumulative Update for .NET Framework 3.5, 4.8 and'
    ' 4.8.1 for Microsoft server operating system version 21H2 for x64 (KB5050187)","o":1,'
    '"r":2,"d":"2025-01-15T02:50:11"},{"t":"Security Intelligence Update for Microsoft'
    ' Defender Antivirus - KB2267602 (Version 1.423.131.0) - Current Channel (Broad)",'
    '"o":1,"r":2,"d":"2025-02-20T07:01:44"},{"t":"Windows Malicious Software Removal Tool'
    ' x64 - v5.131 (KB890830)","o":1,"r":4,"d":"2025-02-12T03:02:50"}],"programs":['
    '{"DisplayName":"Microsoft SQL Server 2019 (64-bit)","view":"native"},{"DisplayName":'
    '"SQL Server 2019 Database Engine Services","DisplayVersion":"15.0.4415.2","Publisher":'
    '"Microsoft Corporation","view":"native"},{"DisplayName":"7-Zip 24.09 (x64)",'
    '"DisplayVersion":"24.09","Publisher":"Igor Pavlov","view":"native"},{"DisplayName":'
    '"Microsoft Visual C++ 2015-2022 Redistributable (x86) - 14.40.33810","DisplayVersion":'
    '"14.40.33810.0","Publisher":"Microsoft Corporation","view":"wow64"},{"DisplayName":'
    '"Notepad++ (32-bit x86)","DisplayVersion":"8.7.1","Publisher":"Notepad++ Team",'
    '"view":"wow64"}],"sql":[{"PatchLevel":"15.0.4415.2","Version":"15.0.2000.5",'
    '"instance":"MSSQLSERVER"}],"exchange":{"MsiProductMajor":15,"MsiProductMinor":2,'
    '"MsiBuildMajor":1748,"MsiBuildMinor":10},"iis":{"MajorVersion":10,"MinorVersion":0},'
    '"dotnet":{"Release":528449,"Version":"4.8.04161"},"errors":{}}')

WINDOWS_11 = (
    '{"patchpilot":1,"os":{"ProductName":"Windows 10 Pro","EditionID":"Professional",'
    '"DisplayVersion":"24H2","ReleaseId":"2009","CurrentBuildNumber":"26100","UBR":7623,'
    '"InstallationType":"Client","CurrentMajorVersionNumber":10,'
    '"CurrentMinorVersionNumber":0,"CurrentVersion":"6.3"},"architecture":"AMD64",'
    '"network":{"Hostname":"PC-0042","Domain":""},"machine":{"MachineGuid":'
    '"b3e1d0c4-77a2-4f0e-8c15-2d9a6e3f1b08"},"ips":"192.168.1.57","qfe":["KB5066131",'
    '"KB5074109"],"history":[{"t":"2026-01 Cumulative Update for Windows 11 Version 24H2 for'
    ' x64-based Systems (KB5074109) (26100.7623)","o":1,"r":2,"d":"2026-01-14T19:02:33"},'
    '{"t":"2025-12 Cumulative Update for Windows 11 Version 24H2 for x64-based Systems'
    ' (KB5072033) (26100.7462)","o":2,"r":2,"d":"2025-12-20T10:00:00"},{"t":"2025-12'
    ' Cumulative Update for Windows 11 Version 24H2 for x64-based Systems (KB5072033)'
    ' (26100.7462)","o":1,"r":2,"d":"2025-12-10T18:40:12"}],"programs":{"DisplayName":'
    '"Microsoft Office Professional Plus 2021 - ja-jp \\u30d7\\u30ed","DisplayVersion":'
    '"16.0.19127.20302","Publisher":"Microsoft Corporation","view":"native"},"sql":[],'
    '"exchange":null,"iis":null,"dotnet":{"Release":533320,"Version":"4.8.09032"},'
    '"errors":{"ips":"Exception calling \\"GetAllNetworkInterfaces\\""}}')


def test_server_2022() -> None:
    found = parse_collected(SERVER_2022, "srv-sql01")
    info = found.windows
    assert (info.product_name, info.family, info.release, info.edition) == (
        "Windows Server 2022 Standard", "Windows Server 2022", "21H2", "Standard")
    assert (info.installation_type, info.build, info.ubr, info.service_pack,
            info.architecture) == ("Server", 20348, 3270, None, "x64")
    # QFE and history together; the Defender definitions count (a KB in its title), the
    # MSRT run that failed (ResultCode 4) does not.
    assert info.kbs == ["KB2267602", "KB5050187", "KB5051979", "KB5052106"]
    assert info.kbs_complete is True
    assert info.components == {"sql-server": "15.0.4415.2", "exchange": "15.2.1748.10",
                               "iis": "10.0", "dotnet-framework": "4.8.04161"}
    assert info.programs == [
        WindowsProgram(name="7-Zip 24.09 (x64)", version="24.09", publisher="Igor Pavlov",
                       arch="x64"),
        WindowsProgram(name="Microsoft SQL Server 2019 (64-bit)", arch="x64"),
        WindowsProgram(name="Microsoft Visual C++ 2015-2022 Redistributable (x86) - "
                            "14.40.33810", version="14.40.33810.0",
                       publisher="Microsoft Corporation", arch="x86"),
        WindowsProgram(name="Notepad++ (32-bit x86)", version="8.7.1",
                       publisher="Notepad++ Team", arch="x86"),
        WindowsProgram(name="SQL Server 2019 Database Engine Services", version="15.0.4415.2",
                       publisher="Microsoft Corporation", arch="x64"),
    ]
    assert found.asset.hostname == "SRV-SQL01"
    assert found.asset.fqdn == "srv-sql01.corp.example.com"
    assert found.asset.machine_id == "5f0c8a3e-2b9d-4c61-9a57-0e4d6b1f7c22"
    assert found.asset.ip_addresses == ["10.20.30.41"]
    assert found.os_version == "10.0.20348"
    assert found.warnings == ()
    inventory = found.inventory("agent")
    assert inventory.schema_ == 2
    assert inventory.complete is True
    assert inventory.packages == []
    assert (inventory.os.id, inventory.os.version_id, inventory.os.pretty_name) == (  # type: ignore[union-attr]
        "windows", "10.0.20348", "Windows Server 2022 Standard")
    assert inventory.collector.name == "agent"
    # The document survives its own JSON round trip (what the agent uploads).
    assert type(inventory).from_json(inventory.to_json()).windows == info


def test_windows_11_reports_itself_as_windows_10() -> None:
    found = parse_collected(WINDOWS_11, "pc-0042")
    info = found.windows
    assert (info.family, info.release, info.edition, info.build, info.ubr) == (
        "Windows 11", "24H2", "Pro", 26100, 7623)
    # KB5072033 was installed, then uninstalled later: not installed.
    assert info.kbs == ["KB5066131", "KB5074109"]
    assert info.programs == [WindowsProgram(
        name="Microsoft Office Professional Plus 2021 - ja-jp \u30d7\u30ed",
        version="16.0.19127.20302", publisher="Microsoft Corporation", arch="x64")]
    assert info.components == {"dotnet-framework": "4.8.09032"}
    # A lone address printed bare; an empty Domain gives no FQDN.
    assert found.asset.ip_addresses == ["192.168.1.57"]
    assert found.asset.fqdn is None
    assert found.warnings == ('pc-0042: could not read ips: Exception calling '
                              '"GetAllNetworkInterfaces"',)
    assert found.inventory("ssh").warnings == list(found.warnings)


def _with(sample: str, **changes: object) -> str:
    doc = orjson.loads(sample)
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = doc
        for part in parents:
            target = target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return orjson.dumps(doc).decode()


_DELETE = object()


def test_several_sql_instances_report_the_least_patched() -> None:
    text = _with(SERVER_2022, sql=[
        {"PatchLevel": "15.0.4415.2", "Version": "15.0.2000.5", "instance": "MSSQLSERVER"},
        {"PatchLevel": "15.0.4385.2", "Version": "15.0.2000.5", "instance": "REPORTING"}])
    found = parse_collected(text, "s")
    assert found.windows.components["sql-server"] == "15.0.4385.2"
    assert found.warnings == ("s: 2 SQL Server instances (MSSQLSERVER 15.0.4415.2, REPORTING "
                              "15.0.4385.2): judged by the least patched, 15.0.4385.2",)


def test_without_qfe_the_kbs_are_incomplete() -> None:
    text = _with(SERVER_2022, qfe=None, errors={"qfe": "Access denied"})
    found = parse_collected(text, "s")
    assert found.windows.kbs == ["KB2267602", "KB5050187", "KB5051979"]
    assert found.windows.kbs_complete is False
    assert found.warnings == ("s: could not read qfe: Access denied",)
    assert found.inventory("agent").complete is False


def test_powershell_5_wrapped_array() -> None:
    text = _with(SERVER_2022, qfe={"value": ["KB5052106"], "Count": 1}, history=[])
    assert parse_collected(text, "s").windows.kbs == ["KB5052106"]


@pytest.mark.parametrize(("text", "message"), [
    (" \r\n", "s: the collection script printed nothing"),
    ("Get-CimInstance : Access denied", "s:1: not the collection script's JSON output"),
    ("[1, 2]", "s: the collection script prints a JSON object"),
    ('{"patchpilot": 2}', "s: patchpilot: 2 is not this collection script's format (1)"),
    ('{"patchpilot": 1}', "s: os: no values of HKLM\\SOFTWARE\\Microsoft\\Windows NT\\"
                          "CurrentVersion"),
    (_with(SERVER_2022, os__ProductName=_DELETE), "s: os.ProductName: missing"),
    (_with(SERVER_2022, os__CurrentBuildNumber=_DELETE), "s: os.CurrentBuildNumber: missing"),
    (_with(SERVER_2022, os__CurrentBuildNumber="20348a"),
     "s: os.CurrentBuildNumber: '20348a' is not a whole number"),
    (_with(SERVER_2022, os__UBR=-1), "s: os.UBR: -1 is not a whole number"),
    (_with(SERVER_2022, os__ProductName="Ubuntu 24.04"),
     "s: os.ProductName: 'Ubuntu 24.04' names no Windows product"),
    (_with(SERVER_2022, os="x"), "s: os: expected an object, got str"),
    (_with(SERVER_2022, qfe=[3.5]), "s: qfe[0]: expected a string, got float"),
    (_with(SERVER_2022, history=[{"t": "x (KB1234567)", "o": "one", "r": 2, "d": "2025"}]),
     "s: history[0].o: 'one' is not a whole number"),
    (_with(SERVER_2022, programs=[{"DisplayName": "X", "view": "arm"}]),
     "s: programs[0].view: 'arm' is neither 'native' nor 'wow64'"),
    (_with(SERVER_2022, exchange={"MsiProductMajor": 15, "MsiProductMinor": 2,
                                  "MsiBuildMajor": "x", "MsiBuildMinor": 10}),
     "s: exchange.MsiBuildMajor: 'x' is not a whole number"),
])
def test_bad_output_names_the_field(text: str, message: str) -> None:
    with pytest.raises(InventoryFormatError) as caught:
        parse_collected(text, "s")
    assert str(caught.value).startswith(message), str(caught.value)


# --- the script and the parser cannot drift apart -----------------------------------------

def test_script_reads_every_registry_key_the_parser_relies_on() -> None:
    assert len(REGISTRY_KEYS) == 9
    for key in REGISTRY_KEYS.values():
        assert f"'{key}'" in COLLECT_SCRIPT, key
    assert "'" + wc.SQL_SERVER + "\\' + $inst[$name] + '\\Setup'" in COLLECT_SCRIPT


def test_script_prints_every_field_the_parser_reads() -> None:
    """Every value name and document field the parser looks up is in the script."""
    names = set(re.findall(r'(?:os|network|machine|dotnet|item|values|doc)\.get\("(\w+)"\)',
                           _parser_source()))
    names |= {"MsiProductMajor", "MsiProductMinor", "MsiBuildMajor", "MsiBuildMinor",
              "MajorVersion", "MinorVersion"}
    assert {"ProductName", "UBR", "CurrentBuildNumber", "InstallationType", "DisplayName",
            "PatchLevel", "Release", "MachineGuid", "qfe", "history"} <= names
    script = compact(COLLECT_SCRIPT)
    for name in names - {"t", "o", "r", "d", "view", "instance", "value", "Count"}:
        assert re.search(rf"'{name}'|\b{name}=", script), name
    for short in ("t=$_.Title", "o=[int]$_.Operation", "r=[int]$_.ResultCode",
                  "d=$_.Date.ToString('s')", "$p.view=", "$setup.instance="):
        assert short in script, short


def _parser_source() -> str:
    import inspect

    return inspect.getsource(wc)


def test_ssh_command_decodes_to_the_script_and_fits_cmd() -> None:
    command = ssh_command()
    head, encoded = command.rsplit(" ", 1)
    assert head == "powershell -NoProfile -NonInteractive -EncodedCommand"
    assert base64.b64decode(encoded).decode("utf-16-le") == compact(COLLECT_SCRIPT)
    # OpenSSH-on-Windows hands the command to cmd.exe, whose lines end at 8191 characters.
    assert len(command) < CMD_LINE_LIMIT == 8191


def test_compact_keeps_strings_and_drops_blanks() -> None:
    assert compact("  $a = 'x = y, z'\n\n  if ($a) { $b = @(1, 2) }\n") == (
        "$a='x = y, z'\nif ($a){$b=@(1,2)}")


def test_stdin_script_runs_as_one_statement() -> None:
    text = stdin_script()
    assert text == "& {\n" + compact(COLLECT_SCRIPT) + "\n}\n\n"
    assert wc.LOCAL_ARGV == ("powershell.exe", "-NoProfile", "-NonInteractive",
                             "-ExecutionPolicy", "Bypass", "-Command", "-")
