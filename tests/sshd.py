"""A real OpenSSH server on loopback ports, for the SSH transport's tests and benchmark.

``start_sshd`` runs ``/usr/sbin/sshd -D -e -f CONFIG`` with its own host key and an
AuthorizedKeysFile holding a client key, all generated under a temporary folder; it
listens on 127.0.0.1 only.  Root logs in by key only (``PermitRootLogin
prohibit-password``); ``StrictModes no`` because the keys live in tmp folders.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"
LOOPBACK = "127.0.0.1"
# sshd (as root) refuses to start without its privilege-separation directory; a
# container without a running sshd may not have it.
PRIVSEP_DIR = Path("/run/sshd")


def sshd_problem() -> str | None:
    """Why a real sshd cannot be started here, or None."""
    if not SSHD.exists():
        return f"{SSHD} is not installed (apt-get install openssh-server)"
    if shutil.which(SSH_KEYGEN) is None:
        return "ssh-keygen is not installed"
    if os.geteuid() != 0:
        return "sshd tests log in as root and must run as root"
    return None


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519") -> Path:
    """A new key pair without passphrase at ``path`` (and ``path.pub``); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([SSH_KEYGEN, "-q", "-t", kind, "-N", "", "-C", "", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)
    return path


def fingerprint(public_key: Path) -> str:
    """The SHA256 fingerprint of a public key file, as ``ssh-keygen -l`` prints it."""
    out = subprocess.run([SSH_KEYGEN, "-l", "-E", "sha256", "-f", str(public_key)],
                         check=True, capture_output=True, text=True).stdout
    return out.split()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Return once ``port`` accepts connections; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"sshd did not listen on {LOOPBACK}:{port} within {timeout:g} s")


@dataclass
class SshServer:
    """A running sshd: its ports, host key, the authorized client key and its log."""

    folder: Path
    ports: list[int]
    host_key: Path
    client_key: Path
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        """The first (ordinary) port."""
        return self.ports[0]

    def known_hosts_line(self, port: int | None = None) -> str:
        """The known_hosts line trusting this server's host key on ``port``."""
        kind, data = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[{LOOPBACK}]:{port or self.port} {kind} {data}\n"

    def host_fingerprint(self) -> str:
        """``SHA256:…`` of the host key."""
        return fingerprint(self.host_key.with_suffix(".pub"))

    def stop(self) -> None:
        """Stop sshd (SIGTERM, then SIGKILL) -- only the process this helper started."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start_sshd(folder: Path, *, ports: int | Sequence[int] = 1, extra: str = "",
               client_key: Path | None = None) -> SshServer:
    """Start sshd on ``ports`` loopback ports (a count of free ones, or the ports).

    ``extra`` is appended to the config; it may hold ``Match LocalPort …`` blocks (say,
    a ForceCommand that sleeps on the second port).  ``client_key`` reuses a key pair.
    """
    problem = sshd_problem()
    if problem:
        raise RuntimeError(problem)
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    host_key = keygen(folder / "ssh_host_ed25519_key")
    client = client_key or keygen(folder / "client_ed25519")
    authorized = folder / "authorized_keys"
    authorized.write_text(client.with_suffix(".pub").read_text())
    chosen = ([free_port() for _ in range(ports)] if isinstance(ports, int)
              else list(ports))
    config = folder / "sshd_config"
    config.write_text(
        "".join(f"Port {p}\n" for p in chosen)
        + f"ListenAddress {LOOPBACK}\n"
        f"HostKey {host_key}\n"
        f"PidFile {folder / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {authorized}\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "PermitRootLogin prohibit-password\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        # The benchmark opens many connections at once; sshd's default (10:30:100) would
        # start dropping unauthenticated ones at random.
        "MaxStartups 200\n"
        "LogLevel ERROR\n"
        + extra)
    log = folder / "sshd.log"
    with log.open("wb") as handle:
        process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)],
                                   stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = SshServer(folder, chosen, host_key, client, log, process)
    try:
        for port in chosen:
            wait_for_port(port)
    except TimeoutError as exc:
        server.stop()
        raise RuntimeError(f"{exc}; sshd said: {log.read_text()[-2000:]}") from exc
    return server
