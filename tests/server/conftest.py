"""Fixtures the server's directory tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.slapd import LdapServer, slapd_or_skip, start_slapd


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    """One slapd for a module's tests (they only read the directory)."""
    slapd_or_skip()
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    try:
        yield server
    finally:
        server.stop()
