"""The local host: ``collect_local`` on this machine (a Debian 12 host), and LocalHost's
two methods and their batch forms on real files and commands."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import time
from pathlib import Path

import pytest

from patchpilot.inventory.model import Inventory
from patchpilot.inventory.transports.local import LocalHost, collect_local

VENV = Path(sys.prefix)  # the project's .venv when pytest runs from it


@pytest.fixture(scope="module")
def local_inventory() -> Inventory:
    """This machine's inventory, collected once for the module (with the project venv)."""
    return collect_local([VENV])


def test_collect_local_this_host(local_inventory: Inventory) -> None:
    inventory = local_inventory
    assert inventory.collector.name == "local"
    assert inventory.asset.hostname == socket.gethostname()
    assert inventory.os is not None and inventory.os.id == "debian"
    packages = inventory.to_packages()
    debian = [p for p in packages if p.ecosystem == "Debian:12"]
    status_count = len(re.findall(r"^Package:", Path("/var/lib/dpkg/status").read_text(),
                                  re.MULTILINE))
    assert 100 < len(debian) <= status_count
    libc = next(p for p in debian if p.name == "libc6")
    assert libc.source_name == "glibc" and libc.location == "/var/lib/dpkg/status"
    assert libc.purl is not None and libc.purl.startswith("pkg:deb/debian/libc6@")
    site = str(next(VENV.glob("lib/python*/site-packages")).resolve())
    pydantic = [p for p in packages if p.ecosystem == "PyPI" and p.name == "pydantic"
                and p.location == site]
    import pydantic as installed
    assert [p.version for p in pydantic] == [installed.VERSION]
    assert pydantic[0].purl == f"pkg:pypi/pydantic@{installed.VERSION}"
    assert inventory.complete is True
    assert inventory.os.kernel_running


def test_no_duplicate_python_packages(local_inventory: Inventory) -> None:
    keys = [(p.name, p.version, p.location) for p in local_inventory.packages
            if p.ecosystem == "PyPI"]
    assert len(keys) == len(set(keys))


def test_local_host_reads_and_runs(tmp_path: Path) -> None:
    host = LocalHost()
    (tmp_path / "file").write_bytes(b"a\x00b")
    (tmp_path / "METADATA").write_bytes(b"Name: x\nVersion: 1\n\n" + b"long text\n" * 5000)

    async def check() -> None:
        assert await host.read_file(str(tmp_path / "file")) == b"a\x00b"
        assert await host.read_file(str(tmp_path / "missing")) is None
        assert await host.read_file(str(tmp_path)) is None  # a folder
        assert await host.read_files([str(tmp_path / "missing"), str(tmp_path / "file")]) \
            == [None, b"a\x00b"]
        headers = await host.read_files([str(tmp_path / "METADATA")], headers_only=True)
        assert headers[0] is not None and headers[0].startswith(b"Name: x\nVersion: 1\n\n")
        assert len(headers[0]) == 8192  # the first chunk holds the blank line: no more read
        [names, not_folder] = await host.list_dirs([str(tmp_path), str(tmp_path / "file")])
        assert sorted(names or []) == ["METADATA", "file"]
        assert not_folder is None
        assert await host.run(("echo", "hi"), 5) == "hi\n"
        assert await host.run(("false",), 5) is None
        assert await host.run(("no-such-command-patchpilot",), 5) is None

    asyncio.run(check())


def test_timeout_kills_the_whole_command() -> None:
    """A script's background child holds its output open; the timeout still ends it."""
    started = time.monotonic()
    out = asyncio.run(LocalHost().run(("sh", "-c", "sleep 30 & sleep 30; wait"), 0.5))
    assert out is None
    assert time.monotonic() - started < 10
