"""The matcher's labelled accuracy set: real advisories, real versions, exact verdicts.

Each test builds a knowledge base from a handful of real advisory files, then asks what a
host with given packages is affected by.  Covered: Debian's tracker (a backported fix that
must not be reported, a release that must not be judged by another release's data, a
"not affected" verdict, an unfixed vulnerability), AlmaLinux epoch-ful rpm versions,
PyPI and Go, and versions no rule can read (undetermined, never dropped).
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from patchpilot.knowledge.matcher import MatchResult, match_packages
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package

DEBIAN_TRACKER = "distro/vunnel-fixtures/debian/input/debian.json"


def _load(engine: Engine, feed_dir, files: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    results = update_from(engine, [feed_dir(files)])
    assert [r.status for r in results] == ["loaded"] * len(results), results


def _match(engine: Engine, *packages: Package) -> MatchResult:
    with engine.connect() as conn:
        return match_packages(conn, packages)


def _verdicts(result: MatchResult) -> set[tuple[str, str, str, str | None]]:
    return {(m.vuln_id, m.name, m.version, m.fixed) for m in result.matches}


def deb(release: str, name: str, version: str, source: str | None = None) -> Package:
    """A dpkg package on a Debian release."""
    return Package(Ecosystem(f"Debian:{release}"), name, version, arch="amd64",
                   source_name=source)


@pytest.fixture
def tracker(engine: Engine, feed_dir) -> Engine:  # type: ignore[no-untyped-def]
    _load(engine, feed_dir, {"debian/debian.json": DEBIAN_TRACKER})
    return engine


def test_debian_backported_fix_is_not_reported(tracker: Engine) -> None:
    # sope 5.8.0-1+deb12u1 is Debian's backport of the fix for CVE-2025-53603 into
    # bookworm; upstream fixed it only in 5.12.1.  The tracker says fixed: not reported.
    assert _match(tracker, deb("12", "sope", "5.8.0-1+deb12u1")).matches == ()


def test_debian_vulnerable_version_reports_the_backport_as_fix(tracker: Engine) -> None:
    result = _match(tracker, deb("12", "sope", "5.8.0-1"))
    assert _verdicts(result) == {("CVE-2025-53603", "sope", "5.8.0-1", "5.8.0-1+deb12u1")}
    (m,) = result.matches
    assert (m.feed, m.advisory_id, m.affected_range) == (
        "debian-tracker", "CVE-2025-53603", "< 5.8.0-1+deb12u1")


def test_debian_release_is_never_judged_by_another_release(tracker: Engine) -> None:
    # 5.0.1-2+deb11u1 is bullseye's fix.  Judged by bookworm's data (fixed in
    # 5.8.0-1+deb12u1) it would look vulnerable; it is not.
    assert _match(tracker, deb("11", "sope", "5.0.1-2+deb11u1")).matches == ()
    assert _verdicts(_match(tracker, deb("11", "sope", "5.0.1-2"))) == {
        ("CVE-2025-53603", "sope", "5.0.1-2", "5.0.1-2+deb11u1")}
    # No data for Debian 13's sope at this version: trixie's fix 5.12.1-2 is the bound.
    assert _verdicts(_match(tracker, deb("13", "sope", "5.10.0-1"))) == {
        ("CVE-2025-53603", "sope", "5.10.0-1", "5.12.1-2")}


def test_debian_binary_package_matches_through_its_source(tracker: Engine) -> None:
    result = _match(tracker, deb("12", "libsope1", "5.8.0-1", source="sope"),
                    deb("12", "libsope-appserver4.9", "5.8.0-1", source="sope"))
    assert _verdicts(result) == {("CVE-2025-53603", "sope", "5.8.0-1", "5.8.0-1+deb12u1")}
    (m,) = result.matches
    assert sorted(p.name for p in m.packages) == ["libsope-appserver4.9", "libsope1"]
    assert (result.packages, result.distinct) == (2, 1)


def test_debian_open_issue_is_reported_unfixed(tracker: Engine) -> None:
    result = _match(tracker, deb("10", "chromium", "90.0.4430.212-1~deb10u1"))
    assert _verdicts(result) == {
        ("CVE-2022-0456", "chromium", "90.0.4430.212-1~deb10u1", None)}
    assert result.matches[0].unfixed
    assert result.matches[0].affected_range == "all versions"


def test_debian_not_affected_and_fixed_long_ago(tracker: Engine) -> None:
    # CVE-2007-2383: "resolved" with fixed_version 0 (never affected Debian's package);
    # CVE-2008-7220: fixed in 1.6.0.2-1, older than buster's 1.7.1-3.
    assert _match(tracker, deb("10", "prototypejs", "1.7.1-3")).matches == ()
    assert _verdicts(_match(tracker, deb("10", "prototypejs", "1.6.0-1"))) == {
        ("CVE-2008-7220", "prototypejs", "1.6.0-1", "1.6.0.2-1")}


ALMA = {f"alma/{n}.json": f"osv/almalinux/almalinux8/{n}.json"
        for n in ("ALSA-2022:1065", "ALSA-2022:5818", "ALSA-2023:1405")}


def alma(name: str, version: str) -> Package:
    """An rpm package on AlmaLinux 8."""
    return Package(Ecosystem("AlmaLinux:8"), name, version, arch="x86_64",
                   source_name="openssl")


def test_almalinux_epoch_versions(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    _load(engine, feed_dir, ALMA)
    # rpm packages match by binary name (the OSV records list binaries), not source.
    old = Package(Ecosystem("AlmaLinux:8"), "openssl-libs", "1:1.1.1k-5.el8_5")
    assert _verdicts(_match(engine, old)) == {
        ("CVE-2022-0778", "openssl-libs", "1:1.1.1k-5.el8_5", "1:1.1.1k-6.el8_5"),
        ("CVE-2022-1292", "openssl-libs", "1:1.1.1k-5.el8_5", "1:1.1.1k-7.el8_6"),
        ("CVE-2022-2068", "openssl-libs", "1:1.1.1k-5.el8_5", "1:1.1.1k-7.el8_6"),
        ("CVE-2022-2097", "openssl-libs", "1:1.1.1k-5.el8_5", "1:1.1.1k-7.el8_6"),
        ("CVE-2023-0286", "openssl-libs", "1:1.1.1k-5.el8_5", "1:1.1.1k-9.el8_7"),
        ("CVE-2022-4304", "openssl-libs", "1:1.1.1k-5.el8_5", "1:1.1.1k-9.el8_7"),
        ("CVE-2022-4450", "openssl-libs", "1:1.1.1k-5.el8_5", "1:1.1.1k-9.el8_7"),
        ("CVE-2023-0215", "openssl-libs", "1:1.1.1k-5.el8_5", "1:1.1.1k-9.el8_7"),
    }
    newer = Package(Ecosystem("AlmaLinux:8"), "openssl", "1:1.1.1k-7.el8_6")
    assert {m.vuln_id for m in _match(engine, newer).matches} == {
        "CVE-2023-0286", "CVE-2022-4304", "CVE-2022-4450", "CVE-2023-0215"}
    # Without the epoch, 1.1.1k-… is older than every 1:… fix … but an AlmaLinux 9 host
    # is never judged by AlmaLinux 8 data.
    nine = Package(Ecosystem("AlmaLinux:9"), "openssl", "1:1.1.1k-5.el8_5")
    assert _match(engine, nine).matches == ()
    assert _match(engine, Package(Ecosystem("AlmaLinux:8"), "openssl",
                                  "1:1.1.1k-9.el8_7")).matches == ()


def test_pypi_range_and_name_normalisation(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    _load(engine, feed_dir, {"pypi/PYSEC-2023-117.yaml": "osv/pypi/pygments/PYSEC-2023-117.yaml"})
    result = _match(engine, Package(Ecosystem("PyPI"), "Pygments", "2.14.0"))
    assert _verdicts(result) == {("CVE-2022-40896", "pygments", "2.14.0", "2.15.1")}
    assert result.matches[0].advisory_id == "PYSEC-2023-117"
    assert _match(engine, Package(Ecosystem("PyPI"), "pygments", "2.15.1")).matches == ()


def test_unreadable_version_is_undetermined_not_dropped(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    _load(engine, feed_dir, {"pypi/PYSEC-2023-117.yaml": "osv/pypi/pygments/PYSEC-2023-117.yaml"})
    bad = Package(Ecosystem("PyPI"), "pygments", "")
    legacy = Package(Ecosystem("PyPI"), "pygments", "0.1-foo")  # pip's legacy ordering
    result = _match(engine, bad, legacy)
    assert [(u.package.version, u.advisory_ids) for u in result.undetermined] == [
        ("", ("PYSEC-2023-117",))]
    # A legacy version sorts before every PEP 440 version: inside "< 2.15.1".
    assert _verdicts(result) == {("CVE-2022-40896", "pygments", "0.1-foo", "2.15.1")}


def test_no_rows_for_unknown_packages(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    _load(engine, feed_dir, ALMA)
    result = _match(engine, Package(Ecosystem("AlmaLinux:8"), "bash", "4.4.20-4.el8_6"),
                    Package(Ecosystem("npm"), "lodash", "4.17.20"))
    assert (result.matches, result.undetermined, result.distinct) == ((), (), 2)
