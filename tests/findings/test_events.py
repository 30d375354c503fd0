"""Asset identity for importers, and the events every change writes: each kind exactly once
per change, with its finding and asset, in the change's transaction.  Real advisories
(AlmaLinux's ALSA-2022:0818 for firefox, KEV), on both databases."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, func, select, update

from patchpilot.clock import now_utc
from patchpilot.db.tables import assets, finding_events, finding_priority, findings
from patchpilot.findings.events import (
    SLA_BREACHED,
    record_sla_breaches,
    record_stale_assets,
)
from patchpilot.findings.ingest import find_or_create_asset
from patchpilot.findings.lifecycle import apply_findings
from patchpilot.findings.scan import scan_inventory
from patchpilot.findings.triage import reapply_decisions, record_decision
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory, OsInfo
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package
from patchpilot.reports.overview import not_scanned_condition
from patchpilot.scans.sweeps import SweepQuery, start_sweep
from patchpilot.scoring.apply import active_config, reprioritise

FEEDS = {
    "osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json",
    "kev/known_exploited_vulnerabilities.json": "kev/known_exploited_vulnerabilities.json",
}
ALMA8 = Ecosystem("AlmaLinux:8")


@pytest.fixture
def kb(engine: Engine, feed_dir) -> Engine:  # type: ignore[no-untyped-def]
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    return engine


def _firefox(engine: Engine) -> tuple[int, list[Any]]:
    """An asset with the firefox ALSA-2022:0818 fixes (10 findings, open, unprioritised)."""
    inv = Inventory.from_packages(
        [Package(ALMA8, "firefox", "91.6.0-1.el8_5.alma", arch="x86_64",
                 source_name="firefox", source_version="91.6.0-1.el8_5.alma")],
        os=OsInfo(id="almalinux", version_id="8.5"), collector=Collector(name="local"))
    with engine.begin() as conn:
        asset = find_or_create_asset(conn, AssetIdentity(hostname="alma-1"))
    found = list(scan_inventory(engine, inv).reports["matcher"])
    assert apply_findings(engine, asset, found, complete=True).new == 10
    return asset, found


def _events(engine: Engine, kind: str | None = None) -> list[tuple[str, int | None,
                                                                   int | None, Any]]:
    with engine.connect() as conn:
        stmt = select(finding_events).order_by(finding_events.c.id)
        if kind:
            stmt = stmt.where(finding_events.c.kind == kind)
        return [(r.kind, r.finding_id, r.asset_id,
                 orjson.loads(r.detail) if r.detail else None) for r in conn.execute(stmt)]


def _finding_ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {r.vuln_id: r.id for r in conn.execute(select(findings.c.id, findings.c.vuln_id))}


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(finding_events)).scalar_one())


# --- find_or_create_asset -----------------------------------------------------------------

STORED = [  # one stored asset per identity key
    {"name": "by-machine", "machine_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"},
    {"name": "by-cloud", "cloud_instance_id": "i-0abc1234def567890"},
    {"name": "by-artifact", "artifact": "registry.example.org/shop/web"},
    {"name": "by-fqdn", "fqdn": "db1.corp.example.org"},
    {"name": "web-7"},
    {"name": "by-ip", "ip_addresses": '["10.1.2.3", "127.0.0.1", "fe80::1"]'},
]


@pytest.fixture
def stored(engine: Engine) -> dict[str, int]:
    now = now_utc()
    with engine.begin() as conn:
        return {row["name"]: int(conn.execute(assets.insert().values(
            first_seen=now, last_seen=now, tags="[]", attributes="{}",
            **{"ip_addresses": "[]", **row}).returning(assets.c.id)).scalar_one())
            for row in STORED}


@pytest.mark.parametrize(("identity", "name"), [
    ({"machine_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"}, "by-machine"),
    ({"cloud_instance_id": "i-0abc1234def567890"}, "by-cloud"),
    ({"artifact": "registry.example.org/shop/web"}, "by-artifact"),
    ({"fqdn": "db1.corp.example.org"}, "by-fqdn"),
    ({"hostname": "web-7"}, "web-7"),
    ({"ip_addresses": ["192.0.2.9", "10.1.2.3"]}, "by-ip"),
    # Each key wins over every key after it, whichever asset those point at.
    ({"machine_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "cloud_instance_id":
      "i-0abc1234def567890", "artifact": "registry.example.org/shop/web",
      "fqdn": "db1.corp.example.org", "hostname": "web-7"}, "by-machine"),
    ({"cloud_instance_id": "i-0abc1234def567890", "artifact":
      "registry.example.org/shop/web", "fqdn": "db1.corp.example.org"}, "by-cloud"),
    ({"artifact": "registry.example.org/shop/web", "fqdn": "db1.corp.example.org",
      "hostname": "web-7"}, "by-artifact"),
    ({"fqdn": "db1.corp.example.org", "hostname": "web-7",
      "ip_addresses": ["10.1.2.3"]}, "by-fqdn"),
    # A key that matches nothing gives way to the next one.
    ({"machine_id": "ffffffffffffffffffffffffffffffff", "hostname": "web-7"}, "web-7"),
])
def test_each_identity_key_finds_its_asset(engine: Engine, stored: dict[str, int],
                                           identity: dict[str, Any], name: str) -> None:
    with engine.begin() as conn:
        assert find_or_create_asset(conn, AssetIdentity(**identity)) == stored[name]
        assert conn.execute(select(func.count()).select_from(assets)).scalar() == len(STORED)


@pytest.mark.parametrize("identity", [
    # An address only when nothing else is given: a host name is a different host.
    {"hostname": "web-8", "ip_addresses": ["10.1.2.3"]},
    # Loopback and link-local addresses name no asset.
    {"ip_addresses": ["127.0.0.1"]},
    {"ip_addresses": ["fe80::1"]},
    {"ip_addresses": ["10.1.2.30"]},  # not a part of "10.1.2.3"
])
def test_no_match_creates_an_asset(engine: Engine, stored: dict[str, int],
                                   identity: dict[str, Any]) -> None:
    when = now_utc()
    with engine.begin() as conn:
        created = find_or_create_asset(conn, AssetIdentity(**identity), now=when)
        assert created not in stored.values()
        row = conn.execute(select(assets).where(assets.c.id == created)).one()
        assert conn.execute(select(func.count()).select_from(assets)).scalar() \
            == len(STORED) + 1
    assert (row.name, row.fqdn, row.machine_id, row.cloud_instance_id, row.artifact,
            orjson.loads(row.ip_addresses)) == (
        identity.get("hostname") or identity["ip_addresses"][0], None, None, None, None,
        identity["ip_addresses"])


def test_created_asset_keeps_every_key(engine: Engine) -> None:
    identity = AssetIdentity(fqdn="api.corp.example.org", machine_id="ab" * 16,
                             cloud_instance_id="i-0123", artifact="github.com/org/api",
                             ip_addresses=["10.9.9.9"])
    with engine.begin() as conn:
        first = find_or_create_asset(conn, identity)
        assert find_or_create_asset(conn, identity) == first
        row = conn.execute(select(assets)).one()
    assert (row.id, row.name, row.fqdn, row.machine_id, row.cloud_instance_id, row.artifact,
            row.ip_addresses) == (first, "api.corp.example.org", "api.corp.example.org",
                                  "ab" * 16, "i-0123", "github.com/org/api", '["10.9.9.9"]')


# --- events: exactly once per change ------------------------------------------------------

def test_triaged_once_per_decision(kb: Engine) -> None:
    asset, _ = _firefox(kb)
    vuln = sorted(_finding_ids(kb))[0]
    with kb.begin() as conn:
        record_decision(conn, "ana", vuln_id=vuln, package=None, scope="asset",
                        asset_id=asset, decision="false_positive", reason="not shipped")
    with kb.begin() as conn:  # re-applying changes nothing: no second event
        assert reapply_decisions(conn) == 0
    assert _events(kb, "triaged") == [("triaged", _finding_ids(kb)[vuln], asset,
                                       {"state": "false_positive", "from": "open"})]


def test_known_exploited_added_once(kb: Engine) -> None:
    asset, found = _firefox(kb)
    assert _events(kb, "known_exploited_added") == []
    # KEV lists it now: the next report carries the evidence.
    target = next(f for f in found if not f.exploit.known_exploited)
    changed = [replace(f, exploit=replace(f.exploit, known_exploited=True))
               if f is target else f for f in found]
    apply_findings(kb, asset, changed, complete=True)
    apply_findings(kb, asset, changed, complete=True)  # still listed: no new event
    assert _events(kb, "known_exploited_added") == [
        ("known_exploited_added", _finding_ids(kb)[target.vuln_id], asset, None)]


def test_priority_changed_once_per_move_not_on_first(kb: Engine) -> None:
    asset, _ = _firefox(kb)
    with kb.begin() as conn:
        assert reprioritise(conn) == 10
    assert _events(kb, "priority_changed") == []  # from "not yet prioritised": no move
    with kb.connect() as conn:
        before = dict(conn.execute(select(finding_priority.c.finding_id,
                                          finding_priority.c.priority)).all())
        config = active_config(conn)
    lowest = replace(config, matrix=dict.fromkeys(config.matrix, (4, 4, 4, 4)),
                     kev_top_tiers=(), kev_floor=4)
    with kb.begin() as conn:
        reprioritise(conn, lowest)
    with kb.begin() as conn:
        reprioritise(conn, lowest)  # nothing moves again
    expected = sorted(("priority_changed", fid, asset, {"from": p, "to": 4})
                      for fid, p in before.items() if p != 4)
    assert expected  # the default matrix ranks some of firefox's fixes above P4
    assert sorted(_events(kb, "priority_changed"), key=lambda e: e[1] or 0) == expected
    # A rolled-back re-prioritisation leaves none of its events.
    with pytest.raises(RuntimeError), kb.begin() as conn:
        reprioritise(conn, config)
        raise RuntimeError("a later step failed")
    assert len(_events(kb, "priority_changed")) == len(expected)


def test_sweep_finished_once(kb: Engine) -> None:
    asset, _ = _firefox(kb)
    # No agent or SSH target to confirm: the sweep is done as it starts.
    sweep = start_sweep(kb, SweepQuery(vuln="CVE-2022-26485"), created_by="ana")
    assert sweep.state == "done"
    events = _events(kb, "sweep_finished")
    assert len(events) == 1
    kind, finding, asset_id, detail = events[0]
    assert (kind, finding, asset_id) == ("sweep_finished", None, None)
    assert detail == {"sweep_id": sweep.id, "vulns": list(sweep.vulns),
                      "counts": sweep.status}
    assert sum(detail["counts"].values()) == 1


def test_sla_breached_once_per_due_date(kb: Engine) -> None:
    asset, _ = _firefox(kb)
    with kb.begin() as conn:
        reprioritise(conn)
    ids = sorted(_finding_ids(kb).values())
    past = now_utc() - timedelta(days=1)
    with kb.begin() as conn:  # two findings overdue; one of them triaged (not open)
        conn.execute(update(finding_priority).where(finding_priority.c.finding_id.in_(
            ids[:3])).values(due_date=past))
        conn.execute(update(findings).where(findings.c.id == ids[2])
                     .values(state="false_positive"))
    # A rolled-back run leaves nothing.
    with pytest.raises(RuntimeError), kb.begin() as conn:
        assert record_sla_breaches(conn) == 2
        raise RuntimeError("a later step failed")
    assert _events(kb, SLA_BREACHED) == []
    for _ in range(2):
        with kb.begin() as conn:
            record_sla_breaches(conn)
    with kb.connect() as conn:
        priority = dict(conn.execute(select(finding_priority.c.finding_id,
                                            finding_priority.c.priority)).all())
    assert sorted(_events(kb, SLA_BREACHED), key=lambda e: e[1] or 0) == [
        (SLA_BREACHED, i, asset, {"priority": priority[i]}) for i in ids[:2]]
    # A new due date (reopened, re-prioritised) that passes is a new breach.
    with kb.begin() as conn:
        conn.execute(update(finding_priority).where(finding_priority.c.finding_id == ids[0])
                     .values(due_date=now_utc() + timedelta(seconds=1)))
        assert record_sla_breaches(conn, now_utc() + timedelta(seconds=2)) == 1
    assert Counter(e[1] for e in _events(kb, SLA_BREACHED)) == {ids[0]: 2, ids[1]: 1}


def test_asset_stale_once_per_last_scan(engine: Engine) -> None:
    now = now_utc()
    with engine.begin() as conn:
        late = find_or_create_asset(conn, AssetIdentity(hostname="late"),
                                    now=now - timedelta(days=8))
        fresh = find_or_create_asset(conn, AssetIdentity(hostname="fresh"), now=now)
    for _ in range(2):
        with engine.begin() as conn:
            record_stale_assets(conn, not_scanned_condition(conn, now), now)
    assert _events(engine, "asset_stale") == [("asset_stale", None, late, None)]
    # Scanned again, then late again (and now the other one too): stale again.
    with engine.begin() as conn:
        conn.execute(update(assets).where(assets.c.id == late)
                     .values(last_seen=now + timedelta(seconds=1)))
        later = now + timedelta(days=8)
        assert record_stale_assets(conn, not_scanned_condition(conn, later), later) == 2
    assert Counter(e[2] for e in _events(engine, "asset_stale")) == {late: 2, fresh: 1}
    assert _count(engine) == 3
