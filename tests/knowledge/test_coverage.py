"""Coverage on real feeds and real inventories: the knowledge base's advisories per
ecosystem (kept by every advisory write), an inventory's ecosystems judged against them,
and the estate's -- on SQLite and PostgreSQL.

The knowledge base: twelve real PyPI advisories of Django (PYSEC) and Alpine 3.10's
secdb (main).  The inventories: a real npm lock (no npm advisory loaded: not covered), a
real poetry lock (PyPI: covered), a real apk database of an Alpine 3.16 image (its release
is not loaded: not covered) and this build machine's own Debian 12 dpkg status.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from patchpilot.db.tables import affected, asset_ecosystems, knowledge_coverage
from patchpilot.findings.coverage import asset_coverage, estate_coverage
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.findings.scan import scan_inventory
from patchpilot.inventory.transports.file import read_inventory_file
from patchpilot.knowledge.coverage import (
    MIN_ADVISORIES,
    EcosystemCoverage,
    advisories_loaded,
    judge,
    refresh,
)
from patchpilot.knowledge.update import update_from

NPM_LOCK = "inventories/npm-package-lock/osv-scanner__fix__in-place-npm__package-lock.json"
POETRY_LOCK = "inventories/poetry-lock/syft__python__poetry__simple-deps__poetry.lock"
APK_316 = "inventories/apk-installed/syft__alpine__multiple-2__lib__apk__db__installed"
DPKG_12 = "inventories/debian12-dpkg-status"
ALPINE_310 = "osv/alpine-secdb/v3.10/main.yaml"


def _django(shared_data: Path, n: int) -> dict[str, Path]:
    """The first ``n`` Django advisories of the PyPI advisory database (by file name)."""
    files = sorted((shared_data / "osv/pypi/django").glob("PYSEC-*.yaml"))[:n]
    return {f"osv/{p.name}": p for p in files}


@pytest.fixture
def kb(engine: Engine, feed_dir: Callable[..., Path], shared_data: Path) -> Engine:
    """Twelve Django advisories and Alpine 3.10's secdb, loaded by ``db update``."""
    root = feed_dir({**_django(shared_data, 12), "alpine/main.yaml": ALPINE_310})
    assert {r.status for r in update_from(engine, [root])} == {"loaded"}
    return engine


def _grouped(engine: Engine) -> dict[str, tuple[int, int]]:
    """The counts straight from ``affected`` (what the table must equal)."""
    with engine.connect() as conn:
        return {e: (int(a), int(n)) for e, a, n in conn.execute(
            select(affected.c.ecosystem, func.count(affected.c.advisory_pk.distinct()),
                   func.count()).group_by(affected.c.ecosystem))}


def _table(engine: Engine) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        return {r.ecosystem: (r.advisories, r.affected)
                for r in conn.execute(select(knowledge_coverage))}


def _count_lines(path: Path, prefix: str) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.startswith(prefix))


def test_the_counts_follow_every_advisory_write(kb: Engine, feed_dir: Callable[..., Path],
                                                shared_data: Path, tmp_path: Path) -> None:
    # Alpine's secdb: one advisory per (package, CVE) fix of main.yaml.
    table = _table(kb)
    assert table == _grouped(kb)
    assert set(table) == {"PyPI", "Alpine:3.10"}
    assert table["PyPI"] == (12, 12)  # each PYSEC names one package: django
    assert table["Alpine:3.10"][0] == 1111
    # Three advisories gone from the folder: the next update removes them and the count
    # follows, in the same transaction -- now under the threshold.
    root = tmp_path / "feeds"
    for dropped in sorted((root / "osv").iterdir())[:3]:
        dropped.unlink()
    assert {r.status for r in update_from(kb, [root])} == {"loaded", "unchanged"}
    assert _table(kb) == _grouped(kb)
    assert _table(kb)["PyPI"] == (9, 9)
    with kb.connect() as conn:
        assert advisories_loaded(conn, ["PyPI", "npm"]) == {"PyPI": 9}
    # A source emptied altogether leaves no row behind for its ecosystem.
    shutil.rmtree(root / "alpine")
    (root / "alpine").mkdir()
    shutil.copyfile(shared_data / "osv/alpine-secdb/v3.10/community.yaml",
                    root / "alpine" / "community.yaml")
    update_from(kb, [root])
    kept = _table(kb)
    assert kept == _grouped(kb)
    # Kept by deltas, the counts equal a recount from scratch.
    with kb.begin() as conn:
        refresh(conn)
    assert _table(kb) == kept
    with kb.begin() as conn:
        refresh(conn, ["PyPI"])
    assert _table(kb) == kept


