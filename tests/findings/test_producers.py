"""Producers and events: a complete report closes only its own producer's findings; one
finding shows every producer that reports it; every change writes its event in the same
transaction.  Real advisories (AlmaLinux's ALSA-2022:0818, KEV) and the pending updates
dnf lists for a real AlmaLinux 8 host (tests/fixtures/dnf/), on both databases."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from sqlalchemy import Engine, func, select

from patchpilot.db.tables import finding_events, findings
from patchpilot.findings.ingest import find_or_create_asset
from patchpilot.findings.lifecycle import apply_asset_findings, apply_findings
from patchpilot.findings.scan import scan_inventory
from patchpilot.inventory.model import AssetIdentity
from patchpilot.knowledge.update import update_from
from tests.builders.dnf_hosts import FIREFOX, POLKIT, alma_host

FEEDS = {
    "osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json",
    "kev/known_exploited_vulnerabilities.json": "kev/known_exploited_vulnerabilities.json",
}
PWNKIT = ("CVE-2021-4034", "polkit")


@pytest.fixture
def kb(engine: Engine, feed_dir) -> Engine:  # type: ignore[no-untyped-def]
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    return engine


def _asset(engine: Engine) -> int:
    with engine.begin() as conn:
        return find_or_create_asset(conn, AssetIdentity(hostname="alma-1"))


def _rows(engine: Engine) -> dict[tuple[str, str], tuple[str, str, tuple[str, ...]]]:
    with engine.connect() as conn:
        return {(r.vuln_id, r.package): (r.state, r.producer,
                                          tuple(orjson.loads(r.data)["sources"]))
                for r in conn.execute(select(findings))}


def _events(engine: Engine) -> list[tuple[str, int, str | None]]:
    with engine.connect() as conn:
        return [(r.kind, r.finding_id, r.producer) for r in conn.execute(
            select(finding_events).order_by(finding_events.c.id))]


def test_each_producer_closes_only_its_own(kb: Engine) -> None:
    asset = _asset(kb)
    scan = scan_inventory(kb, alma_host(FIREFOX, POLKIT))
    assert {p: len(f) for p, f in scan.reports.items()} == {"matcher": 10,
                                                            "host-updates": 1}
    counts = apply_findings(kb, asset, scan.reports, complete=True)
    assert (counts.new, counts.fixed) == (11, 0)
    rows = _rows(kb)
    assert len(rows) == 11
    assert rows[PWNKIT] == ("open", "host-updates", ("host-updates",))
    assert {v for k, v in rows.items() if k != PWNKIT} == {("open", "matcher", ("matcher",))}
    with kb.connect() as conn:
        ids = {(r.vuln_id, r.package): r.id for r in conn.execute(select(findings))}
    assert Counter(k for k, _, _ in _events(kb)) == {"new": 11}
    assert {(f, p) for _, f, p in _events(kb)} == {
        (i, "host-updates" if k == PWNKIT else "matcher") for k, i in ids.items()}

    # A complete matcher report without firefox (a re-match after the advisory went):
    # the matcher's ten are fixed, the host's own update list still reports pwnkit.
    assert apply_findings(kb, asset, [], complete=True).fixed == 10
    rows = _rows(kb)
    assert rows[PWNKIT] == ("open", "host-updates", ("host-updates",))
    assert {v[0] for k, v in rows.items() if k != PWNKIT} == {"fixed"}
    # ... and the other way round: the host no longer lists the update.
    assert apply_findings(kb, asset, [], complete=True, producer="host-updates").fixed == 1
    assert _rows(kb)[PWNKIT][0] == "fixed"
    fixed = [(f, p) for k, f, p in _events(kb) if k == "fixed"]
    assert fixed[-1] == (ids[PWNKIT], "host-updates")
    assert sorted(fixed[:-1]) == sorted((i, "matcher") for k, i in ids.items()
                                        if k != PWNKIT)


def test_two_producers_on_one_key(kb: Engine) -> None:
    asset = _asset(kb)
    firefox = list(scan_inventory(kb, alma_host(FIREFOX, POLKIT)).reports["matcher"])
    apply_findings(kb, asset, firefox, complete=True)
    # A scanner report naming the same (CVE, package): one finding, both sources.
    counts = apply_findings(kb, asset, firefox, complete=True, producer="importer:nessus")
    assert (counts.new, counts.still_open) == (0, 10)
    assert set(_rows(kb).values()) == {("open", "importer:nessus,matcher",
                                        ("importer:nessus", "matcher"))}
    # The matcher stops reporting them: the scanner still does, so they stay open.
    assert apply_findings(kb, asset, [], complete=True).fixed == 0
    assert set(_rows(kb).values()) == {("open", "importer:nessus", ("importer:nessus",))}
    # An incomplete report closes nothing; the scanner's complete one fixes them.
    assert apply_findings(kb, asset, [], complete=False, producer="importer:nessus").fixed == 0
    assert apply_findings(kb, asset, [], complete=True, producer="importer:nessus").fixed == 10
    assert {v[0] for v in _rows(kb).values()} == {"fixed"}
    # Reported again by the matcher: reopened, with the matcher as its only source.
    assert apply_findings(kb, asset, firefox, complete=True).reopened == 10
    assert set(_rows(kb).values()) == {("open", "matcher", ("matcher",))}
    assert Counter(k for k, _, _ in _events(kb)) == {"new": 10, "fixed": 10, "reopened": 10}


def test_a_rolled_back_apply_leaves_no_event(kb: Engine) -> None:
    asset = _asset(kb)
    scan = scan_inventory(kb, alma_host(FIREFOX, POLKIT))
    with pytest.raises(RuntimeError), kb.begin() as conn:
        apply_asset_findings(conn, asset, scan.reports, complete=True)
        assert conn.execute(select(func.count()).select_from(finding_events)).scalar() == 11
        raise RuntimeError("a later step failed")
    with kb.connect() as conn:
        assert conn.execute(select(func.count()).select_from(findings)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(finding_events)).scalar() == 0
