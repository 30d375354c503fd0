"""Scoped roles (issue 18) on the findings and assets routes and pages: a user limited to
the group plant1 lists, counts, reads and triages plant 1's assets and findings only;
anything elsewhere answers as an unknown id; the unscoped users still see everything.

The estate (``tests/builders/scope_estate.py``): plant1-app-07 and plant1-build-02 in
plant1, plant2-ws-11 in plant2, plant3-ci in plant3; real advisories matched as a worker
matches them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from patchpilot.assets.context import context_of
from patchpilot.assets.devices import add_device
from patchpilot.assets.groups import group_id_named
from patchpilot.db.tables import findings, triage_decisions
from patchpilot.findings.search import FindingFilter, count_from_summary
from patchpilot.inventory.network.declared import declared_device
from patchpilot.server.app import create_app
from tests.builders.scope_estate import OUTSIDE, PLANT1, scope_estate
from tests.builders.sessions import SECRET, page_csrf, sign_in
from tests.builders.web_data import add_group_members

ALL = sorted((*PLANT1, *OUTSIDE))


@pytest.fixture
def estate(engine: Engine, shared_data: Path, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The estate, and a client of the app on it (``client``)."""
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", SECRET)
    built = scope_estate(engine, shared_data, tmp_path / "feeds")
    with TestClient(create_app(engine), follow_redirects=False) as client:
        yield {**built, "client": client}


def _get(estate: dict[str, Any], user: str, url: str) -> Any:
    answer = estate["client"].get(url, headers={
        "Authorization": f"Bearer {estate['tokens'][user]}"})
    return answer


def _ok(estate: dict[str, Any], user: str, url: str) -> Any:
    answer = _get(estate, user, url)
    assert answer.status_code == 200, (url, answer.status_code, answer.text)
    return answer.json()


def _ids(estate: dict[str, Any], hosts: tuple[str, ...] | list[str]) -> set[int]:
    return {f for h in hosts for f in estate["findings"][h]}


def _decisions(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(triage_decisions))
                   .scalar_one())


def _state(engine: Engine, finding_id: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(findings.c.state)
                                .where(findings.c.id == finding_id)).scalar_one())


# --- the API --------------------------------------------------------------------------------

def test_scoped_lists_hold_exactly_plant1(estate: dict[str, Any]) -> None:
    plant1 = _ids(estate, PLANT1)
    # The builder's findings: firefox's ten CVEs on plant1-app-07, Pygments on -build-02.
    assert len(estate["findings"]["plant1-app-07"]) == 10
    assert len(estate["findings"]["plant1-build-02"]) == 1
    assert estate["findings"]["plant3-ci"] == []
    for user in ("plant1-viewer", "plant1-analyst", "plant1-admin"):
        page = _ok(estate, user, "/api/findings?state=any&limit=1000")
        assert {i["id"] for i in page["items"]} == plant1
        assert {i["asset"] for i in page["items"]} == set(PLANT1)
        assert (page["total"], page["total_exact"]) == (11, True)
        assets = _ok(estate, user, "/api/assets")
        assert [a["name"] for a in assets] == sorted(PLANT1)
        unknown = _ok(estate, user, "/api/assets/unknown")
        assert [a["name"] for a in unknown] == sorted(PLANT1)
    # The unscoped analyst still sees the whole estate.
    page = _ok(estate, "analyst-user", "/api/findings?state=any&limit=1000")
    assert {i["id"] for i in page["items"]} == _ids(estate, ALL)
    assert page["total"] == len(_ids(estate, ALL)) == 22
    assert [a["name"] for a in _ok(estate, "analyst-user", "/api/assets")] == ALL
    assert [a["name"] for a in _ok(estate, "analyst-user", "/api/assets/unknown")] == ALL


# Each way the list counts its total: from the per-asset summary (open findings, by
# severity, KEV or priority) and by counting the rows (any state, a search, a package).
QUERIES = {
    "": 11, "severity=Critical": 10, "severity=Unknown": 1, "kev=false": 11,
    "priority=2": 10, "priority=3": 1, "state=any": 11, "q=firefox": 10,
    "package=pygments": 1, "fix_available=true": 11, "vuln=CVE-2022-26486": 1,
    "group=plant1": 11, "group=plant2": 0, "sort=asset&order=desc": 11,
}


