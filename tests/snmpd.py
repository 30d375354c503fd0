"""A real net-snmp ``snmpd`` on a loopback UDP port, for the SNMP tests and benchmark.

``start_snmpd`` writes a config (its own ``agentAddress``, a v2c community, optionally a
v3 user, ``sysDescr``/``sysObjectID``/``sysName`` and ``override`` lines that answer
ENTITY-MIB and vendor objects the way a device does) and runs ``snmpd -f`` with it,
ignoring the system's config files (``-C``) and keeping its state in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SNMPD = Path("/usr/sbin/snmpd")
LOOPBACK = "127.0.0.1"


def snmpd_problem() -> str | None:
    """Why a real snmpd cannot be started here, or None."""
    if not SNMPD.exists():
        return f"{SNMPD} is not installed (apt-get install snmpd)"
    return None


def free_udp_port() -> int:
    """A UDP port nothing is bound to now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass
class SnmpServer:
    """A running snmpd: its port and log."""

    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop snmpd -- only the process this helper started."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start_snmpd(folder: Path, *, community: str, sys_descr: str, sys_object_id: str,
                sys_name: str | None = None, overrides: dict[str, tuple[str, str]] | None = None,
                v3_user: tuple[str, str, str] | None = None) -> SnmpServer:
    """Start snmpd on a free loopback UDP port answering as the device described.

    ``overrides``: OID -> (net-snmp type, value), e.g. ENTITY-MIB columns; ``v3_user``:
    (name, SHA auth passphrase, AES privacy passphrase), read-only with privacy.
    """
    problem = snmpd_problem()
    if problem:
        raise RuntimeError(problem)
    folder.mkdir(parents=True, exist_ok=True)
    port = free_udp_port()
    lines = [f"agentAddress udp:{LOOPBACK}:{port}", f"rocommunity {community} {LOOPBACK}",
             f"sysDescr {sys_descr}", f"sysObjectID {sys_object_id}"]
    if sys_name:
        lines.append(f"sysName {sys_name}")
    if v3_user:
        name, auth, priv = v3_user
        lines += [f'createUser {name} SHA "{auth}" AES "{priv}"', f"rouser {name} priv"]
    for oid, (kind, value) in (overrides or {}).items():
        shown = f'"{value}"' if kind == "octet_str" else value
        lines.append(f"override {oid} {kind} {shown}")
    config = folder / "snmpd.conf"
    config.write_text("\n".join(lines) + "\n")
    state = folder / "state"
    state.mkdir(exist_ok=True)
    log = folder / "snmpd.log"
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(state), "MIBS": ""}
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [str(SNMPD), "-f", "-C", "-c", str(config), "-Lf", str(log), "-m", "",
             "-p", str(folder / "snmpd.pid")],
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    server = SnmpServer(port, log, process)
    # Ready when it logs that it listens (it binds, then logs "NET-SNMP version ...").
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"snmpd exited: {log.read_text()[-2000:]}")
        if "NET-SNMP version" in log.read_text(errors="replace"):
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"snmpd did not start within 10 s: {log.read_text()[-2000:]}")


def snmpd_or_skip() -> None:
    """Skip when snmpd is missing -- except under CI=true, where that fails the run."""
    import pytest

    problem = snmpd_problem()
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"cannot start snmpd under CI=true: {problem}")
        pytest.skip(problem)


def nmap_or_skip() -> str:
    """The nmap path; skip when missing -- except under CI=true, where that fails."""
    import pytest

    found = shutil.which("nmap")
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("nmap is not installed under CI=true (apt-get install nmap)")
        pytest.skip("nmap is not installed (apt-get install nmap)")
    return found
