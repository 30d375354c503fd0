"""apt lists as ``commands.apt_index`` hands them over: decompressed and filtered on the
host, then parsed (this machine's own lists, and the captured bookworm-security excerpt)."""

from __future__ import annotations

import asyncio
import gzip
import os
from pathlib import Path

import pytest

from patchpilot.inventory.host import commands
from patchpilot.inventory.host.apt_lists import INDEX_END, INDEX_FAILED, index_text
from patchpilot.inventory.sources.apt_pending import parse_packages_index, security_list_files
from patchpilot.inventory.transports.local import LocalHost

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "apt"


def _fetch(path: Path) -> str | None:
    out = asyncio.run(LocalHost().run(commands.apt_index(str(path)), 60))
    return index_text(out) if out is not None else None


def test_index_text() -> None:
    assert index_text(f"Package: jq\nVersion: 1\n\n{INDEX_END}\n") == "Package: jq\nVersion: 1\n\n"
    assert index_text(f"{INDEX_END}\n") == ""  # an empty index
    assert index_text(f"{INDEX_FAILED}\n{INDEX_END}\n") is None  # cannot decompress
    assert index_text("Package: jq\n") is None  # cut short: no filter, or killed


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_filtered_index_parses_as_the_whole(tmp_path: Path, suffix: str) -> None:
    """Filtering keeps exactly what the parser reads: same offers as the whole file."""
    whole = (FIXTURES / "bookworm-security_Packages").read_bytes()
    path = tmp_path / ("deb.debian.org_debian-security_dists_bookworm-security_main_"
                       f"binary-amd64_Packages{suffix}")
    path.write_bytes(gzip.compress(whole) if suffix else whole)
    text = _fetch(path)
    assert text is not None
    assert len(text) < len(whole) / 3
    assert parse_packages_index(text, str(path)) == parse_packages_index(
        whole.decode(), "whole")


def test_missing_or_corrupt_list_is_none(tmp_path: Path) -> None:
    assert _fetch(tmp_path / "x_Packages.lz4") is None
    broken = tmp_path / "x_Packages.gz"
    broken.write_bytes(b"not gzip")
    assert _fetch(broken) is None


def test_this_machines_security_lists() -> None:
    try:
        names = os.listdir("/var/lib/apt/lists")
    except OSError:
        pytest.skip("no apt lists on this machine")
    files = security_list_files(names, "bookworm")
    if not files:
        pytest.skip("no bookworm-security apt list on this machine")
    for name in files:
        text = _fetch(Path("/var/lib/apt/lists") / name)
        assert text is not None
        assert len(parse_packages_index(text, name)) > 1000
