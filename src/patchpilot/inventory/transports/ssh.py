"""Agentless inventory over SSH (``patchpilot scan ssh user@host[:port] …``).

Like ``transports.local`` this module only fetches text -- the read-only commands of
``transports.commands`` -- and hands it to the pure parsers of ``inventory.sources``.
Many hosts are scanned at once (asyncssh, one connection per host, at most
``max_concurrent`` at a time); each host ends in one ``HostStatus``, so one unreachable or
slow host never stops the others.

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncssh

from patchpilot.errors import InventoryFormatError, PatchPilotError
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory, OsInfo
from patchpilot.inventory.purls import purl_for
from patchpilot.inventory.sources.apk import parse_apk_installed
from patchpilot.inventory.sources.dpkg import parse_dpkg_status
from patchpilot.inventory.sources.os_release import parse_os_release
from patchpilot.inventory.sources.python import ECOSYSTEM as PYPI
from patchpilot.inventory.sources.python import parse_dist_dir_name, parse_metadata
from patchpilot.inventory.sources.rpm import parse_rpm_qa
from patchpilot.inventory.transports import commands
from patchpilot.inventory.transports.local import installed_kernels
from patchpilot.knowledge.ecosystems import ecosystem_for_os, scheme_of
from patchpilot.models import Ecosystem, Package

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
DEFAULT_COMMAND_TIMEOUT = 60.0
DEFAULT_HOST_TIMEOUT = 300.0
DEFAULT_MAX_CONCURRENT = 10
_CLOSE_WAIT = 5.0

_TARGET = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\s\[\]@]+))(?::(?P<port>\d+))?$")


class SshOptionsError(PatchPilotError):
    """A target, a targets file, an identity or a known_hosts file that cannot be used."""


class HostStatus(StrEnum):
    """How the scan of one host ended."""

    scanned = "scanned"
    unreachable = "unreachable"  # no TCP connection or the SSH handshake broke off
    auth_failed = "auth failed"  # the server refused every key / the password
    host_key_refused = "host key refused"  # unknown (without --trust-new-hosts) or changed
    timed_out = "timed out"  # a command, the connection or the whole host took too long
    failed = "failed"  # connected, but a read failed (sudo wants a password, bad database)


@dataclass(frozen=True, slots=True)
class SshTarget:
    """One host to scan: ``[user@]host[:port]`` (IPv6 as ``[::1]:22``)."""

    host: str
    port: int = 22
    user: str | None = None

    @classmethod
    def parse(cls, text: str, where: str = "target") -> SshTarget:
        """The target ``text`` names; SshOptionsError (naming ``where``) when malformed."""
        found = _TARGET.match(text.strip())
        if found is None:
            raise SshOptionsError(f"{where}: {text!r} is not [user@]host[:port]")
        port = int(found["port"]) if found["port"] else 22
        if not 0 < port < 65536:
            raise SshOptionsError(f"{where}: port {port} of {text!r} is out of range")
        return cls(host=found["v6"] or found["host"], port=port, user=found["user"])

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return f"{user}{host}" + (f":{self.port}" if self.port != 22 else "")

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

class _HostFailed(Exception):
    """Ends one host's scan with ``status`` and a message for the user."""

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

