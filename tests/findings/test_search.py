"""The findings list and the patch plan's top items on the real estate of
tests/builders/summary_estate.py: totals from the summary are real counts, other totals are
exact up to the cap and capped above it, the default order is the work order, the search
box finds ids and package prefixes (not substrings), and ``build_plan(top=N)`` is the full
plan's first N items."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from patchpilot.assets.groups import add_members, create_group, group_members
from patchpilot.db.tables import asset_group_members, asset_groups, findings
from patchpilot.findings import search
from patchpilot.findings.search import FindingFilter, count_from_summary, search_findings
from patchpilot.models import Package
from patchpilot.scans.plan import build_plan
from tests.builders.plan_estate import OLD_PYGMENTS, scan
from tests.builders.summary_estate import BANDS, NOW, WERKZEUG, Clock

NEW_GITPYTHON = Package(WERKZEUG.ecosystem, "GitPython", "3.1.41")
PAGE_MAX = 500  # a page larger than the estate: every finding at once


@pytest.fixture
def conn(timeline: dict[str, int], engine: Engine) -> Iterator[Connection]:
    """A connection to the estate of the summary tests, as the clock left it (T0+20d)."""
    with engine.connect() as c:
        yield c


def all_findings(conn: Connection) -> list[Any]:
    """Every finding with what the filters and the order read, and its groups."""
    groups: dict[int, set[str]] = {}
    for asset_id, name in conn.execute(
            select(asset_group_members.c.asset_id, asset_groups.c.name)
            .join(asset_groups, asset_groups.c.id == asset_group_members.c.group_id)):
        groups.setdefault(asset_id, set()).add(name)
    rows = conn.execute(select(findings.c.id, findings.c.asset_id, findings.c.state,
                               findings.c.priority_rank, findings.c.severity,
                               findings.c.known_exploited, findings.c.cvss_score,
                               findings.c.fixed_version)).all()
    return [(r, groups.get(r.asset_id, set())) for r in rows]


def work_order(rows: list[Any]) -> list[int]:
    """Ids in the list's default order, sorted here: priority, highest score (unscored
    last), id."""
    return [r.id for r in sorted(rows, key=lambda r: (
        r.priority_rank, r.cvss_score is None, -(r.cvss_score or 0.0), r.id))]


def ids(page: search.Page) -> list[int]:
    return [r.id for r in page.rows]


# --- totals ------------------------------------------------------------------------------

def test_totals_from_the_summary_are_real_counts(timeline: dict[str, int],
                                                 conn: Connection) -> None:
    everything = all_findings(conn)
    web1, ci = timeline["plant1-web-01"], timeline["plant2-ci-03"]
    cases: list[tuple[FindingFilter, Any]] = [
        (FindingFilter(), lambda r, g: True),
        *((FindingFilter(priority=p), lambda r, g, p=p: r.priority_rank == p)
          for p in (1, 2, 3, 4)),
        *((FindingFilter(severity=s), lambda r, g, s=s: r.severity == s)
          for s in (*BANDS, "Unknown")),
        (FindingFilter(known_exploited=True), lambda r, g: r.known_exploited),
        (FindingFilter(known_exploited=False), lambda r, g: not r.known_exploited),
        (FindingFilter(group="plant1"), lambda r, g: "plant1" in g),
        (FindingFilter(group="nobody's"), lambda r, g: False),
        *((FindingFilter(asset_id=a), lambda r, g, a=a: r.asset_id == a)
          for a in timeline.values()),
        (FindingFilter(group="plant1", priority=2), lambda r, g: "plant1" in g
         and r.priority_rank == 2),
        (FindingFilter(group="plant1", known_exploited=True), lambda r, g: "plant1" in g
         and r.known_exploited),
        (FindingFilter(asset_id=ci, severity="High"), lambda r, g: r.asset_id == ci
         and r.severity == "High"),
        (FindingFilter(asset_id=web1, known_exploited=False), lambda r, g: r.asset_id == web1
         and not r.known_exploited),
    ]
    totals = []
    for flt, matches in cases:
        expected = [r.id for r, g in everything if r.state == "open" and matches(r, g)]
        members = group_members(conn, flt.group) if flt.group else None
        assert count_from_summary(conn, flt, members) == len(expected), flt
        page = search_findings(conn, flt, limit=PAGE_MAX, members=members)
        assert (page.total, page.exact) == (len(expected), True), flt
        assert sorted(ids(page)) == sorted(expected), flt
        totals.append(page.total)
    # The estate's figures by hand (see test_summary): open; P1..P4; Critical, High, Medium,
    # Low, None, Unknown; KEV yes/no; plant1, no group; one per asset; combinations.
    assert totals == [111, 51, 42, 9, 9, 20, 83, 1, 0, 0, 7, 4, 107, 91, 0,
                      51, 40, 11, 0, 9, 40, 2, 3, 49]


def test_other_totals_are_exact_below_the_cap_and_capped_above(
        conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    everything = [r for r, _ in all_findings(conn)]
    others = {
        "fix available": FindingFilter(fix_available=True),
        "no fix": FindingFilter(fix_available=False),
        "kernel advisory": FindingFilter(text="ALSA-2022:1988"),
        "gitpython": FindingFilter(text="gitpy"),
        "fixed": FindingFilter(state="fixed"),
        "any state": FindingFilter(state=None),
        "P1 and Critical": FindingFilter(priority=1, severity="Critical"),
    }
    for flt in others.values():
        assert count_from_summary(conn, flt) is None, flt
    real = {"fix available": 110, "no fix": 1, "kernel advisory": 80, "gitpython": 5,
            "fixed": 20, "any state": 131, "P1 and Critical": 10}
    assert real["fix available"] == sum(r.state == "open" and r.fixed_version is not None
                                        for r in everything)
    assert real["fixed"] == sum(r.state == "fixed" for r in everything)
    assert real["any state"] == len(everything)
    for name, flt in others.items():
        page = search_findings(conn, flt, limit=PAGE_MAX)
        assert (page.total, page.exact, len(page.rows)) == (real[name], True, real[name])

    monkeypatch.setattr(search, "COUNT_CAP", 20)
    for name, flt in others.items():
        page = search_findings(conn, flt, limit=50)
        want = (real[name], True) if real[name] <= 20 else (20, False)
        assert (page.total, page.exact) == want, name
        assert len(page.rows) == min(real[name], 50)  # the page itself is not capped
    # Totals the summary answers are never capped.
    assert (search_findings(conn, FindingFilter()).total,
            search_findings(conn, FindingFilter()).exact) == (111, True)


# --- order -------------------------------------------------------------------------------

def test_default_order_is_priority_then_highest_score_then_id(timeline: dict[str, int],
                                                               conn: Connection) -> None:
    everything = [r for r, _ in all_findings(conn)]
    open_rows = [r for r in everything if r.state == "open"]
    expected = work_order(open_rows)
    assert ids(search_findings(conn, FindingFilter(), limit=PAGE_MAX)) == expected
    # Page by page, the same order with nothing repeated or skipped.
    pages = [ids(search_findings(conn, FindingFilter(), limit=25, offset=o))
             for o in range(0, 125, 25)]
    assert [i for p in pages for i in p] == expected
    assert [len(p) for p in pages] == [25, 25, 25, 25, 11]
    # One asset's list and a search (sorted without the order index): the same order.
    ci = timeline["plant2-ci-03"]
    ci_rows = [r for r in open_rows if r.asset_id == ci]
    page = search_findings(conn, FindingFilter(asset_id=ci), limit=PAGE_MAX)
    assert ids(page) == work_order(ci_rows)
    # By hand: all P3; 7.8 twice (by id), 7.5, 6.5, then the five unscored.
    assert [r.cvss_score for r in page.rows] == [7.8, 7.8, 7.5, 6.5, None, None, None, None,
                                                 None]
    found = search_findings(conn, FindingFilter(text="pygments"), limit=PAGE_MAX)
    assert ids(found) == work_order([r for r in open_rows if r.id in set(ids(found))])
    assert [r.priority for r in found.rows] == [1, 3]  # web-01's P1 before ci-03's P3


# --- the search box ----------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "state", "packages", "vulns"), [
    # A CVE id in any case: firefox's KEV CVE on web-01 and dev-07 (open), and on the two
    # hosts that patched it (fixed).
    ("CVE-2022-26485", "open", {"firefox": 2}, 1),
    ("cve-2022-26485", None, {"firefox": 4}, 1),
    (" Cve-2022-26485 ", None, {"firefox": 4}, 1),
    # An advisory id: every CVE it fixes, on every host.
    ("ALSA-2022:1988", "open", {"kernel": 80}, 40),
    ("PYSEC-2023-117", "open", {"pygments": 2}, 1),
    # Package prefixes typed in either case.
    ("fire", "open", {"firefox": 20}, 10),
    ("FIRE", "open", {"firefox": 20}, 10),
    ("GitPy", "open", {"gitpython": 5}, 5),
    ("WERKZEUG", "open", {"werkzeug": 3}, 3),
    # Not a substring from the middle of a name, nor part of an id.
    ("refox", None, {}, 0),
    ("python", None, {}, 0),
    ("ALSA-2022", None, {}, 0),
    ("2022-26485", None, {}, 0),
])
def test_search_by_id_and_package_prefix(conn: Connection, typed: str, state: str | None,
                                         packages: dict[str, int], vulns: int) -> None:
    page = search_findings(conn, FindingFilter(state=state, text=typed), limit=PAGE_MAX)
    assert (page.total, page.exact) == (len(page.rows), True)
    assert Counter(r.package for r in page.rows) == packages
    assert len({r.vuln_id for r in page.rows}) == vulns
    if typed.strip().upper().startswith("CVE-"):
        assert {r.vuln_id for r in page.rows} == {typed.strip().upper()}


# --- the plan's top items ----------------------------------------------------------------

def assert_top_is_the_full_plans_start(conn: Connection, group: str | None) -> list[Any]:
    full = build_plan(conn, group=group, now=NOW)
    for n in (1, 2, 5):
        top = build_plan(conn, group=group, now=NOW, top=n)
        assert [(i.ecosystem, i.package, i.fixed_version) for i in top.items] == [
            (i.ecosystem, i.package, i.fixed_version) for i in full.items[:n]], (group, n)
        assert [i.risk for i in top.items] == [i.risk for i in full.items[:n]]
        assert [i.hosts for i in top.items] == [i.hosts for i in full.items[:n]]
        assert list(top.items) == list(full.items[:n])  # every other field too
    return [(i.package, i.fixed_version, i.risk) for i in full.items]


def test_plan_top_items_are_the_full_plans_first(timeline: dict[str, int], engine: Engine,
                                                 clock: Clock) -> None:
    with engine.connect() as conn:
        items = assert_top_is_the_full_plans_start(conn, None)
        # By hand: kernel 40 P1 + 40 P2; firefox 8 P1 + 2 KEV P1 on web-01 and 8 P4 +
        # 2 KEV P2 on dev-07 (KEV +500 each); pygments a P1 and a P3; then GitPython's
        # five P3s and Werkzeug's three, each installation upgraded once, to the highest
        # fix its CVEs need (not one item per fixed version: 3.1.30, 3.1.32, …).
        assert items == [("kernel", "4.18.0-372.9.1.el8", 44000),
                         ("firefox", "91.7.0-3.el8_5.alma", 12208),
                         ("pygments", "2.15.1", 1010), ("gitpython", "3.1.41", 50),
                         ("werkzeug", "2.3.8", 30)]
        assert [i[0] for i in assert_top_is_the_full_plans_start(conn, "plant1")] == [
            "kernel", "firefox", "pygments"]
    # ci-03 upgrades GitPython: its item has only a verified host (risk 0), and in a
    # group of ci-03 alone it ranks last, after its two open items.
    with engine.begin() as c:
        add_members(c, "sato", create_group(c, "sato", "ci"), [timeline["plant2-ci-03"]])
    scan(engine, "plant2-ci-03", NEW_GITPYTHON, WERKZEUG, OLD_PYGMENTS)
    with engine.connect() as conn:
        assert assert_top_is_the_full_plans_start(conn, "ci") == [
            ("werkzeug", "2.3.8", 30), ("pygments", "2.15.1", 10), ("gitpython", "3.1.41", 0)]
        assert_top_is_the_full_plans_start(conn, None)


def test_a_rule_group_filters_by_the_assets_its_rule_selects(
        timeline: dict[str, int], engine: Engine) -> None:
    from patchpilot.db.tables import assets

    web1, ci = timeline["plant1-web-01"], timeline["plant2-ci-03"]
    with engine.begin() as c:
        c.execute(assets.update().where(assets.c.id.in_([web1, ci])).values(tags='["pci"]'))
        create_group(c, "sato", "pci", rule={"tags": ["pci"]})
    with engine.connect() as c:
        expected = [r.id for r, _ in all_findings(c)
                    if r.state == "open" and r.asset_id in (web1, ci)]
        flt = FindingFilter(group="pci")
        members = group_members(c, "pci")
        assert members == sorted([web1, ci])  # a rule group resolves to a list of ids
        assert count_from_summary(c, flt, members) == len(expected) > 0
        page = search_findings(c, flt, limit=PAGE_MAX, members=members)
        assert (page.total, page.exact) == (len(expected), True)
        assert sorted(ids(page)) == sorted(expected)
        capped = search_findings(c, FindingFilter(group="pci", fix_available=True),
                                 limit=PAGE_MAX, members=members)
        assert {r.asset_id for r in capped.rows} <= {web1, ci}


def test_a_group_filter_needs_its_members_resolved(conn: Connection) -> None:
    # Groups belong to the assets stage, a floor above findings: the caller resolves them
    # (assets.groups.group_members) and a forgotten resolution is an error, never "no
    # filter" (which would list every finding of the estate under a group's name).
    with pytest.raises(ValueError, match="group 'plant1': pass its members"):
        search_findings(conn, FindingFilter(group="plant1"))
