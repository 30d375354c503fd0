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
from patchpilot.knowledge.lang_versions import composer_normalize
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


# rpm's own tests/rpmvercmp.at (rpm.vercmp(a, b) results), tilde and caret cases included.
RPMVERCMP_AT = """
1.0 1.0 0; 1.0 2.0 -1; 2.0.1 2.0 1; 2.0.1a 2.0.1 1; 5.5p1 5.5p2 -1; 5.5p1 5.5p10 -1;
10xyz 10.1xyz -1; xyz10 xyz10.1 -1; xyz.4 8 -1; xyz.4 2 -1; 5.5p2 5.6p1 -1; 5.6p1 6.5p1 -1;
6.0.rc1 6.0 1; 10b2 10a1 1; 10a2 10b2 -1; 1.0aa 1.0a 1; 10.0001 10.1 0; 10.0001 10.0039 -1;
4.999.9 5.0 -1; 20101121 20101122 -1; 2_0 2.0 0; a+ a_ 0; +a _a 0; _+ +_ 0; + _ 0;
1b.fc17 1.fc17 -1; 1g.fc17 1.fc17 1;
1.0~rc1 1.0 -1; 1.0~rc1 1.0~rc2 -1; 1.0~rc1~git123 1.0~rc1 -1;
1.0^ 1.0 1; 1.0^git1 1.0 1; 1.0^git1 1.0^git2 -1; 1.0^git1 1.01 -1; 1.0^20160101 1.0.1 -1;
1.0^20160102 1.0^20160101^git1 1; 1.0~rc1^git1 1.0~rc1 1; 1.0^git1 1.0^git1~pre 1
"""


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [tuple(case.split()[:2]) + (int(case.split()[2]),)
     for case in RPMVERCMP_AT.replace("\n", " ").split(";")],
)
def test_rpm_vercmp_at(a: str, b: str, expected: int) -> None:
    assert compare("Fedora:40", a, b) == expected
    assert compare("Fedora:40", b, a) == -expected


def test_rpm_non_numeric_epoch_is_part_of_the_version() -> None:
    # parseEVR takes an epoch only from leading digits before ':'; "x:1.0-1" is version
    # "x:1.0" (':' separates segments), release "1" -- not an error.
    assert compare("AlmaLinux:8", "x:1.0-1", "x.1.0-1") == 0
    assert compare("AlmaLinux:8", "x:1.0-1", "x:1.1-1") == -1
    assert compare("AlmaLinux:8", "x:1.0-1", "1.0-1") == -1  # alpha segment < numeric one
    assert compare("AlmaLinux:8", ":1.0-1", "0:1.0-1") == 0  # an empty epoch is 0
    assert compare("AlmaLinux:8", "1a:2-1", "1a.2-1") == 0


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


# apk-tools' test/version.data ("a op b" as `apk version -t a b` prints op).
APK_VERSION_DATA = """
2.34 > 0.1.0_alpha; 23_foo > 4_beta; 1.0 < 1.0bc; 0.1.0_alpha2 > 0.1.0_alpha;
1.1 > 1.1_alpha1; 1.2 < 1.3_alpha; 3.10.18-r1 > 2.3.0b-r1; 2.3.0b-r1 < 2.3.0b-r2;
1.2.11 < 1.2.12.1; 3.1_p16 < 3.1_p17; 1.06-r6 < 006; 006 > 1.0.0; 1.2.2-r1 > 1.2.2;
3.9.8-r5 > 2.01.01_alpha10; 1.0 > 0.99.3.20040818; 1.39 > 1.00_beta2; 20060720 > 3.0.20060720;
2.5.1-r8 < 2.5.1a-r1; 1.3.5-r10 > 1.3.5-r8; 20040401 > 2.0.0_rc3-r1; 3.0.0-r2 < 021109-r3;
0.9.16-r1 < 3.9_pre20060124; 1.1.7 < 6b-r7; 0.10.0-r1 > 0.10.0; 0.10.0 < 0.10.1_rc1;
0.15.1b-r2 > 0.15.1b; 2.10.1 > 02.08.01b; 3.81 > 1.6d; 1.6d > 1.2.07.8; 1.2.07.8 < 1.2.12.04;
1.2.12.04 < 1.2.12.05; 1.07-r1 < 1.07.5; 3.3.17 > 0.59s-r11; 0.20070118 < 0.20070207_rc1;
4.5_p1-r1 > 4.5_p1; 0.9.8c-r1 < 0.9.8d; 1.7 < 1.7b; 1.8.5 < 1.8.5_p2;
2.9.11_pre20051101-r3 > 2.9.11_pre20051101; 1.6.8_p12-r1 > 1.6.8_p9-r2; 0.9.28.1 < 087-r1;
104-r11 > 104-r9; 2.12r-r4 < 2.12r-r5; 7.0.17 < 7.0.174; 1.3_pre1-r1 < 1.3.2;
1.0_p10-r0 > 1.0_p9-r0; 0.1.0_alpha_pre2 < 0.1.0_alpha; 0.2.0-r1 = 0.2.0-r1;
1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
"""