def test_the_threshold(kb: Engine) -> None:
    assert MIN_ADVISORIES == 10
    below = EcosystemCoverage("PyPI", 3, MIN_ADVISORIES - 1)
    at = EcosystemCoverage("PyPI", 3, MIN_ADVISORIES)
    assert (below.covered, at.covered) == (False, True)
    assert below.describe() == "not covered: PyPI 3 packages (9 advisories loaded)"
    assert EcosystemCoverage("npm", 1, 1).describe() == (
        "not covered: npm 1 package (1 advisory loaded)")
    # Not covered first, then the most packages first.
    assert judge({"PyPI": 5, "npm": 978, "Go": 2, "Maven": 0}, {"PyPI": 12}) == [
        EcosystemCoverage("npm", 978, 0), EcosystemCoverage("Go", 2, 0),
        EcosystemCoverage("PyPI", 5, 12)]


def test_an_npm_lock_with_no_npm_advisory_is_not_covered(kb: Engine,
                                                          shared_data: Path) -> None:
    inv = read_inventory_file(shared_data / NPM_LOCK)
    result = scan_inventory(kb, inv)
    assert result.findings == ()
    # Every package of the lock but the root project itself ("packages" key "").
    assert len(inv.packages) == 106
    assert result.coverage == (EcosystemCoverage("npm", 106, 0),)
    assert [c.describe() for c in result.not_covered()] == [
        "not covered: npm 106 packages (0 advisories loaded)"]


def test_a_poetry_lock_is_covered_by_the_pypi_advisories(kb: Engine,
                                                         shared_data: Path) -> None:
    path = shared_data / POETRY_LOCK
    result = scan_inventory(kb, read_inventory_file(path))
    packages = _count_lines(path, "[[package]]")
    assert result.coverage == (EcosystemCoverage("PyPI", packages, 12),)
    assert result.not_covered() == []
    assert result.coverage[0].describe() == (
        f"covered: PyPI {packages} packages (12 advisories loaded)")


def test_an_alpine_release_whose_feed_is_not_loaded_is_not_covered(
        kb: Engine, shared_data: Path) -> None:
    path = shared_data / APK_316
    result = scan_inventory(kb, read_inventory_file(path, "Alpine:3.16"))
    # Alpine 3.10's 1,111 advisories say nothing about 3.16.
    assert result.coverage == (EcosystemCoverage("Alpine:3.16", _count_lines(path, "P:"), 0),)
    assert result.findings == ()


def test_the_estate_and_an_asset(kb: Engine, shared_data: Path) -> None:
    dpkg = read_inventory_file(shared_data / DPKG_12, "Debian:12", hostname="plant3-ci")
    npm = read_inventory_file(shared_data / NPM_LOCK, hostname="shop-frontend")
    poetry = read_inventory_file(shared_data / POETRY_LOCK, hostname="shop-api")
    apk = read_inventory_file(shared_data / APK_316, "Alpine:3.16", hostname="edge-proxy")
    ids = {inv.asset.hostname: ingest_inventory(kb, inv).asset_id
           for inv in (dpkg, npm, poetry, apk)}
    poetry_packages = len(poetry.packages)
    with kb.connect() as conn:
        estate = estate_coverage(conn)
        assert estate == [
            EcosystemCoverage("Debian:12", 710, 0, 1),
            EcosystemCoverage("npm", 106, 0, 1),
            EcosystemCoverage("Alpine:3.16", 14, 0, 1),
            EcosystemCoverage("PyPI", poetry_packages, 12, 1)]
        assert asset_coverage(conn, ids["plant3-ci"]) == [
            EcosystemCoverage("Debian:12", 710, 0)]
        # A scope: the two shop assets.
        assert estate_coverage(conn, [ids["shop-frontend"], ids["shop-api"]]) == [
            EcosystemCoverage("npm", 106, 0), EcosystemCoverage("PyPI", poetry_packages, 12)]
        assert estate_coverage(conn, []) == []
    # The same host again with a second lock: its rows are replaced, not added to.
    ingest_inventory(kb, read_inventory_file(shared_data / POETRY_LOCK,
                                             hostname="shop-frontend"))
    with kb.connect() as conn:
        assert asset_coverage(conn, ids["shop-frontend"]) == [
            EcosystemCoverage("PyPI", poetry_packages, 12)]
        assert conn.execute(select(func.count()).select_from(asset_ecosystems)).scalar() == 4


def test_migration_fills_both_tables_from_the_stored_rows(kb: Engine, shared_data: Path,
                                                          migrate: Callable[..., None]) -> None:
    dpkg = read_inventory_file(shared_data / DPKG_12, "Debian:12", hostname="plant3-ci")
    npm = read_inventory_file(shared_data / NPM_LOCK, hostname="shop-frontend")
    for inv in (dpkg, npm):
        ingest_inventory(kb, inv)
    with kb.connect() as conn:
        before = (_table(kb), sorted(conn.execute(select(asset_ecosystems)).all()))
    migrate(kb, "downgrade", "0011")
    migrate(kb, "upgrade", "head")
    with kb.connect() as conn:
        after = (_table(kb), sorted(conn.execute(select(asset_ecosystems)).all()))
    assert after == before
    assert sorted((r[1], r[2]) for r in after[1]) == [("Debian:12", 710), ("npm", 106)]
