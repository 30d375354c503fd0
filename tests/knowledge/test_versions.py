"""Version ordering per ecosystem, on real version strings from ../shared/data."""

from __future__ import annotations

import functools
import json
import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from univers.versions import AlpineLinuxVersion, DebianVersion, RpmVersion

from patchpilot.errors import PatchPilotError, VersionError
from patchpilot.knowledge.versions import VersionKey, compare, is_affected, version_key
from patchpilot.models import AffectedRange
from tests.conftest import SHARED_DATA

DATA = SHARED_DATA
DPKG_STATUS = DATA / "inventories" / "debian12-dpkg-status"
ALMALINUX8 = DATA / "osv" / "almalinux" / "almalinux8"
ALPINE_SECDB = DATA / "osv" / "alpine-secdb"

# Real data must be there: the fixture fails the run (never skips) when it is missing.
needs_data = pytest.mark.usefixtures("shared_data")


def _cmp(a: object, b: object) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


@functools.cache
def dpkg_versions() -> list[str]:
    """Every ``Version:`` field of the real Debian 12 status file, in file order."""
    return re.findall(r"^Version: (.*)$", DPKG_STATUS.read_text(), re.M)


@functools.cache
def almalinux_versions() -> list[str]:
    """Every fixed version in the AlmaLinux 8 OSV records (epoch:version-release)."""
    found: set[str] = set()
    for path in sorted(ALMALINUX8.glob("*.json")):
        for affected in json.loads(path.read_text()).get("affected", []):
            for rng in affected.get("ranges", []):
                found.update(e["fixed"] for e in rng.get("events", []) if "fixed" in e)
    return sorted(found)


@functools.cache
def alpine_versions() -> list[str]:
    """Every secfixes version in the Alpine secdb files (pkgver-rN)."""
    found: set[str] = set()
    for path in sorted(ALPINE_SECDB.glob("*/*.yaml")):
        for pkg in yaml.safe_load(path.read_text()).get("packages") or []:
            found.update(str(v) for v in pkg["pkg"].get("secfixes") or {})
    return sorted(found)


# ---------------------------------------------------------------------------------------
# dpkg
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1:1.0", "2.0", 1),  # the epoch wins
        ("1.0~rc1", "1.0", -1),  # tilde before end of string
        ("1.0~rc1", "1.0~~", 1),
        ("3.0.11-1~deb12u2", "3.0.11-1", -1),  # stable backport below the unstable upload
        ("2.36-9+deb12u4", "2.36-9+deb12u3", 1),
        ("2.36-9+deb12u10", "2.36-9+deb12u9", 1),  # digit runs compare as numbers
        ("1.0a", "1.0+", -1),  # letters before non-letters
        ("1.0", "1.00", 0),
        ("1.0", "1.0-0", 0),  # absent revision equals "0"
        ("1.2.3", "1.2.3.0", -1),
        ("0:2.9.14+dfsg-1.3~deb12u1", "2.9.14+dfsg-1.3~deb12u1", 0),
        ("7.88.1-10+deb12u8", "7.88.1-10+deb12u12", -1),
        ("1:9.18.28-1~deb12u2", "1:9.18.33-1~deb12u2", -1),
        ("2.0-1-1", "2.0-1", 1),  # revision after the last hyphen
    ],
)
def test_dpkg_order(a: str, b: str, expected: int) -> None:
    assert compare("Debian:12", a, b) == expected
    assert compare("Debian:12", b, a) == -expected
    assert compare("Ubuntu:22.04", a, b) == expected


@needs_data
def test_every_debian12_status_version_parses() -> None:
    versions = dpkg_versions()
    assert len(versions) == 710
    keys = [version_key("Debian:12", v) for v in versions]
    assert all(isinstance(k, VersionKey) for k in keys)