@pytest.mark.parametrize(
    ("a", "op", "b"),
    [tuple(case.split()) for case in APK_VERSION_DATA.replace("\n", " ").split(";")],
)
def test_apk_version_data(a: str, op: str, b: str) -> None:
    expected = {"<": -1, "=": 0, ">": 1}[op]
    assert compare("Alpine:3.20", a, b) == expected
    assert compare("Alpine:3.20", b, a) == -expected


def test_apk_invalid_versions_as_apk() -> None:
    eco = "Alpine:3.20"
    # apk reads lower-case letters only: "1.0A" stops at "A" (an invalid token), and a
    # version that turns invalid sorts before one that simply ends.
    assert compare(eco, "1.0A", "1.0") == -1
    assert compare(eco, "1.0A", "1.0B") == 0  # both invalid after equal tokens: equal
    assert compare(eco, "1.0_RC1", "1.0") == -1  # suffixes are lower-case names
    assert compare(eco, "1.0_foo", "1.0") == -1  # an unknown suffix is invalid
    assert compare(eco, "1.0-foo", "1.0") == -1  # "-" must be "-rN"
    assert compare(eco, "1.0", "1.0-r0") == -1
    assert compare(eco, "1.0~abc1-r0", "1.0-r0") == 1  # a ~commit-hash goes before -rN
    assert compare(eco, "1.0~abc1-r0", "1.0~abc2-r0") == -1
    assert compare(eco, "abc", "0") == -1  # no leading digit: invalid from the start
    assert compare(eco, "1.0_cvs", "1.0_p") == -1


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
# Packagist: Composer's VersionParser::normalize, then PHP's version_compare
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normalized"),
    [  # composer/semver tests/VersionParserTest.php, successfulNormalizedVersions
        ("1.0.0", "1.0.0.0"), ("1.2.3.4", "1.2.3.4"), ("1.0.0RC1dev", "1.0.0.0-RC1-dev"),
        ("1.0.0-rC15-dev", "1.0.0.0-RC15-dev"), ("1.0.0.RC.15-dev", "1.0.0.0-RC15-dev"),
        ("1.0.0-rc1", "1.0.0.0-RC1"), ("1.0.0.pl3-dev", "1.0.0.0-patch3-dev"),
        ("1.0-dev", "1.0.0.0-dev"), ("0", "0.0.0.0"), ("10.4.13beta.2", "10.4.13.0-beta2"),
        ("10.4.13-b5", "10.4.13.0-beta5"), ("v1.0.0", "1.0.0.0"), ("2010.01", "2010.01.0.0"),
        ("v20100102", "20100102"), ("2010-01-02", "2010.01.02"),
        ("20100102-203040-p1", "20100102.203040-patch1"),
        ("1.x-dev", "1.9999999.9999999.9999999-dev"), ("dev-feature-foo", "dev-feature-foo"),
        ("DEV-FOOBAR", "dev-FOOBAR"), ("master", "dev-master"),
        ("1.0.0-beta.5+foo", "1.0.0.0-beta5"), ("1.0.0-alpha-2.1-3+foo", "1.0.0.0-alpha2.1-3"),
        ("1.0.0+foo as 2.0", "1.0.0.0"), ("00.01.03.04", "00.01.03.04"), ("0700", "0700.0.0.0"),
        (" 1.0.0", "1.0.0.0"), ("1.0.0@dev", "1.0.0.0"), ("v1.13.11-beta.0", "1.13.11.0-beta0"),
    ],
)
def test_composer_normalize(given: str, normalized: str) -> None:
    assert composer_normalize(given) == normalized


