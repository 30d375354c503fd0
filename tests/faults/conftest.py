"""Fault fixtures: a tiny file system that fills up, and a private PostgreSQL to restart.

Both need root (``mount``) or the ``postgres`` OS user; the tests run as root in CI.  Off
CI a machine without them skips with the reason; under ``CI=true`` they fail instead, as
the shared PostgreSQL fixture does, so a broken CI image cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.builders.processes import free_port
from tests.conftest import IN_CI

PG_BIN = Path(os.environ.get("PATCHPILOT_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail under CI (where the machine is expected to have it)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the CI machine must provide it)")
    pytest.skip(reason)


@contextmanager
def tmpfs(folder: Path, size_bytes: int) -> Iterator[Path]:
    """``folder`` as a fresh tmpfs of ``size_bytes`` (rounded up to pages), unmounted after."""
    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0700",
                           "tmpfs", str(folder)], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        unavailable(f"mount -t tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        # Lazy, so a file some thread still holds open cannot leave the mount behind.
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30,
                       check=True)


class PrivatePostgres:
    """A PostgreSQL cluster of this test alone (initdb in a tmp dir, a free loopback port).

    The shared server at 127.0.0.1:5432 is in use by other tests; this one may be stopped
    and restarted at will.  It runs as the ``postgres`` OS user with trust authentication
    and its unix socket in its own folder.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.log = root / "postgres.log"

    @property
    def url(self) -> str:
        """The ``test`` database's URL (TCP over loopback)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/test"

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr}{done.stdout}\n{log}")

    def init(self) -> PrivatePostgres:
        """initdb, start, and create the ``test`` database."""
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth=trust", "--no-sync", "-E", "UTF8")
        self.start()
        self._as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                          "-U", "postgres", "test")
        return self

    def _ctl(self, *args: str) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                          "-w", "-t", "60", *args, timeout=90)

    def start(self) -> None:
        """Start (and wait until it accepts connections)."""
        self._ctl("-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                        f"-c fsync=off", "start")

    def stop(self) -> None:
        """Fast shutdown: every session is cut, as in a failover or an upgrade."""
        self._ctl("-m", "fast", "stop")

    def destroy(self) -> None:
        """Stop if running (immediate) and remove the cluster."""
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D",
                        str(self.data), "-m", "immediate", "stop"], capture_output=True,
                       timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePostgres]:
    """A running PostgreSQL cluster of this test alone, removed afterwards."""
    if not (PG_BIN / "initdb").exists():
        unavailable(f"PostgreSQL server binaries not found in {PG_BIN} (Debian postgresql)")
    if shutil.which("runuser") is None or os.geteuid() != 0:
        unavailable("starting a private PostgreSQL needs root and runuser (as postgres)")
    # Not under pytest's tmp dir: its parents are 0700 root, which the postgres user
    # cannot traverse to reach its data directory.
    root = Path(f"/tmp/patchpilot-pg-{os.getpid()}-{time.monotonic_ns()}")
    cluster = PrivatePostgres(root)
    try:
        cluster.init()
        yield cluster
    finally:
        cluster.destroy()