@needs_data
def test_dpkg_sorted_like_univers_on_real_versions() -> None:
    versions = sorted(set(dpkg_versions()))
    ours = sorted(versions, key=lambda v: version_key("Debian:12", v))
    theirs = sorted(versions, key=DebianVersion)
    # Equal versions may land in either order; compare the ordering, not the strings.
    assert [DebianVersion(v) for v in ours] == [DebianVersion(v) for v in theirs]
    # "0~…" (a pre-release of 0) before "0.0~git…" before "0.0.7"; epoch 4 last.
    assert ours[:3] == ["0~20171227-0.3+deb12u1", "0.0~git20230123.b2528b0-1", "0.0.7-1"]
    assert ours[-2:] == ["2:9.0.1378-2+deb12u2", "4:12.2.0-3"]


# ---------------------------------------------------------------------------------------
# rpm
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1:1.26.0-14.el8_3", "1.27.0-1.el8", 1),  # epoch 1 beats the missing epoch 0
        ("1.26.0-14.el8_3", "1.27.0-1.el8", -1),
        ("1.26.0-14.el8_3", "1.26.0-14.el8", 1),  # el8_3 is a later z-stream than el8
        ("3.6.8-51.el8_8.1", "3.6.8-51.el8_8", 1),
        ("1.0~rc1-1", "1.0-1", -1),  # tilde: pre-release
        ("1.0^git1-1", "1.0-1", 1),  # caret: post-release snapshot ...
        ("1.0^git1-1", "1.0.1-1", -1),  # ... but before the next real release
        ("1.0~rc1^git1-1", "1.0~rc1-1", 1),
        ("1.0a-1", "1.0-1", 1),  # a longer string is newer
        ("1.0-1", "1.0.a-1", -1),
        ("2.0", "2a", 1),  # numeric segment beats alpha
        ("1.0.01-1", "1.0.1-1", 0),  # leading zeros ignored; separators only separate
        ("1_0-1", "1.0-1", 0),
        ("0:4.18-1.el8", "4.18-1.el8", 0),
    ],
)
def test_rpm_order(a: str, b: str, expected: int) -> None:
    assert compare("AlmaLinux:8", a, b) == expected
    assert compare("Rocky Linux:9", b, a) == -expected


@needs_data
def test_rpm_agrees_with_univers_on_almalinux_fixed_versions() -> None:
    versions = almalinux_versions()
    assert len(versions) == 6612
    assert "1:1.26.0-14.el8_3" in versions
    ours = sorted(versions, key=lambda v: version_key("AlmaLinux:8", v))
    theirs = sorted(versions, key=RpmVersion)
    assert [RpmVersion(v) for v in ours] == [RpmVersion(v) for v in theirs]
    for a, b in zip(ours, ours[1:], strict=False):
        assert compare("AlmaLinux:8", a, b) <= 0


# ---------------------------------------------------------------------------------------
# apk
# ---------------------------------------------------------------------------------------


def test_apk_suffix_order() -> None:
    # apk-tools version.c: _alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg
    # < _p, then -rN.  A _p release is a newer *upstream* version, so it sorts after every
    # revision of the plain one: 1.2.3-r1 < 1.2.3_p1-r0 (apk version -t 1.2.3-r1 1.2.3_p1-r0
    # prints "<").
    ordered = [
        "1.2.3_alpha-r0", "1.2.3_alpha2-r0", "1.2.3_beta1-r0", "1.2.3_pre1-r0",
        "1.2.3_rc1-r0", "1.2.3-r0", "1.2.3-r1", "1.2.3_cvs-r0", "1.2.3_svn-r0",
        "1.2.3_git20240101-r0", "1.2.3_hg-r0", "1.2.3_p1-r0", "1.2.3_p2-r0", "1.2.3a-r0",
        "1.2.3.1-r0", "1.2.4-r0",
    ]
    scrambled = ordered[1::2] + ordered[::2]
    assert sorted(scrambled, key=lambda v: version_key("Alpine:3.18", v)) == ordered
    assert compare("Alpine:3.18", "1.2.3_rc1-r0", "1.2.3-r0") == -1
    assert compare("Alpine:3.18", "1.2.3-r0", "1.2.3_p1-r0") == -1
    assert compare("Alpine:3.18", "1.2.3_p1-r0", "1.2.3-r1") == 1
    assert compare("Alpine:3.18", "1.2.3-r0", "1.2.3-r1") == -1
    assert compare("Alpine:3.18", "1.01-r0", "1.1-r0") == -1  # apk's leading-zero rule
    assert compare("Wolfi", "1.2.3-r10", "1.2.3-r9") == 1


