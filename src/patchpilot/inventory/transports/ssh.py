"""Agentless inventory over SSH (``patchpilot scan ssh user@host[:port] …``).

Like ``transports.local`` this module only fetches: ``SshHost`` is a ``collect.Host``
whose reads are remote commands, and ``inventory.collect`` -- the same routine as for the
local machine -- decides what to read and parses it.  Every read runs under ``nice`` and
``ionice`` (and ``sudo -n`` when asked); many files are read in one command.
Many hosts are scanned at once (asyncssh, one connection per host, at most
``max_concurrent`` at a time); each host ends in one ``HostStatus``, so one unreachable or
slow host never stops the others.

A Windows host running OpenSSH (a target marked ``os=windows``, or one where the probe
fails, ``uname`` fails and ``cmd /c ver`` names Windows) is collected with the one Windows
PowerShell script of ``inventory.windows.collect`` instead, run as ``powershell
-EncodedCommand``; the same limits, host key checks and per-host status apply.

A network device (a target marked ``platform=cisco_ios``, any platform of ntc-templates'
index that ``inventory.network.platforms`` names a command for) has no shell: nothing is
probed and nothing runs under sudo; its one identifying command (``show version``, ``get
system status``, …) is run as it is and read by ``inventory.network.show_version``.

Host keys are checked against an OpenSSH known_hosts file: an unknown key is refused
unless ``trust_new_hosts`` (trust on first use, the key is then recorded), and a changed
key is always refused.  Secrets never leave this module: a password is only handed to
asyncssh, and keys are named by path.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import shlex
import socket
import time
import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.utils import CryptographyDeprecationWarning

# asyncssh still names DSA's classes when imported, which cryptography 46+ warns about on
# every command's stderr; PatchPilot never offers or accepts DSA keys.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="DSA is deprecated",
                            category=CryptographyDeprecationWarning)
    import asyncssh

from patchpilot.config import DEFAULT_KNOWN_HOSTS, load_settings
from patchpilot.errors import InvalidInput, InventoryFormatError, PatchPilotError
from patchpilot.inventory.collect import CollectOptions, Host, collect
from patchpilot.inventory.host import commands as host_commands
from patchpilot.inventory.host.commands import script_name
from patchpilot.inventory.host.files import new_mark, parse_marked
from patchpilot.inventory.model import Inventory
from patchpilot.inventory.network.platforms import VERSION_COMMANDS, version_command
from patchpilot.inventory.network.show_version import show_version_inventory
from patchpilot.inventory.transports import commands
from patchpilot.inventory.windows.collect import collect_windows, last_words, ssh_command

DEFAULT_COMMAND_TIMEOUT = 60.0
DEFAULT_HOST_TIMEOUT = 300.0
DEFAULT_MAX_CONCURRENT = 10
_CLOSE_WAIT = 5.0

_TARGET = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\s\[\]@]+))(?::(?P<port>\d+))?$")


class SshOptionsError(InvalidInput):
    """A target, a targets file, an identity or a known_hosts file that cannot be used."""


class HostStatus(StrEnum):
    """How the scan of one host ended."""

    scanned = "scanned"
    unreachable = "unreachable"  # no TCP connection or the SSH handshake broke off
    auth_failed = "auth failed"  # the server refused every key / the password
    host_key_refused = "host key refused"  # unknown (without --trust-new-hosts) or changed
    timed_out = "timed out"  # a command, the connection or the whole host took too long
    failed = "failed"  # connected, but a read failed (sudo wants a password, bad database)


TARGET_OS = ("linux", "windows")
"""What ``os=`` may say of a target; without it the transport tells by itself."""


@dataclass(frozen=True, slots=True)
class SshTarget:
    """One host to scan: ``[user@]host[:port]`` (IPv6 as ``[::1]:22``), maybe followed by
    ``os=windows`` (collect it as a Windows host) or ``os=linux`` (never ask), or by
    ``platform=cisco_ios`` (a network device: run its ``show version``)."""

    host: str
    port: int = 22
    user: str | None = None
    os: str | None = None  # "windows", "linux"; None: detected when the probe fails
    # An ntc-templates platform ("cisco_ios", "fortinet"): a network device, no shell.
    platform: str | None = None

    @classmethod
    def parse(cls, text: str, where: str = "target") -> SshTarget:
        """The target ``text`` names; SshOptionsError (naming ``where``) when malformed."""
        head, *options = text.split() or [""]
        found = _TARGET.match(head)
        if found is None:
            raise SshOptionsError(f"{where}: {text!r} is not [user@]host[:port]")
        port = int(found["port"]) if found["port"] else 22
        if not 0 < port < 65536:
            raise SshOptionsError(f"{where}: port {port} of {text!r} is out of range")
        os_name: str | None = None
        platform: str | None = None
        for option in options:
            key, _, value = option.partition("=")
            if key == "platform":
                if version_command(value) is None:
                    raise SshOptionsError(
                        f"{where}: {text!r}: no identifying command is known for platform "
                        f"{value!r} (known: {', '.join(sorted(VERSION_COMMANDS))})")
                platform = value
            elif key == "os" and value.lower() in TARGET_OS:
                os_name = value.lower()
            else:
                raise SshOptionsError(f"{where}: {text!r}: {option!r} is not an option "
                                      "(os=windows, os=linux or platform=<ntc-templates "
                                      "platform>)")
        if platform is not None and os_name is not None:
            raise SshOptionsError(f"{where}: {text!r}: a network device (platform=) has no "
                                  "os= of its own")
        return cls(host=found["v6"] or found["host"], port=port, user=found["user"],
                   os=os_name, platform=platform)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return (f"{user}{host}" + (f":{self.port}" if self.port != 22 else "")
                + (f" os={self.os}" if self.os else "")
                + (f" platform={self.platform}" if self.platform else ""))

    @property
    def known_hosts_name(self) -> str:
        """The host as a known_hosts line names it: ``host`` or ``[host]:port``."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def read_targets_file(path: Path) -> list[SshTarget]:
    """The targets of a file: one per line; blank lines and ``#`` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SshOptionsError(f"{path}: cannot read the targets file: {exc.strerror}") from exc
    targets: list[SshTarget] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            targets.append(SshTarget.parse(line, f"{path}:{number}"))
    return targets


@dataclass(frozen=True, slots=True)
class SshOptions:
    """How to reach and read the targets.

    ``identities`` are private key files (never their contents in a message);
    ``use_agent`` asks the ssh-agent of ``$SSH_AUTH_SOCK`` when set; ``password`` is
    kept out of ``repr`` so that it cannot reach a log or a traceback.
    """

    identities: tuple[Path, ...] = ()
    use_agent: bool = True
    password: str | None = field(default=None, repr=False)
    known_hosts: Path = DEFAULT_KNOWN_HOSTS
    trust_new_hosts: bool = False
    sudo: bool = False
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT
    host_timeout: float = DEFAULT_HOST_TIMEOUT
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    python: bool = True  # also read the METADATA headers of the system site-packages


@dataclass(frozen=True, slots=True)
class HostResult:
    """The outcome of one target: its status, its inventory when scanned, else the error.

    ``error`` does not repeat the target (a reader shows ``target: error``).
    """

    target: SshTarget
    status: HostStatus
    inventory: Inventory | None = None
    error: str | None = None
    seconds: float = 0.0


class SessionGauge:
    """Counts the SSH sessions open at once and the most ever open together.

    The ``--max-concurrent`` limit is a promise to the network and the targets; the gauge
    lets a test and the benchmark check it is kept.
    """

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0

    @contextmanager
    def session(self) -> Iterator[None]:
        """Count one session for the duration of the ``with`` block."""
        self.current += 1
        self.peak = max(self.peak, self.current)
        try:
            yield
        finally:
            self.current -= 1


# --- failures inside one host's scan (each becomes a HostStatus) ---------------------------

class HostFailed(PatchPilotError):
    """Ends one host's scan with ``status`` and a message for the user (never raised out
    of ``scan_hosts``: each becomes a HostResult)."""

    def __init__(self, status: HostStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- host keys -----------------------------------------------------------------------------

def _load_known_hosts(path: Path) -> asyncssh.SSHKnownHosts:
    """The known_hosts file (empty when it does not exist yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise SshOptionsError(f"{path}: cannot read known_hosts: {exc.strerror}") from exc
    try:
        return asyncssh.import_known_hosts(text)
    except (ValueError, asyncssh.KeyImportError) as exc:
        raise SshOptionsError(f"{path}: not a known_hosts file: {exc}") from exc


def _key_line(name: str, key: asyncssh.SSHKey) -> str:
    """A known_hosts line for ``key`` (without the key's comment: it may name a person)."""
    algorithm, data = key.export_public_key("openssh").decode().split()[:2]
    return f"{name} {algorithm} {data}\n"


class _HostKeyCheck:
    """Judges the key a server presents against known_hosts, remembering why it refused.

    asyncssh accepts a key listed for the host itself and asks ``judge`` about any other;
    ``judge`` tells an unknown host (no line for it) from a changed key (lines for it, none
    matching), which OpenSSH also treats differently: only the first may be trusted.
    """

    def __init__(self, target: SshTarget, known: asyncssh.SSHKnownHosts, path: Path,
                 trust_new: bool) -> None:
        self.target, self.known, self.path, self.trust_new = target, known, path, trust_new
        self.refusal: str | None = None
        self.new_key: asyncssh.SSHKey | None = None

    def judge(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        """Whether to accept ``key`` for the host (asyncssh then checks the server holds it)."""
        trusted = asyncssh.match_known_hosts(self.known, host, addr, port)[0]
        where = self.target.known_hosts_name
        fingerprint = key.get_fingerprint("sha256")
        algorithm = key.get_algorithm()
        if trusted:
            self.refusal = (
                f"the host key of {where} has CHANGED: it is now {algorithm} {fingerprint}, "
                f"which does not match the key recorded in {self.path} (a reinstalled "
                "host, or someone intercepting the connection). If you have confirmed the "
                f"new key with the host's administrator, remove the old one with "
                f"`ssh-keygen -f {shlex.quote(str(self.path))} -R {shlex.quote(where)}` "
                "and scan again with --trust-new-hosts.")
            return False
        if not self.trust_new:
            self.refusal = (
                f"the host key of {where} is unknown: {algorithm} {fingerprint} is not in "
                f"{self.path}. Check the fingerprint with the host's administrator, then "
                "scan again with --trust-new-hosts (records the key) or add it yourself: "
                f"`ssh-keyscan -p {self.target.port} {shlex.quote(self.target.host)} >> "
                f"{shlex.quote(str(self.path))}`.")
            return False
        self.new_key = key  # recorded only once the connection (and its auth) succeeded
        return True

    def record_new_key(self) -> None:
        """Append the key trusted on first use to known_hosts (creating ~/.ssh 0700)."""
        if self.new_key is None:
            return
        # Another target may have recorded the same host meanwhile (repeated targets): read
        # again.  No await between reading and writing, so no other scan interleaves.
        current = _load_known_hosts(self.path)
        if self.new_key in asyncssh.match_known_hosts(
                current, self.target.host, self.target.host, self.target.port)[0]:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(_key_line(self.target.known_hosts_name, self.new_key))


class _Client(asyncssh.SSHClient):
    """An asyncssh client whose unknown host keys are judged by a ``_HostKeyCheck``."""

    def __init__(self, check: _HostKeyCheck) -> None:
        self._check = check

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        """Delegate to the host key check (see ``_HostKeyCheck.judge``)."""
        return self._check.judge(host, addr, port, key)


# --- pure parsers of the transport's own outputs -------------------------------------------

def is_windows_ver(text: str) -> bool:
    """Whether ``cmd /c ver`` printed a Windows version ("Microsoft Windows [Version
    10.0.20348.3270]"; the words are translated on some systems, the bracket is not)."""
    return bool(re.search(r"\bWindows\b.*\[\S+ \d+\.\d+\.\d+", text))


def parse_probe(text: str) -> dict[str, str]:
    """The ``key=value`` lines ``commands.PROBE`` prints."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found


def _batches(paths: Sequence[str]) -> list[list[str]]:
    """``paths`` cut into groups whose command line stays under ``commands.BATCH_BYTES``."""
    batches: list[list[str]] = [[]]
    size = 0
    for path in paths:
        cost = len(path.encode()) + 3  # quotes and a space
        if batches[-1] and size + cost > commands.BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += cost
    return batches


# --- one host ------------------------------------------------------------------------------

def _as_bytes(output: bytes | str | None) -> bytes:
    """A process's output as bytes (asyncssh types it loosely; ours are opened binary)."""
    if output is None:
        return b""
    return output.encode() if isinstance(output, str) else output


# sshd allows 10 sessions (channels) per connection by default (MaxSessions); a few at
# once overlap the round trips without nearing it.
_CHANNELS_PER_HOST = 4


class SshHost(Host):
    """One SSH connection as a ``collect.Host``: every read runs gently (nice, ionice,
    sudo when asked), each under the per-command timeout, at most a few at once."""

    def __init__(self, conn: asyncssh.SSHClientConnection, target: SshTarget,
                 options: SshOptions) -> None:
        self.conn, self.target, self.options = conn, target, options
        self.nice = self.ionice = False
        self.windows = target.os == "windows"
        self._channels = asyncio.Semaphore(_CHANNELS_PER_HOST)

    async def _exec(self, command: str, what: str) -> asyncssh.SSHCompletedProcess:
        """Run ``command`` as is (bytes out); ``what`` names it in a timeout message."""
        async with self._channels:
            process = await self.conn.create_process(command, encoding=None,
                                                     stdin=asyncssh.DEVNULL)
            try:
                return await process.wait(check=False, timeout=self.options.command_timeout)
            except asyncssh.TimeoutError:
                process.close()  # frees the channel; sshd then closes the command's pipes
                raise HostFailed(HostStatus.timed_out,
                                  f"`{what}` took longer than the command timeout "
                                  f"({self.options.command_timeout:g} s)") from None

    async def _read(self, command: str, what: str) -> bytes | None:
        """The output of a read command run gently (nice/ionice, sudo), None on failure."""
        done = await self._exec(commands.wrap(command, nice=self.nice, ionice=self.ionice,
                                              sudo=self.options.sudo), what)
        return _as_bytes(done.stdout) if done.exit_status == 0 else None

    async def prepare(self) -> None:
        """Probe for nice/ionice, and fail clearly when --sudo cannot work; a Windows host
        (marked, or detected when the probe fails) needs neither."""
        if self.windows or self.target.platform:
            return  # no POSIX shell: nothing to probe, no sudo
        done = await self._exec(commands.PROBE, "probe")
        if done.exit_status != 0 and self.target.os is None:
            self.windows = await self._detect_windows()
            if self.windows:
                return
        probe = parse_probe(_as_bytes(done.stdout).decode("utf-8", errors="replace"))
        self.nice, self.ionice = probe.get("nice") == "yes", probe.get("ionice") == "yes"
        if self.options.sudo:
            await self._check_sudo()

    async def _detect_windows(self) -> bool:
        """Whether the host is Windows: ``uname`` fails and ``cmd /c ver`` names it."""
        if (await self._exec(commands.UNAME, "uname")).exit_status == 0:
            return False
        done = await self._exec(commands.WINDOWS_VER, "cmd /c ver")
        return done.exit_status == 0 and is_windows_ver(
            _as_bytes(done.stdout).decode("utf-8", errors="replace"))

    async def run_script(self, script: str, timeout: float) -> str:
        """Windows PowerShell's output of ``script`` (``powershell -EncodedCommand``);
        ``timeout`` gives way to ``--command-timeout``.  Raises HostFailed (failed) with
        the exit status and PowerShell's last words when it cannot run or fails."""
        done = await self._exec(ssh_command(script),
                                "powershell -EncodedCommand <the Windows collection script>")
        if done.exit_status != 0:
            raise HostFailed(HostStatus.failed, (
                f"the Windows collection script failed (powershell exit status "
                f"{done.exit_status}): {last_words(_as_bytes(done.stderr))}"))
        return _as_bytes(done.stdout).decode("utf-8", errors="replace")

    async def show_version(self, platform: str) -> Inventory:
        """Run the platform's identifying command as it is (no nice, no sudo: a network
        device's CLI knows neither) and read its output with ntc-templates.  Raises
        HostFailed (failed) with the exit status and the device's last words when it
        fails or says nothing."""
        command = version_command(platform)
        assert command is not None  # SshTarget.parse refuses a platform without one
        done = await self._exec(command, command)
        out = _as_bytes(done.stdout).decode("utf-8", errors="replace")
        if done.exit_status not in (0, None) or not out.strip():
            status = (f"exit status {done.exit_status}" if done.exit_status not in (0, None)
                      else "no output")
            raise HostFailed(HostStatus.failed, (
                f"`{command}` failed on this {platform} device ({status}): "
                f"{last_words(_as_bytes(done.stderr))}"))
        return show_version_inventory(platform, command, out)

    async def _check_sudo(self) -> None:
        done = await self._exec(commands.SUDO_CHECK, "sudo -n true")
        if done.exit_status == 0:
            return
        stderr = _as_bytes(done.stderr).decode("utf-8", errors="replace").strip()
        if done.exit_status == 127 or "not found" in stderr:
            message = "--sudo: sudo is not installed on the host"
        elif "password" in stderr:
            message = (f"--sudo: sudo needs a password for {self.target.user or 'the user'}; "
                       "allow the read commands without one (NOPASSWD in sudoers) or scan "
                       "without --sudo")
        else:
            message = f"--sudo: `sudo -n true` failed: {stderr or 'no reason given'}"
        raise HostFailed(HostStatus.failed, message)

    async def read_file(self, path: str) -> bytes | None:
        """``cat`` of the file; None when it is absent or unreadable."""
        return await self._read(f"cat {shlex.quote(path)}", f"cat {path}")

    async def run(self, argv: Sequence[str], timeout: float) -> str | None:
        """The command's output; None when it is missing or fails.  ``timeout`` gives way
        to ``--command-timeout``, past which the host's scan ends as timed out."""
        out = await self._read(shlex.join(argv), script_name(argv))
        return out.decode("utf-8", errors="replace") if out is not None else None

    async def read_files(self, paths: Sequence[str], *,
                         headers_only: bool = False) -> list[bytes | None]:
        """All the files in one remote command (per 60 kB of paths), not one each."""
        found: list[bytes | None] = []
        for batch in _batches(paths):
            mark = new_mark()
            out = await self._read(
                host_commands.read_files(batch, mark, headers_only=headers_only),
                f"read {len(batch)} files")
            found += parse_marked(out or b"", mark, batch, added_newline=not headers_only)
        return found


def _peer_addresses(conn: asyncssh.SSHClientConnection) -> list[str]:
    """The target's address unless loopback or link-local (as ``scan local`` reports)."""
    peer = conn.get_extra_info("peername")
    if not peer:
        return []
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except ValueError:
        return []
    return [] if address.is_loopback or address.is_link_local else [str(address)]


async def _collect(host: SshHost) -> Inventory:
    """``collect.collect`` over the connection (``collect_windows`` on a Windows host),
    plus the address the host was reached at (behind NAT it is on none of the host's own
    interfaces)."""
    if host.target.platform:
        inventory = await host.show_version(host.target.platform)
        if host.options.sudo:
            inventory = inventory.model_copy(update={"warnings": [
                *inventory.warnings, "--sudo does not apply to a network device (ignored)"]})
    elif host.windows:
        inventory = await collect_windows(host, source=str(host.target), collector="ssh")
        if host.options.sudo:
            inventory = inventory.model_copy(update={"warnings": [
                *inventory.warnings, "--sudo does not apply to a Windows host (ignored): "
                "log in as a member of its Administrators group"]})
    else:
        inventory = await collect(host, CollectOptions(python=host.options.python,
                                                       collector="ssh"))
    addresses = list(dict.fromkeys(_peer_addresses(host.conn)
                                   + inventory.asset.ip_addresses))
    return inventory.model_copy(update={
        "asset": inventory.asset.model_copy(update={"ip_addresses": addresses})})


def _connect_kwargs(target: SshTarget, options: SshOptions,
                    keys: Sequence[asyncssh.SSHKeyPair] | None) -> dict[str, Any]:
    """asyncssh.connect's keyword arguments for ``target`` (auth and timeouts)."""
    kwargs: dict[str, Any] = {
        "port": target.port,
        # The TCP connect, key exchange and authentication share the per-command budget:
        # a host that drops packets must not hold a slot for the whole host timeout.
        "connect_timeout": min(options.command_timeout, options.host_timeout),
    }
    if target.user:
        kwargs["username"] = target.user
    if keys is not None:
        kwargs["client_keys"] = keys
    if not options.use_agent or load_settings().ssh_auth_sock is None:
        kwargs["agent_path"] = None
    if options.password is not None:
        kwargs["password"] = options.password
    return kwargs


@contextlib.asynccontextmanager
async def open_host(target: SshTarget, options: SshOptions,
                    keys: Sequence[asyncssh.SSHKeyPair] | None = None
                    ) -> AsyncIterator[SshHost]:
    """Connect to ``target`` (host key verified as the options say), probe it and yield it
    as a ``collect.Host``; the connection is closed on leaving.  ``keys``: the identities
    already loaded (``load_identities``), else those of ``options`` are read here.

    Raises HostFailed, naming how it ended, for every known failure: inside the block, an
    unreadable database (InventoryFormatError) or a broken channel becomes ``failed``.
    """
    if keys is None:
        keys = load_identities(options.identities)
    path = options.known_hosts.expanduser()
    check = _HostKeyCheck(target, _load_known_hosts(path), path, options.trust_new_hosts)
    try:
        conn = await asyncssh.connect(
            target.host, known_hosts=check.known, client_factory=lambda: _Client(check),
            **_connect_kwargs(target, options, keys))
    except asyncssh.HostKeyNotVerifiable as exc:
        raise HostFailed(HostStatus.host_key_refused,
                         check.refusal or exc.reason) from None
    except asyncssh.PermissionDenied as exc:
        raise HostFailed(HostStatus.auth_failed,
                         f"authentication failed ({exc.reason}); check the user, "
                         "--identity, the ssh-agent or --password-env") from None
    except TimeoutError:
        raise HostFailed(HostStatus.timed_out,
                         "no SSH connection within "
                         f"{min(options.command_timeout, options.host_timeout):g} s") from None
    except OSError as exc:
        # asyncio's strerror is "Connect call failed (addr, port)"; the errno says why.
        if isinstance(exc, socket.gaierror):
            reason = f"cannot resolve {target.host}: {exc.strerror}"
        else:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise HostFailed(HostStatus.unreachable, reason) from None
    except asyncssh.Error as exc:
        raise HostFailed(HostStatus.unreachable, exc.reason) from None
    try:
        check.record_new_key()
        host = SshHost(conn, target, options)
        await host.prepare()
        yield host
    except InventoryFormatError as exc:
        raise HostFailed(HostStatus.failed, str(exc)) from None
    except asyncssh.Error as exc:
        raise HostFailed(HostStatus.failed, exc.reason) from None
    finally:
        conn.close()
        # Wait briefly for the goodbye so that the event loop ends with no connection
        # half-closed; a host that never answers is abandoned after a few seconds.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(conn.wait_closed(), _CLOSE_WAIT)


async def _scan_one(target: SshTarget, options: SshOptions,
                    keys: Sequence[asyncssh.SSHKeyPair] | None) -> Inventory:
    """Connect, verify the host key, collect; raises HostFailed for every known failure."""
    async with open_host(target, options, keys) as host:
        return await _collect(host)


async def scan_host(target: SshTarget, options: SshOptions,
                    keys: Sequence[asyncssh.SSHKeyPair] | None = None) -> HostResult:
    """Scan one host; every way it can fail becomes a HostResult, never an exception."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(options.host_timeout):
            inventory = await _scan_one(target, options, keys)
    except HostFailed as exc:
        return HostResult(target, exc.status, error=str(exc),
                          seconds=time.perf_counter() - started)
    except TimeoutError:
        return HostResult(target, HostStatus.timed_out,
                          error=f"the scan took longer than the host timeout "
                                f"({options.host_timeout:g} s)",
                          seconds=time.perf_counter() - started)
    return HostResult(target, HostStatus.scanned, inventory=inventory,
                      seconds=time.perf_counter() - started)


def load_identities(paths: Sequence[Path]) -> list[asyncssh.SSHKeyPair] | None:
    """The private keys of ``--identity`` files, read once for all hosts (None: defaults).

    Raises SshOptionsError naming the file (never its contents) when one cannot be read;
    a key protected by a passphrase belongs in the ssh-agent.
    """
    if not paths:
        return None
    keys: list[asyncssh.SSHKeyPair] = []
    for path in paths:
        try:
            keys += asyncssh.load_keypairs([str(path.expanduser())])
        except (OSError, asyncssh.KeyImportError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise SshOptionsError(
                f"--identity {path}: cannot use this private key ({reason}); a key with a "
                "passphrase must be added to the ssh-agent instead") from exc
    return keys


async def scan_hosts(targets: Sequence[SshTarget], options: SshOptions,
                     gauge: SessionGauge | None = None) -> list[HostResult]:
    """Scan every target, at most ``options.max_concurrent`` at once; results in order.

    Raises SshOptionsError before connecting anywhere when the options cannot work (an
    unreadable identity or known_hosts file, a limit below 1).
    """
    if options.max_concurrent < 1:
        raise SshOptionsError("--max-concurrent must be at least 1")
    keys = load_identities(options.identities)
    _load_known_hosts(options.known_hosts.expanduser())  # a broken file fails once, early
    gauge = gauge if gauge is not None else SessionGauge()
    limit = asyncio.Semaphore(options.max_concurrent)

    async def bounded(target: SshTarget) -> HostResult:
        async with limit:
            with gauge.session():
                return await scan_host(target, options, keys)

    return list(await asyncio.gather(*(bounded(t) for t in targets)))


def scan_hosts_sync(targets: Sequence[SshTarget], options: SshOptions,
                    gauge: SessionGauge | None = None) -> list[HostResult]:
    """``scan_hosts`` for synchronous callers (the CLI): runs its own event loop."""
    return asyncio.run(scan_hosts(targets, options, gauge))
