"""Collecting a live Windows host: the PowerShell script, how it is run, and its parser.

As for Linux (``inventory.host.commands`` beside the pure parsers of ``inventory.sources``),
the command text is kept apart from the parser: ``COLLECT_SCRIPT`` is one read-only
Windows PowerShell 5.1 script that prints ONE JSON object, and ``parse_collected`` turns
that text into the inventory's ``WindowsInfo`` and the asset's identity.  Every transport
-- the agent on the host (``transports.local``), OpenSSH-on-Windows (``transports.ssh``)
and WinRM (``transports.winrm``) -- runs the same script through ``collect_windows``, so
what is collected cannot drift between them.

Why the registry is read through .NET (``RegistryKey.OpenBaseKey(..., Registry64)``) and
not through the ``HKLM:`` drive: a 32-bit PowerShell (the SysWOW64 one an old 32-bit
agent or scheduler starts) sees ``HKLM:\\SOFTWARE`` redirected to WOW6432Node, and would
report the 32-bit programs twice and the 64-bit ones not at all.

Why the output is escaped to ASCII: over SSH and WinRM PowerShell writes in the console's
OEM code page (437, 850, 932, ...), which cannot hold every program name; ``\\uXXXX``
escapes survive any code page.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import (
    AssetIdentity,
    Collector,
    Inventory,
    OsInfo,
    WindowsInfo,
    WindowsProgram,
)
from patchpilot.inventory.windows.facts import (
    clean_product_name,
    kb_number,
    normalise_product,
    release_of_build,
    sorted_kbs,
)

# --- what is read, and where from ----------------------------------------------------------

CURRENT_VERSION = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion"
TCPIP_PARAMETERS = r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters"
CRYPTOGRAPHY = r"SOFTWARE\Microsoft\Cryptography"
UNINSTALL_64 = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall"
UNINSTALL_32 = r"SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall"
SQL_INSTANCES = r"SOFTWARE\Microsoft\Microsoft SQL Server\Instance Names\SQL"
SQL_SERVER = r"SOFTWARE\Microsoft\Microsoft SQL Server"  # + \<instance id>\Setup
EXCHANGE_SETUP = r"SOFTWARE\Microsoft\ExchangeServer\v15\Setup"
IIS = r"SOFTWARE\Microsoft\InetStp"
DOTNET_FRAMEWORK = r"SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full"

REGISTRY_KEYS: Mapping[str, str] = {
    "os": CURRENT_VERSION, "network": TCPIP_PARAMETERS, "machine": CRYPTOGRAPHY,
    "programs (64-bit view)": UNINSTALL_64, "programs (32-bit view)": UNINSTALL_32,
    "sql": SQL_INSTANCES, "exchange": EXCHANGE_SETUP, "iis": IIS,
    "dotnet": DOTNET_FRAMEWORK,
}
"""Every HKLM key ``parse_collected`` relies on (the script must read each: a test says so)."""

# The one script.  Read only: registry reads, one CIM query, the Windows Update agent's
# history (a COM query, no search, no download).  Each part that can fail on its own
# (CIM, the update service, a registry key an administrator locked) reports its error in
# "errors" instead of ending the script, so one broken part does not cost the rest.
COLLECT_SCRIPT = r"""
$ErrorActionPreference = 'Stop'
$errs = [ordered]@{}
$hklm = [Microsoft.Win32.RegistryKey]::OpenBaseKey('LocalMachine', 'Registry64')
function Get-Values($path, $names) {
  try { $key = $hklm.OpenSubKey($path) } catch { $errs[$path] = "$_"; return $null }
  if ($null -eq $key) { return $null }
  if ($null -eq $names) { $names = $key.GetValueNames() }
  $out = [ordered]@{}
  foreach ($n in $names) { $v = $key.GetValue($n); if ($null -ne $v) { $out[$n] = $v } }
  $key.Close()
  $out
}
$os = Get-Values 'SOFTWARE\Microsoft\Windows NT\CurrentVersion' @('ProductName', 'EditionID',
  'DisplayVersion', 'ReleaseId', 'CurrentBuildNumber', 'UBR', 'InstallationType',
  'CSDVersion', 'CurrentMajorVersionNumber', 'CurrentMinorVersionNumber', 'CurrentVersion')