@pytest.mark.parametrize("bad", ["", "a", "1.0.0-meh", "1.0.0.0.0", "feature-foo", "1.0.0+foo bar"])
def test_composer_normalize_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid version string"):
        composer_normalize(bad)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # composer/semver tests/ComparatorTest.php (compareProvider)
        ("1.25.0-beta2.1", "1.25.0-b.3", -1), ("1.25.0-b2.1", "1.25.0beta.3", -1),
        ("1.25.0-b-2.1", "1.25.0-rc", -1), ("1.25.0-beta2.1", "1.25.0-b.2.1", 0),
        ("1.25.0beta2.1", "1.25.0-b2.1", 0), ("1.25.0", "1.24.0", 1),
        # a fourth numeric segment counts (misread as equal before: fixes were missed)
        ("6.3.0.0", "6.3.0.1", -1), ("6.3.0", "6.3.0.1", -1), ("1.0", "1.0.0.0", 0),
        # stability flags, case-insensitive, numbered by value
        ("1.0-RC1", "1.0-rc1", 0), ("1.0-Beta", "1.0-beta", 0), ("1.0-BETA2", "1.0-b2", 0),
        ("1.0-beta9", "1.0-beta10", -1), ("1.0-beta", "1.0-beta1", -1),
        # dev < alpha < beta < RC < stable < patch
        ("1.0-dev", "1.0-alpha", -1), ("1.0-alpha", "1.0-beta", -1), ("1.0-beta", "1.0-RC", -1),
        ("1.0-RC", "1.0", -1), ("1.0", "1.0-p1", -1), ("1.0", "1.0-pl1", -1),
        ("1.0-patch1", "1.0-patch2", -1), ("1.0-patch9", "1.0.1", -1),
        ("1.0.0-beta1-dev", "1.0.0-beta1", -1), ("1.0.0-dev", "1.0.0-alpha1", -1),
        ("v2.1.0", "2.0.9", 1), ("2010-01-02", "2010.01.03", -1),
    ],
)
def test_composer_order(a: str, b: str, expected: int) -> None:
    assert compare("Packagist", a, b) == expected
    assert compare("Packagist", b, a) == -expected


def test_composer_branches_are_not_ordered() -> None:
    # Composer's constraints never match a dev-<branch>; the matcher cannot judge it.
    with pytest.raises(VersionError):
        version_key("Packagist", "dev-main")
    assert is_affected("Packagist", "6.3.0.0", [AffectedRange("0", "6.3.0.1")]) is True
    assert is_affected("Packagist", "6.3.0.1", [AffectedRange("0", "6.3.0.1")]) is False
    assert is_affected("Packagist", "2.0.0-RC1", [AffectedRange("2.0.0-beta1", "2.0.0")]) is True


# ---------------------------------------------------------------------------------------
# Maven: ComparableVersion
# ---------------------------------------------------------------------------------------

# maven compat/maven-artifact ComparableVersionTest: each list is in strictly rising order.
MAVEN_QUALIFIER_ORDER = [
    "1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2", "1-m11",
    "1-rc", "1-cr2", "1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2", "1-sp123", "1-abc", "1-def",
    "1-pom-1", "1-1-snapshot", "1-1", "1-2", "1-123",
]
MAVEN_NUMBER_ORDER = [
    "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1",
    "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11",
    "11.a", "11b", "11c", "11m",
]


@pytest.mark.parametrize("ordered", [MAVEN_QUALIFIER_ORDER, MAVEN_NUMBER_ORDER])
def test_maven_documented_orders(ordered: list[str]) -> None:
    for i, low in enumerate(ordered):
        for high in ordered[i + 1:]:
            assert compare("Maven", low, high) == -1, (low, high)
            assert compare("Maven", high, low) == 1, (high, low)
    scrambled = ordered[1::2] + ordered[::2]
    assert sorted(scrambled, key=lambda v: version_key("Maven", v)) == ordered