@needs_data
def test_apk_agrees_with_univers_on_alpine_secdb() -> None:
    versions = alpine_versions()
    assert len(versions) == 1411
    valid = [v for v in versions if AlpineLinuxVersion.is_valid(v)]
    assert len(valid) == 1396
    ours = sorted(valid, key=lambda v: version_key("Alpine:3.18", v))
    theirs = sorted(valid, key=AlpineLinuxVersion)
    assert [AlpineLinuxVersion(v) for v in ours] == [AlpineLinuxVersion(v) for v in theirs]


@needs_data
def test_apk_reads_secdb_versions_univers_rejects() -> None:
    rejected = [v for v in alpine_versions() if not AlpineLinuxVersion.is_valid(v)]
    assert rejected == [
        "0.12.5.-r0", "0.8.21.r2", "1.0.4.-r0", "1.11-20-r0", "1.18.-r2", "1.7.5.-r1",
        "10.2.22.r0", "10.2.24.r0", "10.2.26.r0", "2.15.r-r1", "2.7.16-33", "4.10-1-r1",
        "4.8.0.-r1", "57-1-r2", "6.6.2p1-r0",
    ]
    for v in rejected:
        version_key("Alpine:3.18", v)
    # Typos of real fixes still order against their neighbours.
    assert compare("Alpine:3.18", "10.2.22.r0", "10.2.24.r0") == -1
    assert compare("Alpine:3.18", "6.6.2p1-r0", "6.6.2-r0") == 1


# ---------------------------------------------------------------------------------------
# Language ecosystems
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("eco", "a", "b", "expected"),
    [
        ("PyPI", "1.0rc1", "1.0", -1),
        ("PyPI", "1.0", "1.0.post1", -1),
        ("PyPI", "1.0.dev1", "1.0a1", -1),
        ("PyPI", "1.0", "1.0.0", 0),
        ("PyPI", "1!0.1", "2.0", 1),
        ("PyPI", "0.1-foo", "0.1", -1),  # legacy sorts before every PEP 440 version
        ("PyPI", "2004d", "0.0.1", -1),
        ("PyPI", "dev", "0.1-foo", -1),  # legacy ordering among legacy versions
        ("npm", "1.2.3-beta.1", "1.2.3", -1),
        ("npm", "1.2.3-beta.2", "1.2.3-beta.10", -1),  # numeric identifiers by value
        ("npm", "1.2.3-alpha", "1.2.3-alpha.1", -1),
        ("npm", "v1.2.3", "=1.2.3", 0),
        ("npm", "4.17.21", "4.17.20", 1),
        ("crates.io", "0.10.0", "0.9.9", 1),
        ("Go", "v1.2.3", "v0.0.0-20210101000000-abcdef123456", 1),
        ("Go", "v0.0.0-20210101000000-abcdef123456", "v0.0.0", -1),  # pseudo before v0.0.0
        ("Go", "v0.0.0-20210101000000-abcdef123456", "v0.0.0-20220101000000-0123456789ab", -1),
        ("Go", "v2.0.0+incompatible", "v2.0.0", 0),  # build metadata has no precedence
        ("Go", "go1.21.3", "1.21.3", 0),
        ("Go", "go1.21rc2", "go1.21.0", -1),
        ("Go", "go1.21", "go1.21.0", 0),
        ("Go", "go1.20.9", "go1.21rc2", -1),
        ("Maven", "1.0-SNAPSHOT", "1.0", -1),
        ("Maven", "1.0.RELEASE", "1.0", 0),
        ("Maven", "5.3.20.RELEASE", "5.3.21", -1),
        ("Maven", "1.0.Final", "1.0", 0),
        ("Maven", "1.0-alpha-1", "1.0-beta-1", -1),
        ("Maven", "2.13.4.2", "2.13.4", 1),
        ("NuGet", "1.0.0-beta", "1.0.0", -1),
        ("NuGet", "1.0.0.1", "1.0.0", 1),
        ("RubyGems", "1.0.0.pre", "1.0.0", -1),
        ("RubyGems", "5.0.0.1", "5.0.0", 1),
        ("Packagist", "v2.1.0", "2.0.9", 1),
        ("Hackage", "1.10", "1.9", 1),
        ("CRAN", "1.0-2", "1.0-10", -1),
        ("CRAN", "1.0", "1.0.0", 0),
    ],
)
def test_language_order(eco: str, a: str, b: str, expected: int) -> None:
    assert compare(eco, a, b) == expected
    assert compare(eco, b, a) == -expected


