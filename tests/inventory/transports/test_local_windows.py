"""The agent's Windows path on this (Linux) machine: no powershell.exe here, so what can be
checked honestly is how the runner fails -- missing program, failing program, timeout --
with real processes, and that the agent takes the Windows path on ``win32``."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from patchpilot.agent.runtime import Agent, AgentConfig
from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.transports.local import LocalPowerShell, collect_local_windows


def test_missing_powershell_is_a_clear_error() -> None:
    with pytest.raises(InventoryFormatError) as caught:
        collect_local_windows()
    assert str(caught.value) == ("powershell.exe: not found: collecting Windows needs "
                                 "Windows PowerShell 5.1 (powershell.exe)")


def test_failing_program_says_its_exit_status_and_last_words() -> None:
    runner = LocalPowerShell(("sh", "-c", "cat >/dev/null; echo first >&2; echo "
                                          "'Access is denied.' >&2; exit 3"))
    with pytest.raises(InventoryFormatError) as caught:
        asyncio.run(runner.run_script("$x = 1", 10))
    assert str(caught.value) == ("sh: the Windows collection script failed (exit status 3): "
                                 "first Access is denied.")


def test_script_goes_in_on_standard_input() -> None:
    assert asyncio.run(LocalPowerShell(("cat",)).run_script("$x = 1", 10)) == (
        "& {\n$x=1\n}\n\n")


def test_timeout_ends_the_program() -> None:
    started = time.monotonic()
    with pytest.raises(InventoryFormatError, match=r"^sleep: the Windows collection script "
                                                   r"took longer than 0\.5 s$"):
        asyncio.run(LocalPowerShell(("sleep", "30")).run_script("", 0.5))
    assert time.monotonic() - started < 10


def test_agent_on_windows_runs_the_windows_collection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = Agent(AgentConfig(server="http://127.0.0.1:9", state_dir=tmp_path))
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(InventoryFormatError, match=r"^powershell\.exe: not found"):
        agent.collect()
    assert agent.spool.pending() == []


def test_agent_state_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    from patchpilot.agent.runtime import default_state_dir

    monkeypatch.setattr(sys, "platform", "win32")
    assert str(default_state_dir()) == r"C:\ProgramData\PatchPilot\agent"
