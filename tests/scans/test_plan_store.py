"""The stored plan (scans.plan_store) answers what build_plan answers, a page at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, update

from patchpilot import pipeline, queue
from patchpilot.assets.groups import Scope, resolve_scope
from patchpilot.clock import now_utc
from patchpilot.db.tables import jobs, plan_hosts, plan_items
from patchpilot.errors import NotFound
from patchpilot.scans import plan_store
from patchpilot.scans.plan import PLAN_COLUMNS, build_plan, plan_rows
from patchpilot.scans.plan_store import PlanQuery
from tests.builders.plan_estate import NEW_FIREFOX, OLD_KERNEL, OLD_PYGMENTS, scan


def _stored_rows(engine: Engine, q: PlanQuery | None = None) -> list[dict[str, object]]:
    """The CSV rows read straight from the store, and those of the items it rebuilds
    (the Ansible export's): the same, both as dicts."""
    with engine.connect() as conn:
        state = plan_store.status(conn)
        direct = [dict(zip(PLAN_COLUMNS, row, strict=True))
                  for row in plan_store.csv_rows(conn, state, q)]
        assert direct == list(plan_rows(plan_store.iter_items(conn, state, q)))
    return direct


def test_stored_plan_matches_the_built_one(estate: dict[str, int], kb: Engine) -> None:
    state = plan_store.ensure_current(kb)
    assert state.generation == 1 and not state.stale
    with kb.connect() as conn:
        built = build_plan(conn)
        page = plan_store.read_page(conn, state, limit=2)
        rest = plan_store.read_page(conn, state, limit=2, cursor=page.next_cursor)
    assert page.total == len(built.items) == 3 and rest.next_cursor is None
    stored = page.items + rest.items
    assert [(i.package, i.fixed_version, i.risk, i.vulns, i.summary) for i in stored] == [
        (i.package, i.fixed_version, i.risk, i.vulns, i.summary) for i in built.items]
    firefox = stored[1]
    assert firefox.package == "firefox" and firefox.vulns == built.items[1].vulns
    # Firefox's best priority is P1 on both production servers (KEV CVEs), P2 on the dev box.
    assert firefox.pending == 3 and firefox.hosts_by_priority == {"P1": 2, "P2": 1}
    assert [h.best_priority for h in built.items[1].hosts] == [1, 1, 2]
    assert [h.name for h in firefox.first_hosts] == [
        h.name for h in sorted(built.items[1].hosts, key=lambda h: (h.best_priority, h.name))]
    # The host counts by window: plant1's two hosts at its next Saturday window, the
    # third any time.
    assert [w["hosts"] for w in firefox.hosts_by_window] == [2, 1]
    assert firefox.hosts_by_window[1]["window"] is None
    assert firefox.hosts_by_window[0]["window"] == built.items[1].hosts[0].next_window
    # The CSV export streamed from the store is the built plan's, row for row (the hosts
    # of each item pending first by priority, as the page lists them).
    def key(r: dict[str, object]) -> tuple[str, ...]:
        return (str(r["rank"]), str(r["host"]), str(r["location"]))
    assert sorted(_stored_rows(kb), key=key) == sorted(plan_rows(built.items), key=key)


def test_a_group_sees_its_hosts_figures(estate: dict[str, int], kb: Engine) -> None:
    state = plan_store.ensure_current(kb)
    with kb.connect() as conn:
        ids = tuple(resolve_scope(conn, Scope(group="plant1")) or ())
        built = build_plan(conn, group="plant1")
        page = plan_store.read_page(conn, state, PlanQuery(asset_ids=ids))
        hosts = plan_store.read_hosts(conn, state, page.items[0].key, PlanQuery(asset_ids=ids))
    assert [(i.package, i.risk, i.vulns, i.pending, i.by_priority) for i in page.items] == [
        (i.package, i.risk, i.vulns, len(i.pending), i.by_priority) for i in built.items]
    assert [h.name for h in hosts.hosts] == ["plant1-web-01", "plant1-web-02"]
    assert _stored_rows(kb, PlanQuery(asset_ids=ids)) == list(plan_rows(built.items))


def test_filters_kev_reboot_priority(estate: dict[str, int], kb: Engine) -> None:
    state = plan_store.ensure_current(kb)
    with kb.connect() as conn:
        built = build_plan(conn)

        def packages(q: PlanQuery) -> list[str]:
            return [i.package for i in plan_store.read_page(conn, state, q).items]

        assert packages(PlanQuery(reboot=True)) == ["kernel"]
        assert packages(PlanQuery(reboot=False)) == [
            i.package for i in built.items if i.package != "kernel"]
        assert packages(PlanQuery(kev=True)) == [i.package for i in built.items
                                                 if i.known_exploited]
        assert packages(PlanQuery(priority=1)) == [
            i.package for i in built.items if any(h.best_priority == 1 for h in i.pending)]


def test_a_scan_makes_the_plan_stale_and_the_reader_rebuilds_it(
        estate: dict[str, int], kb: Engine) -> None:
    first = plan_store.ensure_current(kb)
    with kb.connect() as conn:
        firefox_key = next(i.key for i in plan_store.read_page(conn, first).items
                           if i.package == "firefox")
    scan(kb, "plant1-web-01", NEW_FIREFOX, OLD_KERNEL, OLD_PYGMENTS)
    with kb.connect() as conn:
        assert plan_store.status(conn).stale
    # An idle worker waits MIN_INTERVAL after the last build; a reader of a small estate
    # rebuilds at once.
    assert plan_store.refresh_if_stale(kb, now=first.generated_at) is None  # type: ignore[arg-type]
    second = plan_store.ensure_current(kb)
    assert second.generation == 2 and not second.stale
    with kb.connect() as conn:
        hosts = plan_store.read_hosts(conn, second, firefox_key)  # the key survived
        # Only the current generation is kept.
        assert {g for g, in conn.execute(select(plan_items.c.generation).distinct())} == {2}
        assert {g for g, in conn.execute(select(plan_hosts.c.generation).distinct())} == {2}
        with pytest.raises(NotFound, match="reload the page"):
            plan_store.read_hosts(conn, second, "0" * 20)
    assert [(h.name, h.status) for h in hosts.hosts] == [
        ("plant1-web-02", "pending"), ("plant2-dev-07", "pending"),
        ("plant1-web-01", "verified")]
    assert hosts.item.summary.endswith("(1 verified fixed)")
    assert plan_store.refresh_if_stale(kb) is None  # nothing changed since


def test_unfixed_items_and_batches(estate: dict[str, int], kb: Engine,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # One package per batch: the plan is the same however the findings are batched.
    monkeypatch.setattr(plan_store, "BATCH_ROWS", 1)
    state = plan_store.rebuild(kb)
    with kb.connect() as conn:
        built = build_plan(conn)
        page = plan_store.read_page(conn, state)
        unfixed = plan_store.read_page(conn, state, kind=plan_store.UNFIXED)
        n_hosts = conn.execute(select(func.count()).select_from(plan_hosts)).scalar_one()
    assert [i.summary for i in page.items] == [i.summary for i in built.items]
    assert [(u.package, u.vulns) for u in unfixed.items] == [
        (u.package, list(u.vulns)) for u in built.unfixed]
    assert n_hosts == (sum(len(i.hosts) for i in built.items)
                       + sum(len(u.hosts) for u in built.unfixed))
    assert state.since is not None and state.generated_at is not None
    assert state.generated_at - state.since == timedelta(days=30)


def test_one_builder_at_a_time(estate: dict[str, int], kb: Engine) -> None:
    # Another worker thread is building: this one leaves it (and the stale plan) alone.
    with plan_store._BUILDING:
        assert plan_store.refresh_if_stale(kb) is None
    with kb.connect() as conn:
        assert plan_store.status(conn).generation == 0
    state = plan_store.refresh_if_stale(kb)
    assert state is not None and state.generation == 1 and not state.stale


def test_the_idle_round_builds_no_plan_while_the_estate_is_reworked(
        estate: dict[str, int], kb: Engine) -> None:
    """A re-prioritisation of the estate queued to run (or running, or waiting for its
    chunks) rewrites what the plan is made of: the idle round leaves the stale plan for
    after it.  A feed update queued for later holds nothing up."""
    with kb.begin() as conn:
        reprioritise = queue.enqueue(conn, pipeline.PRIORITISE, {})
        queue.enqueue(conn, pipeline.FEED_UPDATE, {}, run_after=now_utc() + timedelta(hours=6))
    pipeline.when_idle(kb)
    with kb.connect() as conn:
        assert (plan_store.status(conn).generation, plan_store.status(conn).stale) == (0, True)
    for state in (queue.LEASED, queue.WAITING):
        with kb.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == reprioritise).values(state=state))
        pipeline.when_idle(kb)
        with kb.connect() as conn:
            assert plan_store.status(conn).generation == 0
    with kb.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == reprioritise).values(state=queue.DONE))
    pipeline.when_idle(kb)
    with kb.connect() as conn:
        state = plan_store.status(conn)
    assert (state.generation, state.stale) == (1, False)
