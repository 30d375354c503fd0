"""Real processes for end-to-end tests: a server on a free loopback port, agents."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from bench.common import free_port, stop_process


def env_for(database_url: str, home: Path) -> dict[str, str]:
    """The environment a PatchPilot process of the test runs with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHPILOT_")}
    env.update(PATCHPILOT_DATABASE_URL=database_url, PATCHPILOT_HOME=str(home),
               # A test server never updates the knowledge base itself: it would download
               # the feeds (no test reaches the internet), and tests load what they need.
               PATCHPILOT_FEED_UPDATE_INTERVAL="off")
    return env


def patchpilot(*args: str, env: dict[str, str], check: bool = True
               ) -> subprocess.CompletedProcess[str]:
    """Run a ``patchpilot`` command to completion."""
    return subprocess.run([sys.executable, "-m", "patchpilot.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=check)


class ServerProcess:
    """``patchpilot server`` in the background."""

    def __init__(self, env: dict[str, str], port: int | None = None, workers: int = 1,
                 processes: int = 1) -> None:
        self.env = env
        self.port = port or free_port()
        self.workers = workers  # job workers inside the server (--job-workers)
        self.processes = processes  # server processes on the one port (--workers)
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start and wait (``timeout`` seconds at most) until /api/health answers."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "patchpilot.cli", "server", "--port", str(self.port),
             "--job-workers", str(self.workers), "--workers", str(self.processes)],
            env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not answer /api/health within {timeout:.0f} s")

    def stop(self, kill: bool = False) -> None:
        """Stop (SIGKILL with ``kill``: a crash, not a clean shutdown)."""
        if self.proc is None:
            return
        stop_process(self.proc, kill=kill, timeout=20)
        self.proc = None


def wait_for(predicate, timeout: float = 30.0, every: float = 0.3):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)
