"""The ``firmware`` version scheme of ecosystem CPE (devices' firmware)."""

from __future__ import annotations

import pytest

from patchpilot.errors import VersionError
from patchpilot.knowledge.cpe_names import identify, label
from patchpilot.knowledge.ecosystems import scheme_of
from patchpilot.knowledge.versions import comparable, compare, version_key


def test_scheme() -> None:
    assert scheme_of("CPE") == "firmware"


@pytest.mark.parametrize(("older", "newer"), [
    ("7.2.4", "7.2.5"), ("7.2.9", "7.2.10"), ("6.4.15", "7.0.0"),  # FortiOS
    ("15.2(4)M7", "15.2(4)M10"), ("15.2(4)M7", "15.2(5)M1"), ("12.2(55)SE", "12.2(55)SE12"),
    ("21.4R3", "21.4R3-S5"), ("21.4R3-S4", "21.4R3-S5"), ("21.4", "21.4R1"),  # JunOS
    ("21.4R3-S5", "22.1R1"), ("10.2.9", "10.2.9-h1"), ("10.2.9-h1", "10.2.9-h3"),  # PAN-OS
    ("10.2.9-h3", "10.2.10"), ("Rev.15.02.28", "Rev.15.02.29"), ("1.0.5", "1.0.10"),
])
def test_order(older: str, newer: str) -> None:
    assert compare("CPE", older, newer) == -1
    assert compare("CPE", newer, older) == 1
    assert comparable(version_key("CPE", older), version_key("CPE", newer))


@pytest.mark.parametrize(("a", "b"), [
    ("15.2(4)M7", "15.2(4)m7"),  # NVD lower-cases exact versions
    ("Rev.15.02.29", "15.2.29"), ("v7.2.4", "7.2.4"), ("10.2.9-h1", "10.2.9h1"),
])
def test_equal(a: str, b: str) -> None:
    assert compare("CPE", a, b) == 0


@pytest.mark.parametrize(("a", "b"), [
    ("15.2(4)M7", "15.2(4)T3"), ("15.2(4)M7", "15.2(5)T1"), ("21.4R3", "21.4X53-D10"),
    ("7.2.4", "7.2.beta"),
])
def test_other_trains_are_not_comparable(a: str, b: str) -> None:
    assert not comparable(version_key("CPE", a), version_key("CPE", b))


@pytest.mark.parametrize("text", ["", "unknown", "FortiOS 7.2.4", "7.2.4,build1396",
                                  "7.2.4 build1396", "21.1*", "23,2", "n/a"])
def test_unreadable(text: str) -> None:
    with pytest.raises(VersionError):
        version_key("CPE", text)


def test_identify() -> None:
    assert identify("Fortinet", "FortiOS") == "fortinet:fortios"
    assert identify("  FORTINET ", "fortios") == "fortinet:fortios"
    assert identify("Juniper Networks", "Junos OS") == "juniper:junos"
    assert identify("Palo Alto Networks", "PAN-OS") == "paloaltonetworks:pan-os"
    assert identify("Fortinet", "FortiProxy") == "fortinet:fortiproxy"
    # Near misses are not guessed: another spelling, the product alone, a vendor prefix.
    assert identify("Fortinet", "Fortinet FortiOS") is None
    assert identify("Fortinet", "FortiOS 7.2") is None
    assert identify("Juniper", "Junos OS") is None
    assert identify(None, "FortiOS") is None


def test_label() -> None:
    assert label("fortinet:fortios") == "FortiOS"
    assert label("fortinet:fortiweb") == "fortiweb"
