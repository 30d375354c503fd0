"""pipeline.upkeep records SLA breaches and stale assets: each once, however many workers run
it at the same time.  A real AlmaLinux 8 host (ALSA-2022:0818 for firefox), processed by
the pipeline, on both databases."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update

from patchpilot import pipeline
from patchpilot.clock import now_utc
from patchpilot.db.tables import assets, finding_events, finding_priority
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory, OsInfo
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package

ALMA8 = Ecosystem("AlmaLinux:8")
FIREFOX = "91.6.0-1.el8_5.alma"


@pytest.fixture
def host(engine: Engine, feed_dir) -> int:  # type: ignore[no-untyped-def]
    """A host with firefox's ten fixes open and prioritised, scanned 30 days ago."""
    feeds = {"osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json"}
    assert {r.status for r in update_from(engine, [feed_dir(feeds)])} == {"loaded"}
    inv = Inventory.from_packages(
        [Package(ALMA8, "firefox", FIREFOX, arch="x86_64", source_name="firefox",
                 source_version=FIREFOX)],
        os=OsInfo(id="almalinux", version_id="8.5"), collector=Collector(name="local"),
        asset=AssetIdentity(hostname="alma-1"))
    stored = ingest_inventory(engine, inv)
    assert pipeline.process_inventory(engine, stored.inventory_id).to_dict()
    with engine.begin() as conn:
        conn.execute(update(assets).values(last_seen=now_utc() - timedelta(days=30)))
    return stored.asset_id


def test_upkeep_records_each_breach_and_staleness_once(engine: Engine, host: int) -> None:
    with engine.begin() as conn:
        ids = sorted(conn.execute(select(finding_priority.c.finding_id)).scalars())
        assert len(ids) == 10
        conn.execute(update(finding_priority).where(finding_priority.c.finding_id.in_(
            ids[:4])).values(due_date=now_utc() - timedelta(hours=1)))
    threads = [threading.Thread(target=pipeline.upkeep, args=(engine,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pipeline.upkeep(engine)
    with engine.connect() as conn:
        events = [(r.kind, r.finding_id, r.asset_id) for r in conn.execute(
            select(finding_events).where(finding_events.c.kind.in_(
                ("sla_breached", "asset_stale"))))]
    assert Counter(events) == Counter(
        [("sla_breached", i, host) for i in ids[:4]] + [("asset_stale", None, host)])
