"""Inventory fixtures: the real captured inventories in ../shared/data (never copied here),
a real sshd on loopback ports, and a host made of a captured file tree."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from patchpilot.inventory.transports.local import LocalHost
from tests.sshd import SshServer, free_port, sshd_problem, start_sshd

# Long enough that a slow host can never finish inside the timeouts of the SSH tests, even
# on a loaded CI machine where the good host's full scan takes a few seconds.
SLEEP_SECONDS = 30


@pytest.fixture(scope="session")
def inventories(shared_data: Path) -> Path:
    """The directory of real package databases, lock files and SBOMs."""
    return shared_data / "inventories"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A real sshd on four loopback ports: plain, slow (sleeps), two stand-in sudos.

    The stand-ins let ``--sudo`` be checked on a machine without sudo (Debian's container
    images): one logs its arguments and runs the command, one wants a password.  Without
    sshd (or root) the SSH tests are skipped -- except under CI=true, where that fails
    the run, as an unreachable PostgreSQL does.
    """
    problem = sshd_problem()
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"cannot start sshd under CI=true: {problem}")
        pytest.skip(problem)
    folder = tmp_path_factory.mktemp("sshd")
    sudo_dir = folder / "sudo-ok"
    sudo_dir.mkdir()
    # A stand-in for a passwordless sudo: logs its arguments, then runs the command.
    (sudo_dir / "sudo").write_text(
        f'#!/bin/sh\necho "$*" >> {folder}/sudo.log\n[ "$1" = -n ] && shift\nexec "$@"\n')
    (sudo_dir / "sudo").chmod(0o755)
    needs_password = folder / "sudo-password"
    needs_password.mkdir()
    # What `sudo -n` prints when the sudoers policy wants a password.
    (needs_password / "sudo").write_text(
        '#!/bin/sh\necho "sudo: a password is required" >&2\nexit 1\n')
    (needs_password / "sudo").chmod(0o755)
    ports = [free_port() for _ in range(4)]
    extra = (f"Match LocalPort {ports[1]}\n  ForceCommand sleep {SLEEP_SECONDS}\n"
             f"Match LocalPort {ports[2]}\n  SetEnv PATH={sudo_dir}:/usr/bin:/bin\n"
             f"Match LocalPort {ports[3]}\n  SetEnv PATH={needs_password}:/usr/bin:/bin\n")
    server = start_sshd(folder, ports=ports, extra=extra)
    yield server
    server.stop()


@pytest.fixture
def sleep_seconds() -> int:
    """How long every command on the slow port sleeps."""
    return SLEEP_SECONDS


@pytest.fixture
def known_hosts(sshd: SshServer, tmp_path: Path) -> Path:
    """A known_hosts file trusting the server's key on all its ports."""
    path = tmp_path / "known_hosts"
    path.write_text("".join(sshd.known_hosts_line(p) for p in sshd.ports))
    return path


class TreeHost(LocalHost):
    """A host made of a folder holding a captured machine's files (``root/etc/os-release``,
    ``root/var/lib/dpkg/status``, …), as a mounted disk image would be: no /proc/net,
    so no addresses.

    Files and folders are read under ``root``.  Of the commands only the shell scripts of
    ``inventory.host.commands`` run -- they take every path as an argument, so each
    absolute path is moved under ``root`` -- and nothing else: a captured tree has no
    ``rpm``, ``ip`` or interpreters of its own.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _under(self, path: str) -> str:
        return str(self.root / path.lstrip("/")) if path.startswith("/") else path

    async def read_file(self, path: str) -> bytes | None:
        return await super().read_file(self._under(path))

    async def read_files(self, paths: Sequence[str], *,
                         headers_only: bool = False) -> list[bytes | None]:
        return await super().read_files([self._under(p) for p in paths],
                                        headers_only=headers_only)

    async def list_dirs(self, paths: Sequence[str]) -> list[list[str] | None]:
        return await super().list_dirs([self._under(p) for p in paths])

    async def run(self, argv: Sequence[str], timeout: float) -> str | None:
        if list(argv[:2]) != ["sh", "-c"] or "# which commands" in argv[2]:
            return None
        return await super().run([*argv[:4], *(self._under(a) for a in argv[4:])], timeout)


@pytest.fixture
def tree_host() -> type[TreeHost]:
    """The TreeHost class: ``tree_host(root)`` is a host made of the files under ``root``."""
    return TreeHost
