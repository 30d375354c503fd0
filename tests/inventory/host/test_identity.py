"""Host identity parsers, on this machine's own files and `ip` output and on captured text."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from patchpilot.inventory.host.identity import (
    cloud_instance_id,
    first_line,
    first_value,
    fqdn_from_hosts,
    parse_fib_trie,
    parse_if_inet6,
    parse_ip_addr,
)


def test_parse_ip_addr() -> None:
    text = (
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
        "1: lo    inet6 ::1/128 scope host \\       valid_lft forever\n"
        "2: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\n"
        "2: eth0    inet6 fd00::2/64 scope global \\       valid_lft forever\n"
        "2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever\n"
    )
    assert parse_ip_addr(text) == ["192.0.2.2", "fd00::2"]


@pytest.mark.skipif(shutil.which("ip") is None, reason="no ip(8) on this machine")
def test_parse_ip_addr_of_this_machine() -> None:
    text = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True,
                          check=True).stdout
    found = parse_ip_addr(text)
    # Every global address ip(8) lists, once; loopback never.
    words = text.split()
    listed = {w.split("/")[0] for k, w in zip(words, words[1:], strict=False)
              if k in ("inet", "inet6")}
    assert set(found) <= listed
    assert "127.0.0.1" not in found and "::1" not in found
    assert len(found) == len(set(found))


@pytest.mark.skipif(shutil.which("ip") is None, reason="no ip(8) on this machine")
def test_proc_net_gives_what_ip_addr_gives() -> None:
    """This machine's /proc/net/fib_trie and if_inet6 (read with the other small files,
    no iproute2 needed) name the same addresses as `ip -o addr show`."""
    text = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True,
                          check=True).stdout
    from_proc = (parse_fib_trie(Path("/proc/net/fib_trie").read_text())
                 + parse_if_inet6(Path("/proc/net/if_inet6").read_text()))
    assert sorted(from_proc) == sorted(parse_ip_addr(text))


def test_parse_fib_trie_and_if_inet6() -> None:
    trie = ("Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n"
            "     +-- 127.0.0.0/8 2 0 2\n        +-- 127.0.0.0/31 1 0 0\n"
            "           |-- 127.0.0.0\n              /8 host LOCAL\n"
            "           |-- 127.0.0.1\n              /32 host LOCAL\n"
            "     +-- 192.0.2.0/24 2 0 2\n        |-- 192.0.2.0\n"
            "           /24 link UNICAST\n        |-- 192.0.2.2\n"
            "           /32 host LOCAL\n        |-- 192.0.2.255\n"
            "           /32 link BROADCAST\n"
            "Local:\n        |-- 192.0.2.2\n           /32 host LOCAL\n")
    assert parse_fib_trie(trie) == ["192.0.2.2"]
    inet6 = ("00000000000000000000000000000001 01 80 10 80       lo\n"
             "fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n"
             "fd000000000000000000000000000002 04 40 00 82     eth0\n")
    assert parse_if_inet6(inet6) == ["fd00::2"]


def test_fqdn_from_hosts() -> None:
    hosts = "127.0.0.1 localhost\n192.0.2.5 web1.example.org web1  # main\n"
    assert fqdn_from_hosts(hosts, "web1") == "web1.example.org"
    assert fqdn_from_hosts("127.0.0.1 localhost\n", "web1") is None
    assert fqdn_from_hosts("", "db.example.org") == "db.example.org"


def test_fqdn_of_this_machine() -> None:
    """This machine's /etc/hosts, read as collection reads it (no resolver)."""
    hosts = Path("/etc/hosts").read_text()
    name = socket.gethostname()
    fqdn = fqdn_from_hosts(hosts, name)
    if fqdn is not None:
        assert fqdn.split(".", 1)[0] == name.split(".", 1)[0]
        assert any(fqdn in line.split("#", 1)[0].split()[1:] for line in hosts.splitlines())


def test_machine_id_and_hostname_files_of_this_machine() -> None:
    machine_id = Path("/etc/machine-id").read_text()
    assert first_value([None, machine_id, "other"]) == machine_id.strip()
    assert first_value([None, "\n", ""]) is None
    assert first_line(Path("/proc/sys/kernel/hostname").read_text()) == socket.gethostname()


def test_cloud_instance_id() -> None:
    assert cloud_instance_id("i-0abc123def4567890\n", None) == "i-0abc123def4567890"
    # cloud-init without a datasource; an EC2 Nitro asset tag then names the instance.
    assert cloud_instance_id("iid-datasource-none\n", "i-0fedcba9876543210\n") \
        == "i-0fedcba9876543210"
    # A vendor's asset number is not an instance id.
    assert cloud_instance_id(None, "Default string\n") is None
    assert cloud_instance_id(None, None) is None