def test_scoped_totals_are_the_plant1_part_of_the_estate(estate: dict[str, Any],
                                                         engine: Engine) -> None:
    """Each filter's total and rows for the scoped user are exactly the unscoped answer's
    rows on plant 1's assets, whichever way the total is counted."""
    for query, count in QUERIES.items():
        everything = _ok(estate, "analyst-user", f"/api/findings?limit=1000&{query}")
        expected = [i["id"] for i in everything["items"] if i["asset"] in PLANT1]
        assert len(expected) == count, query
        scoped = _ok(estate, "plant1-analyst", f"/api/findings?limit=1000&{query}")
        assert [i["id"] for i in scoped["items"]] == expected, query
        assert (scoped["total"], scoped["total_exact"]) == (count, True), query
    # The summary answers the open counts for them too, narrowed (not counted from rows).
    reach = frozenset(estate["assets"][h] for h in PLANT1)
    with engine.connect() as conn:
        assert [count_from_summary(conn, FindingFilter(reach=reach, **flt)) for flt in (
            {}, {"priority": 2}, {"severity": "Critical"}, {"known_exploited": False},
        )] == [11, 10, 10, 11]
        assert count_from_summary(conn, FindingFilter(reach=frozenset())) == 0


def test_outside_answers_as_unknown(estate: dict[str, Any]) -> None:
    outside_finding = estate["findings"]["plant2-ws-11"][0]
    inside_finding = estate["findings"]["plant1-build-02"][0]
    for asset in OUTSIDE:
        asset_id = estate["assets"][asset]
        answer = _get(estate, "plant1-viewer", f"/api/assets/{asset_id}")
        assert (answer.status_code, answer.json()) == (404, {"detail": f"no asset {asset_id}"})
    answer = _get(estate, "plant1-viewer", "/api/assets/999999")
    assert (answer.status_code, answer.json()) == (404, {"detail": "no asset 999999"})
    answer = _get(estate, "plant1-viewer", f"/api/findings/{outside_finding}")
    assert (answer.status_code, answer.json()) == (
        404, {"detail": f"no finding {outside_finding}"})
    assert _ok(estate, "plant1-viewer", f"/api/findings/{inside_finding}")["package"] == \
        "pygments"
    one = _ok(estate, "plant1-viewer", f"/api/assets/{estate['assets']['plant1-app-07']}")
    assert one["name"] == "plant1-app-07"
    # Unscoped: everything answers.
    assert _ok(estate, "viewer-user", f"/api/findings/{outside_finding}")["id"] == \
        outside_finding
    assert _ok(estate, "viewer-user",
               f"/api/assets/{estate['assets']['plant3-ci']}")["name"] == "plant3-ci"


def test_scoped_events_are_plant1s(estate: dict[str, Any]) -> None:
    scoped = _ok(estate, "plant1-viewer", "/api/events?limit=1000")["events"]
    everything = _ok(estate, "viewer-user", "/api/events?limit=1000")["events"]
    plant1 = {estate["assets"][h] for h in PLANT1}
    assert [e["id"] for e in scoped] == [e["id"] for e in everything
                                         if e["asset_id"] in plant1]
    assert {e["finding_id"] for e in scoped} == _ids(estate, PLANT1)
    assert {e["asset_id"] for e in everything} > plant1


def test_context_only_on_assets_in_scope(estate: dict[str, Any], engine: Engine) -> None:
    client, token = estate["client"], estate["tokens"]["plant1-analyst"]
    auth = {"Authorization": f"Bearer {token}"}
    inside, outside = estate["assets"]["plant1-app-07"], estate["assets"]["plant2-ws-11"]
    answer = client.put(f"/api/assets/{inside}/context", headers=auth,
                        json={"criticality": 1, "service": "plant1-line"})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["criticality"], answer.json()["service"]) == (1, "plant1-line")
    answer = client.put(f"/api/assets/{outside}/context", headers=auth,
                        json={"criticality": 1})
    assert (answer.status_code, answer.json()) == (404, {"detail": f"no asset {outside}"})
    with engine.connect() as conn:
        assert context_of(conn, outside) is None
    # No longer unknown to the CMDB: plant1-app-07 has a context now.
    assert [a["name"] for a in _ok(estate, "plant1-analyst", "/api/assets/unknown")] == [
        "plant1-build-02"]


