"""Agentless inventory of Windows hosts over WinRM (``patchpilot scan winrm``).

Like the SSH transport this module only fetches: ``WinRmHost`` runs the one Windows
PowerShell script of ``inventory.windows.collect`` (``powershell -EncodedCommand``) through
``pywinrm``, and ``collect_windows`` parses what it prints -- the same routine as the agent
and OpenSSH-on-Windows, so the three cannot drift.

Only HTTPS (``https://host:5986/wsman``) with the server's certificate checked: against a
CA file when given (the usual case: WinRM listeners carry certificates of the domain's
own CA), else against the CA bundle ``requests`` trusts.  There is no switch to turn the
check off -- a WinRM password sent to whoever answers is a password given away.  NTLM
(the default), Kerberos (``pip install pywinrm[kerberos]`` and a ticket from ``kinit``)
or Basic auth.

Hosts are scanned as SSH hosts are: at most ``max_concurrent`` at once, a per-command and
a per-host timeout, and one ``HostStatus`` per host, so one broken host never stops the
others.  The password is kept out of ``repr`` and of every message; pywinrm and requests
log no credential (a test runs them at DEBUG level to check).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
import winrm
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
)

from patchpilot.errors import InvalidInput, InventoryFormatError
from patchpilot.inventory.model import Inventory
from patchpilot.inventory.transports.ssh import HostFailed, HostStatus
from patchpilot.inventory.windows.collect import (
    POWERSHELL_OPTIONS,
    collect_windows,
    encoded_command,
    last_words,
)

# pyspnego logs every NTLM/Kerberos token at DEBUG; the NTLM authenticate message holds a
# response derived from the password (crackable offline), so it never reaches a log here.
logging.getLogger("spnego").setLevel(logging.WARNING)

DEFAULT_PORT = 5986
AUTH_METHODS = ("ntlm", "kerberos", "basic")
DEFAULT_COMMAND_TIMEOUT = 120.0
DEFAULT_HOST_TIMEOUT = 300.0
DEFAULT_MAX_CONCURRENT = 10
# WS-Management's own limit for one request (a receive that outlasts it is asked again);
# the HTTP read timeout must exceed it.
_OPERATION_TIMEOUT = 20

_TARGET = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\s\[\]@]+))(?::(?P<port>\d+))?$")


class WinRmOptionsError(InvalidInput):
    """A WinRM target or option that cannot be used (bad target, unknown auth method,
    unreadable CA file)."""


@dataclass(frozen=True, slots=True)
class WinRmTarget:
    """One Windows host: ``[user@]host[:port]`` (port 5986, WinRM over HTTPS, by default).
    A domain user is written ``user@host`` with the user as ``DOMAIN\\user`` or
    ``user@domain`` -- the last ``@`` separates the host."""

    host: str
    port: int = DEFAULT_PORT
    user: str | None = None

    @classmethod
    def parse(cls, text: str, where: str = "target") -> WinRmTarget:
        """The target ``text`` names; WinRmOptionsError (naming ``where``) when malformed."""
        stripped = text.strip()
        user, at, rest = stripped.rpartition("@")
        found = _TARGET.match(rest)
        if found is None or (at and not user):
            raise WinRmOptionsError(f"{where}: {text!r} is not [user@]host[:port]")
        port = int(found["port"]) if found["port"] else DEFAULT_PORT
        if not 0 < port < 65536:
            raise WinRmOptionsError(f"{where}: port {port} of {text!r} is out of range")
        return cls(host=found["v6"] or found["host"], port=port, user=user or None)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return f"{user}{host}" + (f":{self.port}" if self.port != DEFAULT_PORT else "")

    @property
    def endpoint(self) -> str:
        """The WS-Management URL: ``https://host:5986/wsman``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}/wsman"

    @property
    def address(self) -> str:
        """``host:port`` as messages name it."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class WinRmOptions:
    """How to reach and read the targets.

    ``password`` is kept out of ``repr`` so that it cannot reach a log or a traceback;
    ``user`` is used for targets that name none.  ``ca_file``: the PEM file of the CA(s)
    that signed the hosts' WinRM certificates.
    """

    auth: str = "ntlm"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT
    host_timeout: float = DEFAULT_HOST_TIMEOUT
    max_concurrent: int = DEFAULT_MAX_CONCURRENT

    def check(self) -> None:
        """Raise WinRmOptionsError when these options cannot work, before any connection."""
        if self.auth not in AUTH_METHODS:
            raise WinRmOptionsError(f"--auth {self.auth}: not one of {', '.join(AUTH_METHODS)}")
        if self.max_concurrent < 1:
            raise WinRmOptionsError("--max-concurrent must be at least 1")
        if self.ca_file is not None and not self.ca_file.expanduser().is_file():
            raise WinRmOptionsError(f"--ca-file {self.ca_file}: not a readable file")
        if self.auth != "kerberos" and self.password is None:
            raise WinRmOptionsError(f"--auth {self.auth} needs a password (--password-env)")


@dataclass(frozen=True, slots=True)
class WinRmResult:
    """The outcome of one target: its status, its inventory when scanned, else the error
    (which does not repeat the target)."""

    target: WinRmTarget
    status: HostStatus
    inventory: Inventory | None = None
    error: str | None = None
    seconds: float = 0.0


def protocol_for(target: WinRmTarget, options: WinRmOptions) -> winrm.Protocol:
    """The pywinrm Protocol for ``target``: HTTPS endpoint, certificate validated (against
    ``ca_file`` when given), no proxy from the environment, the auth method and timeouts
    of ``options``.  Nothing is sent until a command runs."""
    read_timeout = max(int(options.command_timeout), _OPERATION_TIMEOUT + 10)
    return winrm.Protocol(
        endpoint=target.endpoint,
        transport=options.auth,  # type: ignore[arg-type]
        username=target.user or options.user,
        password=options.password,
        server_cert_validation="validate",
        ca_trust_path=str(options.ca_file.expanduser()) if options.ca_file else None,  # type: ignore[arg-type]
        proxy=None,
        read_timeout_sec=read_timeout,
        operation_timeout_sec=_OPERATION_TIMEOUT,
        message_encryption="auto",
    )


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError somewhere in an exception's chain (requests and urllib3 wrap it)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno:
            return current
        pending += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
    return None


def _failure(target: WinRmTarget, exc: BaseException, target_auth: str) -> HostFailed:
    """The per-host failure of an exception out of pywinrm or requests.  The messages are
    our own: requests' and pywinrm's may quote the request, never trusted to be free of
    credentials."""
    where = target.address
    if isinstance(exc, requests.exceptions.SSLError):
        return HostFailed(HostStatus.host_key_refused, (
            f"the TLS certificate of {where} is not trusted (or does not name the host): "
            "give the CA that signed it with --ca-file"))
    if isinstance(exc, requests.exceptions.Timeout | WinRMOperationTimeoutError):
        return HostFailed(HostStatus.timed_out, f"{where} did not answer in time")
    if isinstance(exc, requests.exceptions.ConnectionError):
        cause = _os_error(exc)
        if isinstance(cause, socket.gaierror):
            return HostFailed(HostStatus.unreachable,
                              f"cannot resolve {target.host}: {cause.strerror}")
        reason = os.strerror(cause.errno) if cause and cause.errno else "no connection"
        return HostFailed(HostStatus.unreachable, f"cannot connect to {where}: {reason}")
    if isinstance(exc, PermissionError):
        return HostFailed(HostStatus.auth_failed, (
            f"{where} refused the credentials (no {target_auth} challenge answered); check "
            "the user, --auth and the password"))
    if isinstance(exc, InvalidCredentialsError):
        return HostFailed(HostStatus.auth_failed, (
            f"{where} refused the credentials ({exc.__class__.__name__}); check the user, "
            "--auth and the password"))
    if isinstance(exc, WinRMTransportError):
        if exc.code == 401:
            return HostFailed(HostStatus.auth_failed, f"{where} refused the credentials "
                                                      "(HTTP 401)")
        return HostFailed(HostStatus.failed, f"{where} answered HTTP {exc.code}")
    if isinstance(exc, WinRMError):
        # pywinrm's own words: a missing Kerberos library, a WS-Management fault.
        return HostFailed(HostStatus.failed, f"{where}: {exc}")
    return HostFailed(HostStatus.failed, f"{where}: {exc.__class__.__name__}")


class WinRmHost:
    """One WinRM endpoint as a ``windows.collect.PowerShellHost``."""

    def __init__(self, target: WinRmTarget, options: WinRmOptions) -> None:
        self.target, self.options = target, options
        self.protocol = protocol_for(target, options)

    def _run(self, script: str) -> str:
        """Open a shell, run the script as ``powershell -EncodedCommand``, close the shell;
        raises HostFailed for every way it can go wrong."""
        protocol = self.protocol
        try:
            shell = protocol.open_shell()
            try:
                command = protocol.run_command(shell, "powershell", [
                    *POWERSHELL_OPTIONS, "-EncodedCommand", encoded_command(script)])
                stdout, stderr, status = protocol.get_command_output(shell, command)
                protocol.cleanup_command(shell, command)
            finally:
                protocol.close_shell(shell)
        except (requests.exceptions.RequestException, WinRMError, WinRMTransportError,
                WinRMOperationTimeoutError, PermissionError) as exc:
            # PermissionError: requests_ntlm's "server did not respond with NTLM challenge".
            raise _failure(self.target, exc, self.options.auth.upper()) from None
        if status != 0:
            raise HostFailed(HostStatus.failed, (
                f"the Windows collection script failed (powershell exit status {status}): "
                f"{last_words(stderr)}"))
        return stdout.decode("utf-8", errors="replace")

    async def run_script(self, script: str, timeout: float) -> str:
        """The script's standard output; ``timeout`` gives way to the options' per-command
        timeout (pywinrm's read timeout)."""
        return await asyncio.to_thread(self._run, script)


async def scan_host(target: WinRmTarget, options: WinRmOptions) -> WinRmResult:
    """Scan one host; every way it can fail becomes a WinRmResult, never an exception."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(options.host_timeout):
            inventory = await collect_windows(WinRmHost(target, options), source=str(target),
                                              collector="winrm")
    except HostFailed as exc:
        return WinRmResult(target, exc.status, error=str(exc),
                           seconds=time.perf_counter() - started)
    except InventoryFormatError as exc:
        return WinRmResult(target, HostStatus.failed, error=str(exc),
                           seconds=time.perf_counter() - started)
    except TimeoutError:
        return WinRmResult(target, HostStatus.timed_out,
                           error=f"the scan took longer than the host timeout "
                                 f"({options.host_timeout:g} s)",
                           seconds=time.perf_counter() - started)
    return WinRmResult(target, HostStatus.scanned, inventory=inventory,
                       seconds=time.perf_counter() - started)


async def scan_hosts(targets: Sequence[WinRmTarget], options: WinRmOptions) -> list[WinRmResult]:
    """Scan every target, at most ``options.max_concurrent`` at once; results in order.
    Raises WinRmOptionsError before connecting anywhere when the options cannot work."""
    options.check()
    limit = asyncio.Semaphore(options.max_concurrent)

    async def bounded(target: WinRmTarget) -> WinRmResult:
        async with limit:
            return await scan_host(target, options)

    return list(await asyncio.gather(*(bounded(t) for t in targets)))


def scan_hosts_sync(targets: Sequence[WinRmTarget], options: WinRmOptions) -> list[WinRmResult]:
    """``scan_hosts`` for synchronous callers (the CLI): runs its own event loop."""
    return asyncio.run(scan_hosts(targets, options))