@pytest.mark.parametrize(
    ("a", "b"),
    [  # ComparableVersionTest testVersionsEqual / testVersionsHaveSameOrderButAreNotEqual
        ("1", "1.0.0"), ("1", "1-0"), ("1.0", "1.0-0"), ("1a", "1-a"), ("1a", "1.0.0-a"),
        ("1.0.0x", "1-x"), ("1cr", "1rc"), ("1a1", "1-alpha-1"), ("1b2", "1-beta-2"),
        ("1m3", "1-milestone-3"), ("1X", "1x"), ("1Cr", "1Rc"), ("1m3", "1MILESTONE3"),
        ("1ga", "1"), ("1release", "1"), ("1final", "1"), ("1RELeaSE", "1"), ("1FINAL", "1"),
        ("1.0-ga", "1.0"), ("5.3.20.RELEASE", "5.3.20"), ("1.0.0-ALPHA1", "1.0.0-alpha1"),
        ("2-RC", "2.0.0.RC"), ("2-abc", "2.0.abc"),  # MNG-7644: .X reads as -X
        ("0000000000000000001", "1"), ("000", "0"),
    ],
)
def test_maven_equal(a: str, b: str) -> None:
    assert compare("Maven", a, b) == 0
    assert version_key("Maven", a) == version_key("Maven", b)
    assert hash(version_key("Maven", a)) == hash(version_key("Maven", b))


@pytest.mark.parametrize(
    ("low", "high"),
    [  # ComparableVersionTest testVersionComparing and the MNG edge cases
        ("1.0-alpha-1", "1.0"), ("1.0-alpha-1", "1.0-beta-1"), ("1.0-beta-1", "1.0-SNAPSHOT"),
        ("1.0-SNAPSHOT", "1.0"), ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"), ("1.0", "1.0-1"),
        ("1.0.0", "1.0-1"), ("2.0-1", "2.0.1"), ("2.0.1-klm", "2.0.1-lmn"), ("2.0.1", "2.0.1-xyz"),
        ("2.0.1-xyz", "2.0.1-123"), ("6.1.0rc3", "6.1.0"), ("6.1.0rc3", "6.1H.5-beta"),
        ("6.1.0", "6.1H.5-beta"), ("1234567890.12345", "123456789012345.1H.5-beta"),
        ("123456789012345.1H.5-beta", "12345678901234567890.1H.5-beta"),
        ("1-0.alpha", "1-0.beta"), ("1-0.beta", "1"), ("1.0.0.RC1", "1.0.0-RC2"),
        ("1.0.final-redhat", "1.0-sp1-redhat"), ("1.0.final-redhat", "1.0-sp.1-redhat"),
        ("c", "7"), ("aardvark", "zebra"),
        # milestone < rc == cr < snapshot < "" == ga == final == release < sp
        ("1.0-M3", "1.0-RC1"), ("1.0-CR2", "1.0-RC3"), ("1.0-RC3", "1.0-SNAPSHOT"),
        ("1.0.Final", "1.0-SP1"), ("1.0-SP1", "1.0.1"), ("5.3.20.RELEASE", "5.3.21"),
        # "-ga-N": a release qualifier with a number is past the release, before "-N"
        ("1", "1-ga-1"), ("1-ga-1", "1-ga-2"), ("1-ga-2", "1-1"), ("1.0-final-1", "1.0-sp"),
        # a leading "v" is a qualifier, as in Maven: below every plain number
        ("v1.2", "v1.3"), ("v2.0", "1.0"),
    ],
)
def test_maven_order(low: str, high: str) -> None:
    assert compare("Maven", low, high) == -1
    assert compare("Maven", high, low) == 1


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


_lang_piece = st.sampled_from(["1", "2", "0", "10", ".", "-", "a", "b", "rc", "ga", "sp", "final",
                               "alpha", "x", "snapshot", "m", "p", "pl", "dev", "beta", "RC"])
lang_like = st.lists(_lang_piece, min_size=1, max_size=6).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["Maven", "Packagist"]), st.lists(lang_like, min_size=3, max_size=3))
def test_maven_and_composer_orders_are_total(eco: str, vs: list[str]) -> None:
    try:
        a, b, c = (version_key(eco, v) for v in vs)
    except VersionError:
        return
    assert (a < b) == (b > a) and (a == b) == (b == a)
    if a <= b and b <= c:
        assert a <= c
