"""The SSH transport against a real OpenSSH server on loopback ports (``tests/sshd.py``).

One sshd (the ``sshd`` fixture of tests/inventory/conftest.py) serves four ports: an
ordinary one; one whose every command sleeps (a slow host, through ``ForceCommand``); two
whose PATH starts with a stand-in ``sudo`` (one that runs the command, one that wants a
password), so that ``--sudo`` is checked on a machine without sudo (Debian's container
images).  That an SSH scan and a local collection agree is tests/inventory/test_collect.py.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.inventory.host import commands as host_commands
from patchpilot.inventory.host.files import parse_marked
from patchpilot.inventory.sources.dpkg import parse_dpkg_status
from patchpilot.inventory.transports import commands
from patchpilot.inventory.transports.local import collect_local
from patchpilot.inventory.transports.ssh import (
    HostStatus,
    SessionGauge,
    SshOptions,
    SshOptionsError,
    SshTarget,
    parse_probe,
    read_targets_file,
    scan_hosts_sync,
)
from tests.sshd import SshServer, free_port, keygen


def _target(port: int) -> SshTarget:
    return SshTarget(host="127.0.0.1", port=port, user="root")


def _options(sshd: SshServer, known_hosts: Path, **changes: object) -> SshOptions:
    fields: dict[str, object] = {"identities": (sshd.client_key,), "known_hosts": known_hosts,
                                 "use_agent": False}
    fields.update(changes)
    return SshOptions(**fields)  # type: ignore[arg-type]


# --- a real scan ---------------------------------------------------------------------------

def test_scan_this_machine_over_ssh(sshd: SshServer, known_hosts: Path) -> None:
    [result] = scan_hosts_sync([_target(sshd.port)], _options(sshd, known_hosts))
    assert result.status is HostStatus.scanned, result.error
    assert result.error is None
    inventory = result.inventory
    assert inventory is not None
    assert inventory.collector.name == "ssh"
    assert inventory.complete is True
    assert inventory.asset.hostname == socket.gethostname()
    assert inventory.asset.machine_id == Path("/etc/machine-id").read_text().strip()
    assert inventory.os is not None
    assert (inventory.os.id, inventory.os.version_id) == ("debian", "12")
    assert inventory.os.kernel_running == os.uname().release
    packages = inventory.to_packages()
    debian = [p for p in packages if p.ecosystem == "Debian:12"]
    local = parse_dpkg_status(Path("/var/lib/dpkg/status").read_text(), "Debian:12",
                              "/var/lib/dpkg/status")
    assert len(debian) == len(local)
    assert set(debian) == set(local)
    # The system Python's distributions, as the local collector reads them from disk.
    dist_packages = Path("/usr/lib/python3/dist-packages")
    expected = {(p.name, p.version) for p in collect_local(
        [dist_packages], include_path_pythons=False).packages
        if p.location == str(dist_packages)}
    assert len(expected) > 20
    found = {(p.name, p.version) for p in packages
             if p.ecosystem == "PyPI" and p.location == str(dist_packages)}
    assert found == expected
    assert ("Pygments", "2.14.0") in found  # a distutils-style egg-info on Debian 12


# --- host keys -----------------------------------------------------------------------------

def test_unknown_host_key_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    [result] = scan_hosts_sync([_target(sshd.port)], _options(sshd, empty))
    assert result.status is HostStatus.host_key_refused
    assert result.inventory is None
    where = f"[127.0.0.1]:{sshd.port}"
    assert result.error == (
        f"the host key of {where} is unknown: ssh-ed25519 {sshd.host_fingerprint()} is not "
        f"in {empty}. Check the fingerprint with the host's administrator, then scan again "
        "with --trust-new-hosts (records the key) or add it yourself: "
        f"`ssh-keyscan -p {sshd.port} 127.0.0.1 >> {empty}`.")
    assert not empty.exists()


def test_changed_host_key_is_refused_even_when_trusting_new_hosts(
        sshd: SshServer, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other_host_key")
    kind, data = other.with_suffix(".pub").read_text().split()[:2]
    path = tmp_path / "known_hosts"
    recorded = f"[127.0.0.1]:{sshd.port} {kind} {data}\n"
    path.write_text(recorded)
    [result] = scan_hosts_sync([_target(sshd.port)],
                               _options(sshd, path, trust_new_hosts=True))
    assert result.status is HostStatus.host_key_refused
    assert result.error is not None
    assert result.error.startswith(
        f"the host key of [127.0.0.1]:{sshd.port} has CHANGED: it is now ssh-ed25519 "
        f"{sshd.host_fingerprint()}, which does not match the key recorded in {path}")
    assert f"ssh-keygen -f {path} -R '[127.0.0.1]:{sshd.port}'" in result.error
    assert path.read_text() == recorded  # nothing trusted, nothing overwritten


def test_trust_on_first_use_records_the_key(sshd: SshServer, tmp_path: Path) -> None:
    path = tmp_path / "ssh" / "known_hosts"  # its folder does not exist yet either
    target = _target(sshd.port)
    [first] = scan_hosts_sync([target], _options(sshd, path, trust_new_hosts=True))
    assert first.status is HostStatus.scanned, first.error
    assert path.read_text() == sshd.known_hosts_line()
    # Recorded: the next scan needs no --trust-new-hosts, and nothing is added twice.
    [second] = scan_hosts_sync([target, target][:1], _options(sshd, path))
    assert second.status is HostStatus.scanned, second.error
    assert path.read_text() == sshd.known_hosts_line()


# --- failures ------------------------------------------------------------------------------

def test_wrong_key_is_auth_failed(sshd: SshServer, known_hosts: Path, tmp_path: Path) -> None:
    wrong = keygen(tmp_path / "wrong_key")
    [result] = scan_hosts_sync([_target(sshd.port)],
                               _options(sshd, known_hosts, identities=(wrong,)))
    assert result.status is HostStatus.auth_failed
    assert result.error == (
        "authentication failed (Permission denied for user "
        "root on host 127.0.0.1); check the user, --identity, the ssh-agent or "
        "--password-env")


def test_password_refused_is_auth_failed_and_never_shown(
        sshd: SshServer, known_hosts: Path) -> None:
    secret = "correct horse battery staple"
    options = _options(sshd, known_hosts, identities=(), password=secret)
    assert secret not in repr(options)
    [result] = scan_hosts_sync([_target(sshd.port)], options)
    assert result.status is HostStatus.auth_failed
    assert secret not in (result.error or "")


def test_closed_port_is_unreachable(sshd: SshServer, known_hosts: Path) -> None:
    port = free_port()
    [result] = scan_hosts_sync([_target(port)], _options(sshd, known_hosts))
    assert result.status is HostStatus.unreachable
    assert result.error is not None
    assert result.error == "Connection refused"


def test_unknown_name_is_unreachable(sshd: SshServer, known_hosts: Path) -> None:
    [result] = scan_hosts_sync([SshTarget("no-such-host.invalid", 22, "root")],
                               _options(sshd, known_hosts))
    assert result.status is HostStatus.unreachable
    assert result.error is not None
    assert result.error.startswith("cannot resolve no-such-host.invalid: ")


def test_slow_command_times_out(sshd: SshServer, known_hosts: Path,
                                sleep_seconds: int) -> None:
    [result] = scan_hosts_sync([_target(sshd.ports[1])],
                               _options(sshd, known_hosts, command_timeout=0.5))
    assert result.status is HostStatus.timed_out
    assert result.error == "`probe` took longer than the command timeout (0.5 s)"
    assert result.seconds < sleep_seconds


def test_slow_host_times_out_without_blocking_the_others(
        sshd: SshServer, known_hosts: Path, sleep_seconds: int) -> None:
    closed = free_port()
    targets = [_target(sshd.ports[1]), _target(closed), _target(sshd.port)]
    results = scan_hosts_sync(targets, _options(sshd, known_hosts, host_timeout=8.0,
                                                command_timeout=60, python=False))
    assert [r.status for r in results] == [
        HostStatus.timed_out, HostStatus.unreachable, HostStatus.scanned]
    assert results[0].error == "the scan took longer than the host timeout (8 s)"
    assert results[0].seconds < sleep_seconds


def test_max_concurrent_is_honoured(sshd: SshServer, known_hosts: Path) -> None:
    gauge = SessionGauge()
    targets = [_target(sshd.port)] * 6
    results = scan_hosts_sync(targets, _options(sshd, known_hosts, max_concurrent=2,
                                                python=False), gauge)
    assert [r.status for r in results] == [HostStatus.scanned] * 6
    assert gauge.peak == 2
    assert gauge.current == 0


# --- sudo ----------------------------------------------------------------------------------

def test_sudo_runs_every_read_command_gently(sshd: SshServer, known_hosts: Path) -> None:
    log = sshd.folder / "sudo.log"
    log.unlink(missing_ok=True)
    [result] = scan_hosts_sync([_target(sshd.ports[2])],
                               _options(sshd, known_hosts, sudo=True))
    assert result.status is HostStatus.scanned, result.error
    assert result.inventory is not None
    # One entry per sudo call; a script's own lines continue its entry.
    calls = re.split(r"\n(?=-n )", log.read_text().rstrip("\n"))
    assert calls[0] == "-n true"
    reads = calls[1:]
    # Every read of the collection, each wrapped: the first files (facts and the package
    # database) in one batch, the folders, the Python folders and the apt security list.
    assert all(c.startswith("-n nice -n 19 ionice -c3 sh -c ") for c in reads)
    run = [c.split(" sh -c ", 1)[1] for c in reads]
    # (The stand-in's `echo` turns the scripts' \t into tabs: compare their first lines.)
    for start in ("sh -c '# list folders", "sh -c '# python site-packages",
                  "sh -c '# read an apt list", "sh -c '# dpkg file owners"):
        assert sum(c.startswith(start) for c in run) == 1, start
    batches = [c for c in run if c.startswith("for f in ")]
    # The first files (dpkg status too), the METADATA headers, then the changelogs of the
    # OS packages owning Python distributions (issue 12: backport evidence).
    assert len(batches) == 3
    [first] = [c for c in batches if " /etc/os-release " in c]
    assert all(f" {path}" in first for path in host_commands.FIRST_FILES)
    assert sum("/changelog.Debian.gz " in c for c in batches) == 1
    # Seven reads after the probe and the sudo check: the five of the collection, the
    # owners of the Python distributions found and their changelogs.
    assert len(reads) == 7


def test_sudo_wanting_a_password_fails_clearly(sshd: SshServer, known_hosts: Path) -> None:
    [result] = scan_hosts_sync([_target(sshd.ports[3])],
                               _options(sshd, known_hosts, sudo=True))
    assert result.status is HostStatus.failed
    assert result.error == (
        "--sudo: sudo needs a password for root; allow the read commands without one "
        "(NOPASSWD in sudoers) or scan without --sudo")


# --- options and pure helpers --------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("host", SshTarget("host")),
    ("admin@db1.example:2222", SshTarget("db1.example", 2222, "admin")),
    ("root@[::1]:22", SshTarget("::1", 22, "root")),
    ("10.0.0.5", SshTarget("10.0.0.5")),
])
def test_target_parse(text: str, expected: SshTarget) -> None:
    assert SshTarget.parse(text) == expected


def test_target_text_round_trips() -> None:
    assert str(SshTarget("::1", 2200, "root")) == "root@[::1]:2200"
    assert SshTarget("h", 2200).known_hosts_name == "[h]:2200"
    assert SshTarget("h").known_hosts_name == "h"


@pytest.mark.parametrize("text", ["user@", "a b", "host:99999", "host:port"])
def test_target_parse_rejects(text: str) -> None:
    with pytest.raises(SshOptionsError, match="target"):
        SshTarget.parse(text)


def test_targets_file(tmp_path: Path) -> None:
    path = tmp_path / "hosts.txt"
    path.write_text("# plant 1\nroot@10.0.0.1\n\n  admin@10.0.0.2:2222  # db\nbad host\n")
    with pytest.raises(SshOptionsError, match=r"hosts\.txt:5: 'bad host'"):
        read_targets_file(path)
    path.write_text("# plant 1\nroot@10.0.0.1\n\n  admin@10.0.0.2:2222  # db\n")
    assert read_targets_file(path) == [SshTarget("10.0.0.1", 22, "root"),
                                       SshTarget("10.0.0.2", 2222, "admin")]


def test_unreadable_identity_fails_before_connecting(tmp_path: Path) -> None:
    options = SshOptions(identities=(tmp_path / "missing_key",), known_hosts=tmp_path / "kh")
    with pytest.raises(SshOptionsError, match="--identity .*missing_key: cannot use"):
        scan_hosts_sync([SshTarget("127.0.0.1", free_port())], options)


def test_parse_probe() -> None:
    assert parse_probe("hostname=web1\nkernel=6.1.0-18-amd64\nionice=yes\n") == {
        "hostname": "web1", "kernel": "6.1.0-18-amd64", "ionice": "yes"}


def test_parse_marked() -> None:
    mark = "@@patchpilot-0123456789abcdef@@"
    whole = (f"{mark} /etc/machine-id\n4b2c8f0e6e3d4e0a\n\n"
             f"{mark} /var/run/reboot-required\n\n"  # an empty flag file
             f"{mark} /etc/hostname\nweb1\n").encode()
    assert parse_marked(whole, mark, ["/etc/machine-id", "/missing",
                                      "/var/run/reboot-required", "/etc/hostname"],
                        added_newline=True) == [b"4b2c8f0e6e3d4e0a\n", None, b"", b"web1"]
    site = "/usr/lib/python3/dist-packages"
    headers = (f"{mark} {site}/PyYAML-6.0.dist-info/METADATA\nMetadata-Version: 2.1\n"
               f"Name: PyYAML\nVersion: 6.0\n").encode()
    assert parse_marked(headers, mark, [f"{site}/PyYAML-6.0.dist-info/METADATA"],
                        added_newline=False) == [
        b"Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0\n"]


def test_read_files_command_cuts_headers_and_keeps_whole_files(tmp_path: Path) -> None:
    """The batch command itself, run by this machine's sh and awk on real files."""
    import subprocess

    metadata = tmp_path / "METADATA"
    metadata.write_text("Name: x\nVersion: 1\n\nLong description\nName: not-a-header\n")
    binary = tmp_path / "no-newline"
    binary.write_bytes(b"tail without newline")
    mark = "@@patchpilot-test@@"
    paths = [str(metadata), str(tmp_path / "missing"), str(binary)]
    for headers_only, expected in [
            (True, [b"Name: x\nVersion: 1\n", None, b"tail without newline\n"]),
            (False, [metadata.read_bytes(), None, b"tail without newline"])]:
        command = host_commands.read_files(paths, mark, headers_only=headers_only)
        out = subprocess.run(["sh", "-c", command], capture_output=True, check=True).stdout
        assert parse_marked(out, mark, paths, added_newline=not headers_only) == expected