$net = Get-Values 'SYSTEM\CurrentControlSet\Services\Tcpip\Parameters' @('Hostname', 'Domain')
$machine = Get-Values 'SOFTWARE\Microsoft\Cryptography' @('MachineGuid')
$arch = $env:PROCESSOR_ARCHITEW6432
if (-not $arch) { $arch = $env:PROCESSOR_ARCHITECTURE }
$ips = @()
try {
  $ips = @([Net.NetworkInformation.NetworkInterface]::GetAllNetworkInterfaces() |
    ? { $_.OperationalStatus -eq 'Up' } |
    % { $_.GetIPProperties().UnicastAddresses } |
    % { $_.Address.IPAddressToString })
} catch { $errs.ips = "$_" }
$qfe = $null
try {
  $qfe = @(Get-CimInstance Win32_QuickFixEngineering | % { $_.HotFixID })
} catch { $errs.qfe = "$_" }
$hist = $null
try {
  $wu = (New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher()
  $count = $wu.GetTotalHistoryCount()
  $hist = @()
  if ($count -gt 0) {
    $hist = @($wu.QueryHistory(0, $count) | ? { $_.Title -match 'KB\d' } |
      % { @{ t = $_.Title; o = [int]$_.Operation; r = [int]$_.ResultCode;
                          d = $_.Date.ToString('s') } })
  }
} catch { $errs.history = "$_" }
$progs = @()
foreach ($view in @(@('SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall', 'native'),
    @('SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall', 'wow64'))) {
  $root = $hklm.OpenSubKey($view[0])
  if ($null -eq $root) { continue }
  foreach ($sub in $root.GetSubKeyNames()) {
    $p = Get-Values ($view[0] + '\' + $sub) @('DisplayName', 'DisplayVersion', 'Publisher',
      'ParentKeyName')
    if ($p -and $p.DisplayName -and -not $p.ParentKeyName) { $p.view = $view[1]; $progs += $p }
  }
  $root.Close()
}
$sql = @()
$inst = Get-Values 'SOFTWARE\Microsoft\Microsoft SQL Server\Instance Names\SQL' $null
if ($inst) {
  foreach ($name in @($inst.Keys)) {
    $key = 'SOFTWARE\Microsoft\Microsoft SQL Server\' + $inst[$name] + '\Setup'
    $setup = Get-Values $key @('PatchLevel', 'Version')
    if ($setup) { $setup.instance = $name; $sql += $setup }
  }
}
$doc = [ordered]@{
  patchpilot = 1; os = $os; architecture = $arch; network = $net; machine = $machine
  ips = $ips; qfe = $qfe; history = $hist; programs = $progs; sql = $sql
  exchange = Get-Values 'SOFTWARE\Microsoft\ExchangeServer\v15\Setup' @('MsiProductMajor',
    'MsiProductMinor', 'MsiBuildMajor', 'MsiBuildMinor')
  iis = Get-Values 'SOFTWARE\Microsoft\InetStp' @('MajorVersion', 'MinorVersion')
  dotnet = Get-Values 'SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full' @('Release', 'Version')
  errors = $errs
}
$json = $doc | ConvertTo-Json -Depth 5 -Compress
[regex]::Replace($json, '[^\x00-\x7f]', [Text.RegularExpressions.MatchEvaluator]{
  param($m) '\u{0:x4}' -f [int][char]$m.Value })
"""
"""Prints one JSON object: the ``CurrentVersion`` values, architecture, QFE list, update
history, programs of both Uninstall views, SQL Server / Exchange / IIS / .NET versions,
identity (host name, domain, MachineGuid, addresses) and per-part errors."""

SCRIPT_FORMAT = 1
"""The ``patchpilot`` field the script prints: a parser meeting a newer one says so."""

POWERSHELL_OPTIONS = ("-NoProfile", "-NonInteractive")


# Blanks around these are noise to PowerShell (outside quotes): "$a = 1" is "$a=1".
_PUNCTUATION = re.compile(r"[ \t]*([=;,{}|])[ \t]*")


def compact(script: str) -> str:
    """The script without indentation, blank lines and blanks around punctuation outside
    its single-quoted strings: a third shorter, same meaning.

    The length matters: over SSH the script travels base64-encoded on a cmd.exe command
    line (``CMD_LINE_LIMIT``).  The script has no here-string and no double-quoted string
    but ``"$_"``, so splitting at single quotes finds every string.
    """
    parts = script.split("'")
    code = [_PUNCTUATION.sub(r"\1", part) if index % 2 == 0 else part
            for index, part in enumerate(parts)]
    return "\n".join(line.strip() for line in "'".join(code).splitlines() if line.strip())


def encoded_command(script: str) -> str:
    """``-EncodedCommand``'s argument: the script as base64 of UTF-16LE, as powershell.exe
    wants it; no quoting problem whatever shell (cmd.exe, PowerShell) sshd starts."""
    return base64.b64encode(compact(script).encode("utf-16-le")).decode("ascii")


def ssh_command(script: str = COLLECT_SCRIPT) -> str:
    """The command line an OpenSSH-on-Windows server runs (through cmd.exe by default)."""
    return " ".join(("powershell", *POWERSHELL_OPTIONS, "-EncodedCommand",
                     encoded_command(script)))


CMD_LINE_LIMIT = 8191
"""cmd.exe's longest command line: OpenSSH-on-Windows runs ``cmd.exe /c <command>``, so
``ssh_command()`` must stay below it (a test checks)."""

LOCAL_ARGV = ("powershell.exe", *POWERSHELL_OPTIONS, "-ExecutionPolicy", "Bypass",
              "-Command", "-")
"""How the agent runs the script on its own host: the script on standard input (no
command-line length limit, nothing in the process list)."""


def stdin_script(script: str = COLLECT_SCRIPT) -> str:
    """The standard input for ``LOCAL_ARGV``.

    ``-Command -`` reads standard input as if typed at a prompt, statement by statement:
    a multi-line statement not followed by an empty line is never run, and
    ``$ErrorActionPreference`` set on one line is ignored by the next (PowerShell issues
    #3223 and #21808).  So the script goes in as ONE statement, ``& { ... }``, followed by
    two line ends -- the documented way to have it run whole.
    """
    return "& {\n" + compact(script) + "\n}\n\n"


# --- running it ----------------------------------------------------------------------------

def last_words(stderr: bytes | str | None, limit: int = 400) -> str:
    """The last non-empty lines of a command's error output, at most ``limit`` characters
    (PowerShell's error records run to many lines); "no message" when there is none."""
    text = stderr.decode("utf-8", errors="replace") if isinstance(stderr, bytes) else (
        stderr or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    joined = " ".join(lines[-3:])
    return (joined[-limit:] if len(joined) > limit else joined) or "no message"


class PowerShellHost(Protocol):
    """What collecting a Windows host needs of a transport: run one script, get its
    standard output.  Implementations raise their own error (naming the host) when the
    script cannot be run or fails; its output is judged by ``parse_collected``."""

    async def run_script(self, script: str, timeout: float) -> str:
        """The standard output of ``script`` run by Windows PowerShell."""
        ...


SCRIPT_TIMEOUT = 300.0
"""Seconds the script may take on the local host: the update history of a long-lived
server holds thousands of entries, and the COM query reads them all."""


async def collect_windows(host: PowerShellHost, *, source: str, collector: str,
                          timeout: float = SCRIPT_TIMEOUT) -> Inventory:
    """The schema 2 Inventory of a Windows host: ``COLLECT_SCRIPT`` run by ``host``,
    parsed by ``parse_collected``.  Raises InventoryFormatError naming ``source`` when
    the output is not what the script prints, and whatever ``host`` raises."""
    text = await host.run_script(COLLECT_SCRIPT, timeout)
    return parse_collected(text, source).inventory(collector)


# --- the parser ----------------------------------------------------------------------------

# Update history codes (IUpdateHistoryEntry): Operation 1 install, 2 uninstall; ResultCode
# 2 succeeded, 3 succeeded with errors (the update itself went in).
_INSTALL, _UNINSTALL = 1, 2
_SUCCEEDED = (2, 3)
_ARCHITECTURES = {"amd64": "x64", "x86": "x86", "arm64": "arm64", "ia64": "ia64", "arm": "arm"}


@dataclass(frozen=True, slots=True)
class CollectedWindows:
    """What ``COLLECT_SCRIPT`` told about one host: its identity, its Windows facts and
    what could not be read (warnings)."""

    asset: AssetIdentity
    windows: WindowsInfo
    os_version: str | None = None  # "10.0.20348"
    warnings: tuple[str, ...] = field(default=())

    def inventory(self, collector: str) -> Inventory:
        """The schema 2 Inventory (no packages: Windows is judged by build and KBs).  It is
        complete only when the OS facts and the QFE list were both read."""
        info = self.windows
        os = OsInfo(id="windows", version_id=self.os_version,
                    pretty_name=info.product_name or info.family) if info.family else None
        complete = info.family is not None and info.build is not None and info.kbs_complete
        return Inventory(schema=2, asset=self.asset, os=os, windows=info,
                         collector=Collector(name=collector), complete=complete,
                         warnings=list(self.warnings))


def _object(value: Any, where: str, source: str) -> dict[str, Any]:
    """``value`` when it is a JSON object (None/absent: an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InventoryFormatError(source, f"{where}: expected an object, got "
                                          f"{type(value).__name__}")
    return value


def _list(value: Any) -> list[Any] | None:
    """``value`` when it is a JSON list, a lone item as a list of it (each item is then
    checked by its reader); None when absent."""
    if value is None:
        return None
    # Windows PowerShell 5.1 prints an array that went through the pipeline wrapped in an
    # extended-type object ({"value": [...], "Count": n}) on some hosts.
    if isinstance(value, dict) and set(value) == {"value", "Count"}:
        value = value["value"]
    return value if isinstance(value, list) else [value]


def _text(value: Any, where: str, source: str) -> str | None:
    """A registry string value, stripped; None when absent or empty."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InventoryFormatError(source, f"{where}: expected a string, got "
                                           f"{type(value).__name__}")
    text = str(value).strip()
    return text or None


def _number(value: Any, where: str, source: str) -> int | None:
    """A registry number (DWORD, or a string of digits such as CurrentBuildNumber)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise InventoryFormatError(source, f"{where}: {value!r} is not a whole number")


def _service_pack(csd: str | None) -> int | None:
    """1 of ``Service Pack 1`` (CSDVersion); None when absent or unreadable."""
    if not csd:
        return None
    last = csd.split()[-1]
    return int(last) if last.isdigit() else None


def _history_kbs(entries: list[Any], source: str) -> set[str]:
    """The KBs the update history shows installed: a successful installation not
    followed (by date) by a successful uninstallation."""
    latest: dict[str, tuple[str, int]] = {}
    for index, entry in enumerate(entries):
        where = f"history[{index}]"
        item = _object(entry, where, source)
        title = _text(item.get("t"), f"{where}.t", source) or ""
        operation = _number(item.get("o"), f"{where}.o", source)
        result = _number(item.get("r"), f"{where}.r", source)
        when = _text(item.get("d"), f"{where}.d", source) or ""
        if result not in _SUCCEEDED or operation not in (_INSTALL, _UNINSTALL):
            continue
        # The KB id is in the title: "2026-03 Cumulative Update ... (KB5078766)".
        for word in title.replace("(", " ").replace(")", " ").split():
            kb = kb_number(word) if word.upper().startswith("KB") else None
            if kb and (kb not in latest or latest[kb][0] <= when):
                latest[kb] = (when, operation)
    return {kb for kb, (_, operation) in latest.items() if operation == _INSTALL}


def _programs(entries: list[Any], arch: str | None, source: str) -> list[WindowsProgram]:
    """The Uninstall entries as programs, each (name, version, arch) once, sorted."""
    programs: dict[tuple[str, str | None, str | None], WindowsProgram] = {}
    for index, entry in enumerate(entries):
        where = f"programs[{index}]"
        item = _object(entry, where, source)
        name = _text(item.get("DisplayName"), f"{where}.DisplayName", source)
        if name is None:
            continue
        view = item.get("view")
        if view not in ("native", "wow64"):
            raise InventoryFormatError(source, f"{where}.view: {view!r} is neither "
                                               "'native' nor 'wow64'")
        program = WindowsProgram(
            name=name, version=_text(item.get("DisplayVersion"), f"{where}.DisplayVersion",
                                     source),
            publisher=_text(item.get("Publisher"), f"{where}.Publisher", source),
            # WOW6432Node holds the 32-bit programs of a 64-bit Windows; the native view
            # holds programs of the OS's own architecture.
            arch="x86" if view == "wow64" else arch)
        programs.setdefault((program.name, program.version, program.arch), program)
    return sorted(programs.values(), key=lambda p: (p.name.lower(), p.version or "",
                                                    p.arch or ""))


def _dotted(values: dict[str, Any], names: tuple[str, ...], where: str,
            source: str) -> str | None:
    """``15.2.1544.4`` from Exchange's four numbers (None unless all are there)."""
    numbers = [_number(values.get(n), f"{where}.{n}", source) for n in names]
    if any(n is None for n in numbers):
        return None
    return ".".join(str(n) for n in numbers)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def _components(doc: dict[str, Any], source: str, warnings: list[str]) -> dict[str, str]:
    """SQL Server, Exchange, IIS and .NET Framework versions, where installed.

    A host with several SQL Server instances reports the least patched one as
    ``sql-server`` (what a vulnerability is judged by) and names them all in a warning.
    """
    found: dict[str, str] = {}
    instances: dict[str, str] = {}
    for index, entry in enumerate(_list(doc.get("sql")) or []):
        item = _object(entry, f"sql[{index}]", source)
        name = _text(item.get("instance"), f"sql[{index}].instance", source) or str(index)
        # PatchLevel carries the cumulative update ("15.0.4415.2"); Version is the
        # release's base ("15.0.2000.5") and is the fallback.
        version = (_text(item.get("PatchLevel"), f"sql[{index}].PatchLevel", source)
                   or _text(item.get("Version"), f"sql[{index}].Version", source))
        if version:
            instances[name] = version
    if instances:
        found["sql-server"] = min(instances.values(), key=_version_key)
        if len(instances) > 1:
            # One key per component is what the matcher reads (knowledge.windows); the
            # others are named, so a reader knows they exist.
            warnings.append(f"{source}: {len(instances)} SQL Server instances ("
                            + ", ".join(f"{n} {v}" for n, v in sorted(instances.items()))
                            + f"): judged by the least patched, {found['sql-server']}")
    exchange = _dotted(_object(doc.get("exchange"), "exchange", source),
                       ("MsiProductMajor", "MsiProductMinor", "MsiBuildMajor", "MsiBuildMinor"),
                       "exchange", source)
    if exchange:
        found["exchange"] = exchange
    iis = _dotted(_object(doc.get("iis"), "iis", source), ("MajorVersion", "MinorVersion"),
                  "iis", source)
    if iis:
        found["iis"] = iis
    dotnet = _object(doc.get("dotnet"), "dotnet", source)
    version = _text(dotnet.get("Version"), "dotnet.Version", source)
    if version:
        found["dotnet-framework"] = version
    elif dotnet.get("Release") is not None:
        warnings.append(f"{source}: .NET Framework 4 release "
                        f"{_number(dotnet['Release'], 'dotnet.Release', source)} without a "
                        "Version value: not reported")
    return found


def _addresses(values: list[Any] | None, source: str) -> list[str]:
    """The host's addresses, without loopback and link-local ones (as on Linux)."""
    found: list[str] = []
    for index, value in enumerate(values or []):
        text = _text(value, f"ips[{index}]", source)
        try:
            address = ipaddress.ip_address((text or "").split("%", 1)[0])
        except ValueError:
            continue
        if not (address.is_loopback or address.is_link_local) and str(address) not in found:
            found.append(str(address))
    return found


def parse_collected(text: str, source: str) -> CollectedWindows:
    """What ``COLLECT_SCRIPT`` printed, as the host's identity and ``WindowsInfo``.

    The family, release and edition come from ``normalise_product`` on ProductName and
    the build (a Windows 11 registry still says "Windows 10 ..."); the release from the
    build table, else DisplayVersion, else ReleaseId.  KBs are the QFE list's and those
    the update history shows installed (and not uninstalled since).  A part the script
    could not read (its ``errors``) becomes a warning; without the QFE list the KBs are
    marked incomplete.

    Raises InventoryFormatError naming ``source`` and the field when the text is not one
    JSON object of this script, or a field has the wrong type.
    """
    text = text.strip().lstrip("\ufeff")
    if not text:
        raise InventoryFormatError(source, "the collection script printed nothing")
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InventoryFormatError(source, f"not the collection script's JSON output "
                                           f"(column {exc.colno}: {exc.msg})",
                                   line=exc.lineno) from exc
    if not isinstance(doc, dict):
        raise InventoryFormatError(source, "the collection script prints a JSON object")
    if doc.get("patchpilot") != SCRIPT_FORMAT:
        raise InventoryFormatError(source, f"patchpilot: {doc.get('patchpilot')!r} is not "
                                           f"this collection script's format ({SCRIPT_FORMAT})")
    warnings = [f"{source}: could not read {part}: {error}" for part, error in
                _object(doc.get("errors"), "errors", source).items()]
    os = _object(doc.get("os"), "os", source)
    if not os:
        raise InventoryFormatError(source, f"os: no values of HKLM\\{CURRENT_VERSION}")
    product = _text(os.get("ProductName"), "os.ProductName", source)
    if product is None:
        raise InventoryFormatError(source, "os.ProductName: missing")
    build = _number(os.get("CurrentBuildNumber"), "os.CurrentBuildNumber", source)
    if build is None:
        raise InventoryFormatError(source, "os.CurrentBuildNumber: missing")
    ubr = _number(os.get("UBR"), "os.UBR", source)
    family, release, edition = normalise_product(product, build)
    if family is None:
        raise InventoryFormatError(source, f"os.ProductName: {product!r} names no Windows "
                                           "product")
    release = (release_of_build(build) or _text(os.get("DisplayVersion"),
                                                 "os.DisplayVersion", source)
               or _text(os.get("ReleaseId"), "os.ReleaseId", source))
    major = _number(os.get("CurrentMajorVersionNumber"), "os.CurrentMajorVersionNumber", source)
    minor = _number(os.get("CurrentMinorVersionNumber"), "os.CurrentMinorVersionNumber", source)
    base = (f"{major}.{minor}" if major is not None and minor is not None
            else _text(os.get("CurrentVersion"), "os.CurrentVersion", source))
    raw_arch = _text(doc.get("architecture"), "architecture", source)
    arch = _ARCHITECTURES.get((raw_arch or "").lower())
    if raw_arch and arch is None:
        warnings.append(f"{source}: unknown processor architecture {raw_arch!r}")
    qfe = _list(doc.get("qfe"))
    history = _list(doc.get("history"))
    kbs = {kb for index, hotfix in enumerate(qfe or [])
           if (kb := kb_number(_text(hotfix, f"qfe[{index}]", source) or ""))}
    kbs |= _history_kbs(history or [], source)
    network = _object(doc.get("network"), "network", source)
    hostname = _text(network.get("Hostname"), "network.Hostname", source)
    domain = _text(network.get("Domain"), "network.Domain", source)
    machine = _object(doc.get("machine"), "machine", source)
    info = WindowsInfo(
        product_name=clean_product_name(product), family=family, release=release,
        edition=edition or _text(os.get("EditionID"), "os.EditionID", source),
        installation_type=_text(os.get("InstallationType"), "os.InstallationType", source),
        build=build, ubr=ubr,
        service_pack=_service_pack(_text(os.get("CSDVersion"), "os.CSDVersion", source)),
        architecture=arch, kbs=list(sorted_kbs(kbs)), kbs_complete=qfe is not None,
        programs=_programs(_list(doc.get("programs")) or [], arch, source),
        components=_components(doc, source, warnings))
    asset = AssetIdentity(
        hostname=hostname, fqdn=f"{hostname}.{domain}".lower() if hostname and domain else None,
        machine_id=_text(machine.get("MachineGuid"), "machine.MachineGuid", source),
        ip_addresses=_addresses(_list(doc.get("ips")), source))
    return CollectedWindows(asset=asset, windows=info,
                            os_version=f"{base}.{build}" if base else None,
                            warnings=tuple(warnings))

