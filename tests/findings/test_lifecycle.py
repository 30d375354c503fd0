"""Ingest and the finding lifecycle on real advisories: new, fixed, reopened, triaged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, insert, select

from patchpilot import worker
from patchpilot.clock import now_utc
from patchpilot.db.tables import asset_packages, findings, inventories, triage_decisions
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package

FEEDS = {
    "osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json",
    "osv/PYSEC-2023-117.yaml": "osv/pypi/pygments/PYSEC-2023-117.yaml",
}
OLD_FIREFOX = Package(Ecosystem("AlmaLinux:8"), "firefox", "91.6.0-1.el8_5.alma")
NEW_FIREFOX = Package(Ecosystem("AlmaLinux:8"), "firefox", "91.7.0-3.el8_5.alma")
OLD_PYGMENTS = Package(Ecosystem("PyPI"), "Pygments", "2.14.0")


@pytest.fixture
def kb(engine: Engine, feed_dir) -> Engine:  # type: ignore[no-untyped-def]
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    return engine


def _inventory(*packages: Package, complete: bool = True) -> Inventory:
    return Inventory.from_packages(list(packages), complete=complete,
                                   asset=AssetIdentity(hostname="plant2-ws-11",
                                                       machine_id="4f0c2a9e"),
                                   collector=Collector(name="agent"))


def _scan(engine: Engine, inv: Inventory, key: str | None = None) -> int:
    result = ingest_inventory(engine, inv, idempotency_key=key)
    job = worker.HANDLERS["match"]
    return job(engine, _job(result.inventory_id))["asset_id"]  # type: ignore[no-any-return]


def _job(inventory_id: int):  # type: ignore[no-untyped-def]
    from patchpilot.queue import Job

    return Job(0, "match", {"inventory_id": inventory_id}, 1, None, None, None, None)


def _states(engine: Engine) -> dict[tuple[str, str], str]:
    with engine.connect() as conn:
        return {(r.vuln_id, r.package): r.state for r in conn.execute(select(findings))}


def test_new_fixed_reopened(kb: Engine) -> None:
    asset = _scan(kb, _inventory(OLD_FIREFOX, OLD_PYGMENTS))
    states = _states(kb)
    # ALSA-2022:0818 fixes ten CVEs in firefox; PYSEC-2023-117 one in pygments.
    assert len(states) == 11 and set(states.values()) == {"open"}
    assert states[("CVE-2022-40896", "pygments")] == "open"

    _scan(kb, _inventory(NEW_FIREFOX, OLD_PYGMENTS))
    states = _states(kb)
    assert sum(s == "fixed" for s in states.values()) == 10
    assert states[("CVE-2022-40896", "pygments")] == "open"

    _scan(kb, _inventory(OLD_FIREFOX, OLD_PYGMENTS))
    with kb.connect() as conn:
        rows = conn.execute(select(findings).where(findings.c.package == "firefox")).all()
    assert {r.state for r in rows} == {"open"}
    assert {r.times_reopened for r in rows} == {1}
    assert all(r.reopened_at is not None and r.fixed_at is None for r in rows)
    with kb.connect() as conn:
        assert conn.execute(select(func.count()).select_from(inventories)).scalar() == 3
        # The latest inventory's packages are what sweeps read.
        assert conn.execute(select(func.count()).select_from(asset_packages)
                            .where(asset_packages.c.asset_id == asset)).scalar() == 2


def test_an_incomplete_inventory_fixes_nothing(kb: Engine) -> None:
    _scan(kb, _inventory(OLD_FIREFOX, OLD_PYGMENTS))
    _scan(kb, _inventory(OLD_PYGMENTS, complete=False))
    assert set(_states(kb).values()) == {"open"}


def test_triage_survives_rescans_and_expiry_reopens(kb: Engine) -> None:
    asset = _scan(kb, _inventory(OLD_PYGMENTS))
    with kb.begin() as conn:
        conn.execute(insert(triage_decisions).values(
            scope="asset", asset_id=asset, vuln_id="CVE-2022-40896", package=None,
            decision="accepted", reason="only trusted input is highlighted",
            expires_at=now_utc() + timedelta(days=30), created_by="sato",
            created_at=now_utc()))
        conn.execute(findings.update().values(state="accepted"))
    _scan(kb, _inventory(OLD_PYGMENTS))
    assert _states(kb) == {("CVE-2022-40896", "pygments"): "accepted"}
    # Fixed, then back: the acceptance still covers it (not expired).
    _scan(kb, _inventory(NEW_FIREFOX))
    assert _states(kb) == {("CVE-2022-40896", "pygments"): "fixed"}
    _scan(kb, _inventory(OLD_PYGMENTS))
    assert _states(kb) == {("CVE-2022-40896", "pygments"): "accepted"}


def test_global_false_positive_applies_to_new_findings(kb: Engine) -> None:
    with kb.begin() as conn:
        conn.execute(insert(triage_decisions).values(
            scope="global", vuln_id="CVE-2022-40896", package="pygments",
            decision="false_positive", reason="SmithyLexer is never loaded here",
            created_by="sato", created_at=now_utc()))
    _scan(kb, _inventory(OLD_FIREFOX, OLD_PYGMENTS))
    states = _states(kb)
    assert states[("CVE-2022-40896", "pygments")] == "false_positive"
    assert sum(s == "open" for s in states.values()) == 10


def test_repeated_upload_is_stored_once(kb: Engine) -> None:
    inv = _inventory(OLD_PYGMENTS)
    first = ingest_inventory(kb, inv, idempotency_key="agent-7:upload-42")
    again = ingest_inventory(kb, inv, idempotency_key="agent-7:upload-42")
    assert (again.duplicate, again.inventory_id, again.asset_id) == (
        True, first.inventory_id, first.asset_id)
    with kb.connect() as conn:
        assert conn.execute(select(func.count()).select_from(inventories)).scalar() == 1


def test_an_expired_acceptance_reopens_its_finding(kb: Engine) -> None:
    from sqlalchemy import update

    from patchpilot.findings.triage import reapply_decisions

    asset = _scan(kb, _inventory(OLD_PYGMENTS))
    with kb.begin() as conn:
        decision = conn.execute(insert(triage_decisions).values(
            scope="asset", asset_id=asset, vuln_id="CVE-2022-40896", package="pygments",
            decision="accepted", reason="vendor patch due next quarter",
            expires_at=now_utc() + timedelta(days=1), created_by="sato",
            created_at=now_utc()).returning(triage_decisions.c.id)).scalar_one()
        assert reapply_decisions(conn, vuln_id="CVE-2022-40896") == 1
    assert _states(kb) == {("CVE-2022-40896", "pygments"): "accepted"}
    with kb.begin() as conn:
        conn.execute(update(triage_decisions).where(triage_decisions.c.id == decision)
                     .values(expires_at=now_utc() - timedelta(minutes=1)))
        assert reapply_decisions(conn) == 1
    assert _states(kb) == {("CVE-2022-40896", "pygments"): "open"}


def test_an_expired_acceptance_does_not_cover_new_findings(kb: Engine) -> None:
    # Decisions are applied when findings are stored (active_decisions): one that expired
    # yesterday must not turn today's new finding into "accepted", while a live one next
    # to it (false positive, another package) still applies.
    with kb.begin() as conn:
        conn.execute(insert(triage_decisions), [
            {"scope": "global", "vuln_id": "CVE-2022-40896", "package": "pygments",
             "decision": "accepted", "reason": "vendor patch due last quarter",
             "expires_at": now_utc() - timedelta(days=1), "created_by": "sato",
             "created_at": now_utc() - timedelta(days=90)},
            {"scope": "global", "vuln_id": "CVE-2022-26485", "package": "firefox",
             "decision": "false_positive", "reason": "kiosk build without WebGPU",
             "expires_at": None, "created_by": "sato", "created_at": now_utc()}])
    _scan(kb, _inventory(OLD_FIREFOX, OLD_PYGMENTS))
    states = _states(kb)
    assert states[("CVE-2022-40896", "pygments")] == "open"
    assert states[("CVE-2022-26485", "firefox")] == "false_positive"
    assert sum(s == "open" for s in states.values()) == 10
