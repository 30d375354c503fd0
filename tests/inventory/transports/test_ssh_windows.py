"""OpenSSH-on-Windows: the SSH transport runs the Windows PowerShell collection script.

There is no Windows nor PowerShell here, and no stand-in for either: the tests use a real
sshd on a loopback port whose ``ForceCommand`` writes down each command line it is asked
to run and then runs it as it was (so ``powershell`` is really missing).  That shows the
exact command a Windows host would get -- decoded back to the script -- and that a
target marked Windows whose command fails ends as a clear per-host ``failed`` status,
beside a Linux host scanned in the same run.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchpilot.inventory.transports import commands
from patchpilot.inventory.transports.ssh import (
    HostStatus,
    SshOptions,
    SshTarget,
    is_windows_ver,
    scan_hosts_sync,
)
from patchpilot.inventory.windows.collect import COLLECT_SCRIPT, compact, ssh_command
from tests.sshd import SshServer, sshd_problem, start_sshd

END = "--end-of-command--"


@pytest.fixture(scope="module")
def recording_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """An sshd that appends every command line to ``commands.log``, then runs it."""
    problem = sshd_problem()
    if problem:
        pytest.skip(problem)
    folder = tmp_path_factory.mktemp("sshd-recording")
    log = folder / "commands.log"
    server = start_sshd(folder, extra=(
        f"ForceCommand printf '%s\\n{END}\\n' \"$SSH_ORIGINAL_COMMAND\" >> {log}; "
        'exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n'))
    yield server
    server.stop()


def _commands(server: SshServer) -> list[str]:
    path = server.folder / "commands.log"
    text = path.read_text() if path.exists() else ""
    path.unlink(missing_ok=True)
    return [c.strip("\n") for c in text.split(END + "\n") if c.strip()]


def _options(server: SshServer, tmp_path: Path, **changes: object) -> SshOptions:
    known = tmp_path / "known_hosts"
    known.write_text("".join(server.known_hosts_line(p) for p in server.ports))
    fields: dict[str, object] = {"identities": (server.client_key,), "known_hosts": known,
                                 "use_agent": False}
    fields.update(changes)
    return SshOptions(**fields)  # type: ignore[arg-type]


def test_marked_windows_target_runs_the_encoded_script_and_fails_clearly(
        recording_sshd: SshServer, tmp_path: Path) -> None:
    target = SshTarget.parse(f"root@127.0.0.1:{recording_sshd.port} os=windows")
    _commands(recording_sshd)
    [result] = scan_hosts_sync([target], _options(recording_sshd, tmp_path))
    assert result.status is HostStatus.failed
    assert result.inventory is None
    assert result.error == ("the Windows collection script failed (powershell exit status "
                            "127): /bin/sh: 1: powershell: not found")
    # No probe, no sudo check: the one command is the script, exactly.
    [command] = _commands(recording_sshd)
    assert command == ssh_command()
    prefix = "powershell -NoProfile -NonInteractive -EncodedCommand "
    assert command.startswith(prefix)
    decoded = base64.b64decode(command.removeprefix(prefix)).decode("utf-16-le")
    assert decoded == compact(COLLECT_SCRIPT)


def test_windows_and_linux_targets_in_one_scan(recording_sshd: SshServer, sshd: SshServer,
                                               tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(recording_sshd.known_hosts_line() + sshd.known_hosts_line())
    # Each sshd authorises its own client key: offer both.
    options = SshOptions(identities=(recording_sshd.client_key, sshd.client_key),
                         known_hosts=known, use_agent=False, max_concurrent=1, python=False)
    linux = SshTarget("127.0.0.1", sshd.port, "root")
    windows = SshTarget("127.0.0.1", recording_sshd.port, "root", os="windows")
    _commands(recording_sshd)
    results = scan_hosts_sync([windows, linux], options)
    assert [r.status for r in results] == [HostStatus.failed, HostStatus.scanned]
    assert results[1].inventory is not None and results[1].inventory.windows is None
    assert results[0].error == ("the Windows collection script failed (powershell exit "
                                "status 127): /bin/sh: 1: powershell: not found")
    assert _commands(recording_sshd) == [ssh_command()]


def test_a_linux_host_costs_no_detection_round_trip(recording_sshd: SshServer,
                                                    tmp_path: Path) -> None:
    """The probe succeeds on a POSIX shell, so ``uname`` / ``cmd /c ver`` are never run."""
    target = SshTarget("127.0.0.1", recording_sshd.port, "root")
    _commands(recording_sshd)
    [result] = scan_hosts_sync([target], _options(recording_sshd, tmp_path, python=False))
    assert result.status is HostStatus.scanned, result.error
    ran = _commands(recording_sshd)
    assert ran[0] == commands.PROBE
    assert commands.UNAME not in ran
    assert commands.WINDOWS_VER not in ran
    assert not any(c.startswith("powershell") for c in ran)


@pytest.mark.parametrize(("text", "expected"), [
    ("\r\nMicrosoft Windows [Version 10.0.20348.3270]\r\n", True),
    ("\r\nMicrosoft Windows [Versión 10.0.26100.7623]\r\n", True),
    ("'ver' is not recognized as an internal or external command", False),
    ("Linux", False),
    ("", False),
])
def test_is_windows_ver(text: str, expected: bool) -> None:
    assert is_windows_ver(text) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("admin@win01 os=windows", SshTarget("win01", 22, "admin", os="windows")),
    ("admin@win01:2222  os=Windows", SshTarget("win01", 2222, "admin", os="windows")),
    ("root@db1 os=linux", SshTarget("db1", 22, "root", os="linux")),
])
def test_target_os_option(text: str, expected: SshTarget) -> None:
    assert SshTarget.parse(text) == expected
    assert SshTarget.parse(str(expected)) == expected


def test_target_os_option_rejects_others() -> None:
    from patchpilot.inventory.transports.ssh import SshOptionsError

    with pytest.raises(SshOptionsError, match=r"^t: 'win01 os=macos': 'os=macos' is not an "
                                              r"option \(os=windows, os=linux or "
                                              r"platform=<ntc-templates platform>\)$"):
        SshTarget.parse("win01 os=macos", "t")