def test_pep440_legacy_does_not_raise() -> None:
    key = version_key("PyPI", "0.1-foo")
    assert key.tier == 0
    assert version_key("PyPI", "0.1").tier == 1


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("eco", "version"),
    [
        ("Debian:12", ""), ("Debian:12", "   "), ("Debian:12", "abc:1.0"), ("Debian:12", "1:"),
        ("AlmaLinux:8", ""), ("AlmaLinux:8", "1:"), ("Alpine:3.18", ""),
        ("PyPI", ""), ("npm", "~~~"), ("Go", ""), ("Hackage", "..."), ("Debian:12", "1.0 2"),
    ],
)
def test_unreadable_raises_version_error(eco: str, version: str) -> None:
    with pytest.raises(VersionError) as info:
        version_key(eco, version)
    assert info.value.ecosystem == eco
    assert info.value.version == version
    assert isinstance(info.value, PatchPilotError)


# ---------------------------------------------------------------------------------------
# is_affected (OSV semantics)
# ---------------------------------------------------------------------------------------

DEB = "Debian:12"


@pytest.mark.parametrize(
    ("version", "ranges", "versions", "expected"),
    [
        # introduced <= v < fixed
        ("3.0.11-1~deb12u1", [AffectedRange("0", "3.0.11-1~deb12u2")], [], True),
        ("3.0.11-1~deb12u2", [AffectedRange("0", "3.0.11-1~deb12u2")], [], False),
        ("3.0.11-1~deb12u3", [AffectedRange(None, "3.0.11-1~deb12u2")], [], False),
        ("2.0-1", [AffectedRange("2.1", "3.0")], [], False),  # before introduced
        ("2.1", [AffectedRange("2.1", "3.0")], [], True),  # introduced is inclusive
        # introduced <= v <= last_affected
        ("1.5", [AffectedRange("1.0", last_affected="1.5")], [], True),
        ("1.5-1", [AffectedRange("1.0", last_affected="1.5")], [], False),
        # open ended: no fix yet
        ("1:9.9", [AffectedRange("1.0")], [], True),
        ("0.9", [AffectedRange("1.0")], [], False),
        ("0.1", [AffectedRange()], [], True),
        # listed versions: string or key equality
        ("1.0-1", [], ["0.9-1", "1.0-1"], True),
        ("0:1.0-1", [], ["1.0-1"], True),
        ("1.0-2", [], ["1.0-1"], False),
        # several ranges: any one suffices
        ("2.5", [AffectedRange("0", "1.0"), AffectedRange("2.0", "3.0")], [], True),
        ("1.5", [AffectedRange("0", "1.0"), AffectedRange("2.0", "3.0")], [], False),
        # unreadable bounds skip their range, never crash and never widen it
        ("1.0", [AffectedRange("0", "")], [], False),
        ("1.0", [AffectedRange("bad:1", "2.0")], [], False),
        ("1.0", [AffectedRange("bad:1", "2.0"), AffectedRange("0", "1.1")], [], True),
        ("1.0", [AffectedRange("0", last_affected="x:y")], [""], False),
    ],
)
def test_is_affected(
    version: str, ranges: list[AffectedRange], versions: list[str], expected: bool
) -> None:
    assert is_affected(DEB, version, ranges, versions) is expected


def test_is_affected_other_schemes() -> None:
    assert is_affected("AlmaLinux:8", "1:1.26.0-14.el8", [AffectedRange("0", "1:1.26.0-14.el8_3")],
                       []) is True
    assert is_affected("Alpine:3.18", "1.2.3-r1", [AffectedRange("0", "1.2.3_p1-r0")], []) is True
    assert is_affected("PyPI", "2.0rc1", [AffectedRange("1.0", "2.0")], []) is True
    assert is_affected("PyPI", "1.0.0", [], ["1.0"]) is True  # key equality
    assert is_affected("npm", "1.2.3", [AffectedRange("0", "1.2.3-beta.1")], []) is False


