"""Network devices over SSH: a target marked ``platform=<ntc-templates platform>`` gets
its identifying command (``show version``, ``get system status``, …) and nothing else.

There is no Cisco, FortiGate nor Juniper device here, and no stand-in for one: the tests
use a real sshd on a loopback port whose ``ForceCommand`` writes down each command line it
is asked to run and then runs it as it was (so ``show`` is really missing).  That shows
the exact command a device would get -- no probe, no sudo, no nice -- that host keys are
verified as for any host, and that a failing command ends as a clear per-host ``failed``
status beside a Linux host scanned in the same run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from patchpilot.inventory.transports.ssh import (
    HostStatus,
    SshOptions,
    SshOptionsError,
    SshTarget,
    scan_hosts_sync,
)
from tests.sshd import SshServer, sshd_problem, start_sshd

END = "--end-of-command--"


@pytest.fixture(scope="module")
def recording_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """An sshd that appends every command line to ``commands.log``, then runs it."""
    problem = sshd_problem()
    if problem:
        pytest.skip(problem)
    folder = tmp_path_factory.mktemp("sshd-network")
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


@pytest.mark.parametrize(("platform", "command"), [
    ("cisco_ios", "show version"),
    ("fortinet", "get system status"),
    ("paloalto_panos", "show system info"),
    ("juniper_junos", "show version"),
])
def test_a_device_gets_its_one_command_and_fails_clearly(
        recording_sshd: SshServer, tmp_path: Path, platform: str, command: str) -> None:
    target = SshTarget.parse(f"root@127.0.0.1:{recording_sshd.port} platform={platform}")
    assert target.platform == platform
    _commands(recording_sshd)
    # --sudo is asked for: a device has no sudo, so it is not even checked.
    [result] = scan_hosts_sync([target], _options(recording_sshd, tmp_path, sudo=True))
    assert result.status is HostStatus.failed
    assert result.inventory is None
    word = command.split()[0]
    assert result.error == (f"`{command}` failed on this {platform} device (exit status "
                            f"127): /bin/sh: 1: {word}: not found")
    # No probe, no sudo check, no nice: the one command, exactly as the device takes it.
    assert _commands(recording_sshd) == [command]


def test_a_device_whose_host_key_is_unknown_is_refused(recording_sshd: SshServer,
                                                       tmp_path: Path) -> None:
    target = SshTarget.parse(f"root@127.0.0.1:{recording_sshd.port} platform=cisco_ios")
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    _commands(recording_sshd)
    [result] = scan_hosts_sync([target], _options(recording_sshd, tmp_path,
                                                   known_hosts=empty))
    assert result.status is HostStatus.host_key_refused
    assert _commands(recording_sshd) == []  # nothing ran


def test_device_and_linux_targets_in_one_scan(recording_sshd: SshServer, sshd: SshServer,
                                              tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(recording_sshd.known_hosts_line() + sshd.known_hosts_line())
    options = SshOptions(identities=(recording_sshd.client_key, sshd.client_key),
                         known_hosts=known, use_agent=False, max_concurrent=2, python=False)
    device = SshTarget.parse(f"root@127.0.0.1:{recording_sshd.port} platform=fortinet")
    linux = SshTarget("127.0.0.1", sshd.port, "root")
    _commands(recording_sshd)
    results = scan_hosts_sync([device, linux], options)
    assert [r.status for r in results] == [HostStatus.failed, HostStatus.scanned]
    assert results[0].error == ("`get system status` failed on this fortinet device (exit "
                                "status 127): /bin/sh: 1: get: not found")
    assert results[1].inventory is not None and results[1].inventory.device is None
    assert _commands(recording_sshd) == ["get system status"]


def test_platform_option_is_parsed_and_printed() -> None:
    target = SshTarget.parse("admin@[2001:db8::1]:2222 platform=juniper_junos")
    assert (target.host, target.port, target.user, target.os, target.platform) == (
        "2001:db8::1", 2222, "admin", None, "juniper_junos")
    assert str(target) == "admin@[2001:db8::1]:2222 platform=juniper_junos"
    assert SshTarget.parse(str(target)) == target


@pytest.mark.parametrize(("text", "message"), [
    ("fw1 platform=cisco_wlc", "'fw1 platform=cisco_wlc': no identifying command is known "
                               "for platform 'cisco_wlc' (known: alcatel_aos, "),
    ("fw1 platform=", "no identifying command is known for platform ''"),
    ("fw1 platform=fortinet os=linux", "a network device (platform=) has no os= of its own"),
    ("fw1 vendor=cisco", "'vendor=cisco' is not an option (os=windows, os=linux or "
                         "platform=<ntc-templates platform>)"),
])
def test_bad_platform_options_are_refused(text: str, message: str) -> None:
    with pytest.raises(SshOptionsError) as caught:
        SshTarget.parse(text)
    assert message in str(caught.value)