def test_wrap() -> None:
    assert commands.wrap("cat /x", nice=False, ionice=False, sudo=False) == "cat /x"
    assert commands.wrap("cat /x", nice=True, ionice=True, sudo=True) == \
        "sudo -n nice -n 19 ionice -c3 sh -c 'cat /x'"


# --- the command line ----------------------------------------------------------------------

def test_cli_scan_ssh(sshd: SshServer, known_hosts: Path, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", f"sqlite:///{tmp_path / 'pp.db'}")
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    closed = free_port()
    targets = tmp_path / "targets.txt"
    targets.write_text(f"# the unreachable one\nroot@127.0.0.1:{closed}\n")
    result = CliRunner().invoke(app, [
        "scan", "ssh", f"root@127.0.0.1:{sshd.port}", "--targets", str(targets),
        "--identity", str(sshd.client_key), "--known-hosts", str(known_hosts),
        "--format", "json", "--max-concurrent", "2"])
    assert result.exit_code == 4, result.output
    documents = json.loads(result.stdout)
    assert [d["ssh"]["status"] for d in documents] == ["scanned", "unreachable"]
    assert documents[0]["ssh"]["target"] == f"root@127.0.0.1:{sshd.port}"
    assert documents[0]["asset"]["hostname"] == socket.gethostname()
    assert documents[0]["os"]["version_id"] == "12"
    assert documents[0]["packages"] > 100
    assert set(documents[1]) == {"ssh"}
    assert "1 of 2 host(s) not scanned." in result.stderr
    assert f"unreachable root@127.0.0.1:{closed}: Connection refused" in result.stderr


def test_cli_scan_ssh_table_all_scanned(sshd: SshServer, known_hosts: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", f"sqlite:///{tmp_path / 'pp.db'}")
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, [
        "scan", "ssh", f"root@127.0.0.1:{sshd.port}", "--identity", str(sshd.client_key),
        "--known-hosts", str(known_hosts), "--no-python"])
    assert result.exit_code == 0, result.output
    assert "SSH scan" in result.stdout
    assert "scanned" in result.stdout


def test_cli_password_env_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PP_TEST_PASSWORD", raising=False)
    result = CliRunner().invoke(app, ["scan", "ssh", "root@127.0.0.1",
                                      "--password-env", "PP_TEST_PASSWORD"])
    assert result.exit_code == 2
    assert "the environment variable PP_TEST_PASSWORD is not set or empty" in result.stderr