def parse_probe(text: str) -> dict[str, str]:
    """The ``key=value`` lines ``commands.PROBE`` prints."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found


def parse_metadata_dump(text: str, warnings: list[str]) -> list[Package]:
    """The distributions in ``commands.PYTHON_METADATA``'s output, each once per site dir.

    A METADATA without Name or Version falls back to its directory's name, as the local
    collector does; failing that it is skipped with a warning.
    """
    packages: dict[tuple[str, str, str], Package] = {}
    blocks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith(commands.METADATA_MARK):
            blocks.append((line[len(commands.METADATA_MARK):], []))
        elif blocks:
            blocks[-1][1].append(line)
    for path, lines in blocks:
        metadata = Path(path)
        # dist-info/METADATA and egg-info/PKG-INFO sit in the distribution's directory; a
        # distutils egg-info is itself the file.
        dist_dir = metadata if metadata.suffix == ".egg-info" else metadata.parent
        site_dir = str(dist_dir.parent)
        try:
            name, version = parse_metadata("\n".join(lines), path)
        except InventoryFormatError as exc:
            fallback = parse_dist_dir_name(dist_dir.name)
            if fallback is None:
                warnings.append(f"skipped {path}: {exc.detail}")
                continue
            name, version = fallback
        packages.setdefault((name, version, site_dir), Package(
            ecosystem=Ecosystem(PYPI), name=name, version=version,
            purl=purl_for(PYPI, name, version), location=site_dir))
    return list(packages.values())


# --- one host ------------------------------------------------------------------------------

class _Remote:
    """Runs the fixed commands on one connection, each under the per-command timeout."""

    def __init__(self, conn: asyncssh.SSHClientConnection, target: SshTarget,
                 options: SshOptions) -> None:
        self.conn, self.target, self.options = conn, target, options
        self.nice = self.ionice = False

    async def raw(self, command: str, what: str) -> asyncssh.SSHCompletedProcess:
        """Run ``command`` as is; ``what`` names it in a timeout message."""
        process = await self.conn.create_process(command, encoding="utf-8", errors="replace",
                                                 stdin=asyncssh.DEVNULL)
        try:
            return await process.wait(check=False, timeout=self.options.command_timeout)
        except asyncssh.TimeoutError:
            process.close()  # frees the channel; sshd then closes the command's pipes
            raise _HostFailed(HostStatus.timed_out,
                              f"`{what}` took longer than the command timeout "
                              f"({self.options.command_timeout:g} s)") from None

    async def read(self, command: str, what: str) -> str | None:
        """The output of a read command run gently (nice/ionice, sudo), None on failure."""
        done = await self.raw(commands.wrap(command, nice=self.nice, ionice=self.ionice,
                                            sudo=self.options.sudo), what)
        return str(done.stdout) if done.exit_status == 0 else None

    async def must_read(self, command: str, what: str) -> str:
        """Like ``read``, but a failure ends the host's scan naming the command."""
        done = await self.raw(commands.wrap(command, nice=self.nice, ionice=self.ionice,
                                            sudo=self.options.sudo), what)
        if done.exit_status != 0:
            detail = str(done.stderr or "").strip().splitlines()
            raise _HostFailed(HostStatus.failed, f"`{what}` failed (exit {done.exit_status})"
                              + (f": {detail[-1]}" if detail else ""))
        return str(done.stdout)

    async def check_sudo(self) -> None:
        """Fail clearly when sudo is missing or would ask for a password."""
        done = await self.raw(commands.SUDO_CHECK, "sudo -n true")
        if done.exit_status == 0:
            return
        stderr = str(done.stderr or "").strip()
        if done.exit_status == 127 or "not found" in stderr:
            message = "--sudo: sudo is not installed on the host"
        elif "password" in stderr:
            message = (f"--sudo: sudo needs a password for {self.target.user or 'the user'}; "
                       "allow the read commands without one (NOPASSWD in sudoers) or scan "
                       "without --sudo")
        else:
            message = f"--sudo: `sudo -n true` failed: {stderr or 'no reason given'}"
        raise _HostFailed(HostStatus.failed, message)


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