def test_is_affected_unreadable_installed_raises() -> None:
    with pytest.raises(VersionError):
        is_affected(DEB, "", [AffectedRange("0", "1.0")], [])
    with pytest.raises(VersionError):
        is_affected("AlmaLinux:8", "1:-1", [], ["1:-1"])


# ---------------------------------------------------------------------------------------
# Properties: a total order, and the same one as univers's
# ---------------------------------------------------------------------------------------

_dpkg_chunk = st.text(alphabet="0123456789abz.+~", min_size=1, max_size=6)
dpkg_like = st.builds(
    lambda epoch, up, rev: f"{epoch}{up}{rev}",
    st.sampled_from(["", "1:", "2:"]),
    st.builds(lambda d, rest: d + rest, st.sampled_from("0123456789"), _dpkg_chunk),
    st.one_of(st.just(""), st.builds(lambda r: "-" + r, _dpkg_chunk)),
)
rpm_like = st.builds(
    lambda epoch, v, r: f"{epoch}{v}{r}",
    st.sampled_from(["", "1:", "0:"]),
    st.text(alphabet="0123456789ab._~^", min_size=1, max_size=8),
    st.one_of(st.just(""), st.builds(lambda r: "-" + r,
                                     st.text(alphabet="0123456789el._~^", min_size=1,
                                             max_size=8))),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(dpkg_like, min_size=3, max_size=3))
def test_dpkg_total_order_agrees_with_univers(vs: list[str]) -> None:
    a, b, c = vs
    assert compare(DEB, a, b) == -compare(DEB, b, a)
    if compare(DEB, a, b) <= 0 and compare(DEB, b, c) <= 0:
        assert compare(DEB, a, c) <= 0
    if DebianVersion.is_valid(a) and DebianVersion.is_valid(b):
        assert compare(DEB, a, b) == _cmp(DebianVersion(a), DebianVersion(b))


@settings(max_examples=300, deadline=None)
@given(st.lists(rpm_like, min_size=3, max_size=3))
def test_rpm_total_order_agrees_with_univers(vs: list[str]) -> None:
    eco = "AlmaLinux:9"
    a, b, c = vs
    assert compare(eco, a, b) == -compare(eco, b, a)
    if compare(eco, a, b) <= 0 and compare(eco, b, c) <= 0:
        assert compare(eco, a, c) <= 0
    assert compare(eco, a, b) == _cmp(RpmVersion(a), RpmVersion(b))


ALL_SCHEMES = ["Debian:12", "AlmaLinux:8", "Alpine:3.18", "PyPI", "npm", "Go", "Maven", "NuGet",
               "RubyGems", "Packagist", "Hackage"]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(ALL_SCHEMES), st.text(max_size=20), st.text(max_size=20))
def test_any_string_orders_or_raises_version_error(eco: str, a: str, b: str) -> None:
    try:
        result = compare(eco, a, b)
    except VersionError:
        return
    assert result == -compare(eco, b, a)


@needs_data
@settings(max_examples=200, deadline=None)
@given(st.data())
def test_sorting_real_lists_is_consistent(data: st.DataObject) -> None:
    for eco, pool in (("Debian:12", dpkg_versions()), ("AlmaLinux:8", almalinux_versions()),
                      ("Alpine:3.18", alpine_versions())):
        sample = data.draw(st.lists(st.sampled_from(pool), min_size=2, max_size=30))
        ordered = sorted(sample, key=lambda v, e=eco: version_key(e, v))
        for a, b in zip(ordered, ordered[1:], strict=False):
            assert compare(eco, a, b) <= 0
        # Any permutation sorts to the same sequence of keys: the order is total.
        shuffled = data.draw(st.permutations(sample))
        again = sorted(shuffled, key=lambda v, e=eco: version_key(e, v))
        assert [version_key(eco, v) for v in again] == [version_key(eco, v) for v in ordered]