def test_triage_within_scope_only(estate: dict[str, Any], engine: Engine) -> None:
    client = estate["client"]
    auth = {"Authorization": f"Bearer {estate['tokens']['plant1-analyst']}"}
    inside = estate["findings"]["plant1-build-02"][0]
    outside = estate["findings"]["plant2-ws-11"][-1]
    mine = _ok(estate, "plant1-analyst", f"/api/findings/{inside}")
    body = {"vuln_id": mine["vuln_id"], "package": "pygments", "decision": "false_positive",
            "reason": "not used on the build host"}
    # On one of plant 1's assets: recorded and applied.
    answer = client.post("/api/triage", headers=auth, json={
        **body, "scope": "asset", "asset_id": estate["assets"]["plant1-build-02"]})
    assert answer.status_code == 201, answer.text
    assert answer.json()["findings_changed"] == 1
    decision_id = answer.json()["id"]
    assert _state(engine, inside) == "false_positive"
    # plant2-ws-11 has the same Pygments finding: it stays open.
    pygments_plant2 = next(
        i["id"] for i in _ok(estate, "analyst-user", "/api/findings?package=pygments")["items"]
        if i["asset"] == "plant2-ws-11")
    assert _state(engine, pygments_plant2) == "open"
    before = _decisions(engine)
    # Another plant's asset is unknown to them; a group or global decision would reach
    # outside their part: refused, nothing stored.
    answer = client.post("/api/triage", headers=auth, json={
        **body, "scope": "asset", "asset_id": estate["assets"]["plant2-ws-11"]})
    assert (answer.status_code, answer.json()) == (
        404, {"detail": f"no asset {estate['assets']['plant2-ws-11']}"})
    for scope in ({"scope": "global"}, {"scope": "group", "group_id": 1}):
        answer = client.post("/api/triage", headers=auth, json={**body, **scope})
        assert answer.status_code == 422, answer.text
        assert "you see part of the estate only" in answer.json()["detail"]
    assert _decisions(engine) == before
    assert _state(engine, outside) == _state(engine, pygments_plant2) == "open"
    # The unscoped analyst's decisions (on plant 2, and global) cannot be withdrawn by
    # them: unknown ids; their own can.
    other = {"Authorization": f"Bearer {estate['tokens']['analyst-user']}"}
    theirs = []
    for extra in ({"scope": "asset", "asset_id": estate["assets"]["plant2-ws-11"]},
                  {"scope": "global"}):
        answer = client.post("/api/triage", headers=other, json={
            **body, "decision": "not_affected", **extra})
        assert answer.status_code == 201, answer.text
        theirs.append(answer.json()["id"])
    for decision in theirs:
        answer = client.delete(f"/api/triage/{decision}", headers=auth)
        assert (answer.status_code, answer.json()) == (
            404, {"detail": f"no active decision {decision}"})
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(triage_decisions).where(
            triage_decisions.c.id.in_(theirs),
            triage_decisions.c.revoked_at.is_(None))).scalar_one() == 2
    answer = client.delete(f"/api/triage/{decision_id}", headers=auth)
    assert answer.status_code == 200, answer.text


def test_devices_of_the_scope(estate: dict[str, Any], engine: Engine) -> None:
    for name, group in (("plant1-fw-01", "plant1"), ("plant2-fw-01", "plant2")):
        add_device(engine, declared_device(name, "Fortinet", "FortiGate-60F", "7.2.5",
                                           "FortiOS", None), actor="test")
        add_group_members(engine, {group: (name,)})
    assert [d["name"] for d in _ok(estate, "plant1-viewer", "/api/devices")] == [
        "plant1-fw-01"]
    assert [d["name"] for d in _ok(estate, "viewer-user", "/api/devices")] == [
        "plant1-fw-01", "plant2-fw-01"]
    page = _session(estate, "plant1-viewer").get("/devices")
    assert page.status_code == 200
    assert "plant1-fw-01" in page.text and "plant2-fw-01" not in page.text


# --- the pages ------------------------------------------------------------------------------

