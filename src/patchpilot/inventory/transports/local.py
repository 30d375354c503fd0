"""The machine PatchPilot runs on, as a ``collect.Host`` (``patchpilot scan local``, the
agent, ``patchpilot up``) -- and, on Windows, as a ``windows.collect.PowerShellHost``.

Only fetching lives here -- files read from disk, commands run as child processes, both
in worker threads so that ``inventory.collect`` can await several at once.  What is
collected, and how it is parsed, is ``inventory.collect``'s, shared with the SSH
transport.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.collect import CollectOptions, Host, run_collect
from patchpilot.inventory.model import Inventory
from patchpilot.inventory.windows.collect import (
    LOCAL_ARGV,
    SCRIPT_TIMEOUT,
    collect_windows,
    last_words,
    stdin_script,
)

_METADATA_CAP = 1 << 20  # headers longer than 1 MiB are not core metadata


def _read_bytes(path: str) -> bytes | None:
    """The file's bytes; None when absent, a folder, not permitted or failing (EIO on a
    /sys attribute): unreadable all the same to the collection."""
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _read_headers(path: str) -> bytes | None:
    """The file up to (and a little past) its first blank line: core-metadata headers."""
    chunks: list[bytes] = []
    size = 0
    try:
        with open(path, "rb") as handle:
            while size < _METADATA_CAP:
                chunk = handle.read(8192)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                # A header block split across two chunks only costs reading the next one.
                if b"\n\n" in chunk or b"\r\n\r\n" in chunk:
                    break
    except OSError:
        return None
    return b"".join(chunks)


def _run(argv: Sequence[str], timeout: float) -> str | None:
    """A command's standard output, or None when it fails, is missing or times out.

    The command gets its own process group, killed whole on timeout: a script's children
    would otherwise keep the output pipe open after the script itself was killed.
    """
    try:
        process = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, text=True, errors="replace",
            cwd="/",  # so "python -c" never imports a module from the current directory
            start_new_session=True)
    except OSError:
        return None
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None
    return out if process.returncode == 0 else None


class LocalHost(Host):
    """This machine: files read from disk, commands run as child processes."""

    async def read_file(self, path: str) -> bytes | None:
        """The file's bytes; None when absent or unreadable."""
        return await asyncio.to_thread(_read_bytes, path)

    async def run(self, argv: Sequence[str], timeout: float) -> str | None:
        """The command's standard output; None when missing, failed or timed out."""
        return await asyncio.to_thread(_run, argv, timeout)

    async def read_files(self, paths: Sequence[str], *,
                         headers_only: bool = False) -> list[bytes | None]:
        """Each file in turn in one worker thread (reading is quicker than a thread each)."""
        read = _read_headers if headers_only else _read_bytes
        return await asyncio.to_thread(lambda: [read(p) for p in paths])

    async def list_dirs(self, paths: Sequence[str]) -> list[list[str] | None]:
        """The names in each folder (None: not a readable folder), in one worker thread."""
        return await asyncio.to_thread(lambda: [_list(p) for p in paths])


def _list(path: str) -> list[str] | None:
    try:
        return os.listdir(path)
    except OSError:
        return None


def collect_local(
    python_paths: Sequence[Path | str] = (),
    include_path_pythons: bool = True,
    fetch_changelogs: bool = False,
) -> Inventory:
    """The Inventory of this machine (``collect.collect`` on a ``LocalHost``).

    ``python_paths`` adds virtualenv roots or site-packages dirs to those of the
    interpreters on PATH (``include_path_pythons=False`` reads none of them, nor the
    distribution's own site-packages).  ``fetch_changelogs=True`` also runs ``apt-get
    changelog`` for pending apt updates to learn their CVEs: the only step that uses the
    network, so it is off unless asked (``--changelogs``).  Raises InventoryFormatError
    when a package database or apt list exists but cannot be parsed, or a python path is
    not a folder.
    """
    return run_collect(LocalHost(), CollectOptions(
        python=include_path_pythons,
        python_paths=tuple(str(p) for p in python_paths),
        fetch_changelogs=fetch_changelogs,
        collector="local"))


# --- Windows --------------------------------------------------------------------------------

def _run_powershell(argv: Sequence[str], stdin: str, timeout: float) -> str:
    """Windows PowerShell's standard output for ``stdin``; InventoryFormatError naming
    the program when it is missing, fails or outlasts ``timeout`` (it is then killed)."""
    program = argv[0]
    try:
        done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                              errors="replace", timeout=timeout, check=False)
    except FileNotFoundError:
        raise InventoryFormatError(program, "not found: collecting Windows needs Windows "
                                            "PowerShell 5.1 (powershell.exe)") from None
    except subprocess.TimeoutExpired:
        raise InventoryFormatError(program, f"the Windows collection script took longer "
                                            f"than {timeout:g} s") from None
    except OSError as exc:
        raise InventoryFormatError(program, f"cannot run: {exc.strerror or exc}") from None
    if done.returncode != 0:
        raise InventoryFormatError(program, f"the Windows collection script failed (exit "
                                            f"status {done.returncode}): "
                                            f"{last_words(done.stderr)}")
    return done.stdout


class LocalPowerShell:
    """This Windows machine's PowerShell (``powershell.exe -Command -``, the script on
    standard input: no command-line limit, and nothing of it in the process list)."""

    def __init__(self, argv: Sequence[str] = LOCAL_ARGV) -> None:
        self.argv = tuple(argv)

    async def run_script(self, script: str, timeout: float) -> str:
        """The script's standard output (see ``_run_powershell``)."""
        return await asyncio.to_thread(_run_powershell, self.argv, stdin_script(script),
                                       timeout)


def collect_local_windows(timeout: float = SCRIPT_TIMEOUT) -> Inventory:
    """The schema 2 Inventory of this Windows machine (the agent on Windows).  Raises
    InventoryFormatError when PowerShell is missing or fails, or prints something that
    is not the script's output."""
    return asyncio.run(collect_windows(LocalPowerShell(), source="powershell.exe",
                                       collector="local", timeout=timeout))