async def _collect(remote: _Remote) -> Inventory:
    """Read and parse one host's OS, kernels, OS packages and system Python packages."""
    options, target = remote.options, remote.target
    probe = parse_probe(str((await remote.raw(commands.PROBE, "probe")).stdout))
    remote.nice, remote.ionice = probe.get("nice") == "yes", probe.get("ionice") == "yes"
    if options.sudo:
        await remote.check_sudo()
    warnings: list[str] = []
    os_packages: list[Package] = []
    os_info: OsInfo | None = None
    release_text = await remote.read(commands.OS_RELEASE, "cat /etc/os-release")
    release = parse_os_release(release_text, "/etc/os-release") if release_text else None
    if release is not None:
        ecosystem = ecosystem_for_os(release) or Ecosystem(
            f"{release.id}:{release.version_id}" if release.version_id else release.id)
        scheme = scheme_of(ecosystem)
        # The database matching the OS family; any present one when the family is unknown.
        if scheme in ("dpkg", "generic") and probe.get("dpkg") == "yes":
            os_packages = parse_dpkg_status(
                await remote.must_read(commands.DPKG_STATUS, "cat /var/lib/dpkg/status"),
                ecosystem, "/var/lib/dpkg/status")
        elif scheme in ("rpm", "generic") and probe.get("rpm") == "yes":
            os_packages = parse_rpm_qa(
                await remote.must_read(commands.RPM_QA, "rpm -qa"), ecosystem, "rpm -qa")
        elif scheme in ("apk", "generic") and probe.get("apk") == "yes":
            os_packages = parse_apk_installed(
                await remote.must_read(commands.APK_INSTALLED, "cat /lib/apk/db/installed"),
                ecosystem, "/lib/apk/db/installed")
        else:
            warnings.append(f"no package database of {ecosystem} found")
        boot = await remote.read(commands.BOOT_LIST, "ls /boot") or ""
        os_info = OsInfo.from_os_release(
            release, kernel_running=probe.get("kernel") or None,
            kernels_installed=installed_kernels(boot.split(), os_packages))
    else:
        warnings.append("no /etc/os-release: operating system packages not collected")
    python: list[Package] = []
    if options.python:
        dump = await remote.read(commands.PYTHON_METADATA, "read Python METADATA")
        if dump is None:
            warnings.append("the system Python packages could not be listed")
        else:
            python = parse_metadata_dump(dump, warnings)
    machine_id = (await remote.read(commands.MACHINE_ID, "cat /etc/machine-id") or "").strip()
    return Inventory.from_packages(
        os_packages + python,
        asset=AssetIdentity(hostname=probe.get("hostname") or target.host,
                            machine_id=machine_id or None,
                            ip_addresses=_peer_addresses(remote.conn)),
        os=os_info,
        collector=Collector(name="ssh"),
        complete=release is not None,
        warnings=warnings,
    )


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
    if not options.use_agent or not os.environ.get("SSH_AUTH_SOCK"):
        kwargs["agent_path"] = None
    if options.password is not None:
        kwargs["password"] = options.password
    return kwargs


async def _scan_one(target: SshTarget, options: SshOptions,
                    keys: Sequence[asyncssh.SSHKeyPair] | None) -> Inventory:
    """Connect, verify the host key, collect; raises _HostFailed for every known failure."""
    path = options.known_hosts.expanduser()
    check = _HostKeyCheck(target, _load_known_hosts(path), path, options.trust_new_hosts)
    try:
        conn = await asyncssh.connect(
            target.host, known_hosts=check.known, client_factory=lambda: _Client(check),
            **_connect_kwargs(target, options, keys))
    except asyncssh.HostKeyNotVerifiable as exc:
        raise _HostFailed(HostStatus.host_key_refused,
                          check.refusal or exc.reason) from None
    except asyncssh.PermissionDenied as exc:
        raise _HostFailed(HostStatus.auth_failed,
                          f"authentication failed ({exc.reason}); check the user, "
                          "--identity, the ssh-agent or --password-env") from None
    except TimeoutError:
        raise _HostFailed(HostStatus.timed_out,
                          "no SSH connection within "
                          f"{min(options.command_timeout, options.host_timeout):g} s") from None
    except OSError as exc:
        # asyncio's strerror is "Connect call failed (addr, port)"; the errno says why.
        if isinstance(exc, socket.gaierror):
            reason = f"cannot resolve {target.host}: {exc.strerror}"
        else:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise _HostFailed(HostStatus.unreachable, reason) from None
    except asyncssh.Error as exc:
        raise _HostFailed(HostStatus.unreachable, exc.reason) from None
    try:
        check.record_new_key()
        return await _collect(_Remote(conn, target, options))
    except InventoryFormatError as exc:
        raise _HostFailed(HostStatus.failed, str(exc)) from None
    except asyncssh.Error as exc:
        raise _HostFailed(HostStatus.failed, exc.reason) from None
    finally:
        conn.close()
        # Wait briefly for the goodbye so that the event loop ends with no connection
        # half-closed; a host that never answers is abandoned after a few seconds.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(conn.wait_closed(), _CLOSE_WAIT)


async def scan_host(target: SshTarget, options: SshOptions,
                    keys: Sequence[asyncssh.SSHKeyPair] | None = None) -> HostResult:
    """Scan one host; every way it can fail becomes a HostResult, never an exception."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(options.host_timeout):
            inventory = await _scan_one(target, options, keys)
    except _HostFailed as exc:
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