def _session(estate: dict[str, Any], user: str) -> TestClient:
    client: TestClient = estate["client"]
    client.cookies.clear()
    estate["csrf"] = sign_in(client, user, "plant1-password" if user.startswith("plant1")
                             else f"{user.split('-')[0]}-password")
    return client


def _linked(html: str, kind: str) -> set[int]:
    return {int(i) for i in re.findall(rf'href="/{kind}/(\d+)"', html)}


def test_pages_show_plant1_only(estate: dict[str, Any]) -> None:
    client = _session(estate, "plant1-analyst")
    plant1_assets = {estate["assets"][h] for h in PLANT1}
    page = client.get("/findings?state=any")
    assert page.status_code == 200
    assert _linked(page.text, "findings") == _ids(estate, PLANT1)
    assert _linked(page.text, "assets") == plant1_assets
    assert '<p class="count" id="finding-count">11 findings</p>' in page.text
    page = client.get("/findings")  # open: the summary's count
    assert '<p class="count" id="finding-count">11 findings</p>' in page.text
    page = client.get("/assets")
    assert _linked(page.text, "assets") == plant1_assets
    # The group filter offers the groups of their assets only; the tag list is theirs.
    assert re.findall(r'<option value="([^"]*)"', page.text.split('name="group"')[1]
                      .split("</select>")[0]) == ["", "plant1"]
    for host in OUTSIDE:
        assert host not in page.text
        assert client.get(f"/assets/{estate['assets'][host]}").status_code == 404
    assert client.get(f"/findings/{estate['findings']['plant2-ws-11'][0]}").status_code \
        == 404
    page = client.get(f"/assets/{estate['assets']['plant1-app-07']}")
    assert page.status_code == 200 and "plant1-app-07" in page.text
    page = client.get(f"/findings/{estate['findings']['plant1-app-07'][0]}")
    assert page.status_code == 200
    # Their triage form decides for this asset only.
    assert 'value="asset"' in page.text and 'value="global"' not in page.text
    # The unscoped analyst: every asset, and a decision for every asset offered.
    client = _session(estate, "analyst-user")
    page = client.get("/findings?state=any")
    assert _linked(page.text, "findings") == _ids(estate, ALL)
    assert _linked(client.get("/assets").text, "assets") == set(estate["assets"].values())
    page = client.get(f"/findings/{estate['findings']['plant2-ws-11'][0]}")
    assert 'value="global"' in page.text


def test_page_triage_within_scope_only(estate: dict[str, Any], engine: Engine) -> None:
    client = _session(estate, "plant1-analyst")
    csrf = estate["csrf"]
    expires = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    form = {"decision": "accepted", "reason": "compensated by the plant firewall",
            "expires": expires, "csrf": csrf}
    inside = estate["findings"]["plant1-app-07"][0]
    outside = estate["findings"]["plant2-ws-11"][0]
    before = _decisions(engine)
    # Another plant's finding: the 404 page, nothing stored.
    answer = client.post(f"/findings/{outside}/triage", data={**form, "scope": "asset"})
    assert answer.status_code == 404
    # Every asset (not offered to them, sent by hand): refused, nothing stored.
    answer = client.post(f"/findings/{inside}/triage", data={**form, "scope": "global"})
    assert answer.status_code == 422
    assert page_csrf(answer.text) == csrf
    assert _decisions(engine) == before
    assert _state(engine, inside) == _state(engine, outside) == "open"
    # Their own finding: recorded for this asset.
    answer = client.post(f"/findings/{inside}/triage", data={**form, "scope": "asset"})
    assert (answer.status_code, answer.headers["location"]) == (303, f"/findings/{inside}")
    assert _decisions(engine) == before + 1
    assert _state(engine, inside) == "accepted"
    assert _state(engine, outside) == "open"  # the same firefox CVE on plant2-ws-11
    with engine.connect() as conn:
        row = conn.execute(select(triage_decisions).order_by(
            triage_decisions.c.id.desc())).first()
        assert row is not None
        assert (row.scope, row.asset_id, row.created_by) == (
            "asset", estate["assets"]["plant1-app-07"], "plant1-analyst")
        assert group_id_named(conn, "plant1") > 0
