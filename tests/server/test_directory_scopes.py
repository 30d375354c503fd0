"""Issue 18, done when: a user of the directory's plant1-team group signs in (LDAP, real
slapd) and sees only plant 1's assets and findings everywhere -- pages, API, reports,
exports -- and can triage them and nothing else; an OIDC user with an auditor claim
(a real code flow against the loopback provider) reads everything and changes nothing.

The estate is ``scope_estate``'s: plant1 holds plant1-app-07 (ten firefox CVEs) and
plant1-build-02 (one Pygments CVE); plant2-ws-11 has both; plant3-ci has none.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from patchpilot.db.tables import triage_decisions
from tests.builders.scope_estate import scope_estate
from tests.builders.sessions import page_csrf, role_client
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, IdpUser, ProviderServer
from tests.server.test_ldap import _configure, _login
from tests.server.web.test_oidc import through_provider
from tests.slapd import LdapServer, password_of

PLANT1 = ("plant1-app-07", "plant1-build-02")
ELSEWHERE = ("plant2-ws-11", "plant3-ci")
# The directory map both directories share: the plant1 team triages plant 1; auditors
# (an LDAP group DN, an OIDC groups claim) read everything.
MAP = """\
- match: plant1-team
  role: analyst
  groups: [plant1]
- match: cn=auditors,ou=groups,dc=example,dc=org
  role: viewer
- match: auditors
  role: viewer
"""


@pytest.fixture
def estate(engine: Engine, shared_data: Path, tmp_path: Path) -> dict[str, Any]:
    return scope_estate(engine, shared_data, tmp_path / "feeds")


def _hosts_in(text: str) -> set[str]:
    return {h for h in (*PLANT1, *ELSEWHERE) if h in text}


def _triage(client: TestClient, finding_id: int, csrf: str) -> httpx.Response:
    return client.post(f"/findings/{finding_id}/triage",
                       data={"decision": "false_positive", "reason": "isolated line",
                             "scope": "asset", "csrf": csrf})


def _decisions(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(triage_decisions))
                   .scalar_one())


def test_a_plant1_team_member_sees_and_triages_plant1_only(
        engine: Engine, estate: dict[str, Any], slapd: LdapServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _configure(monkeypatch, tmp_path, slapd)
    (tmp_path / "directory-map.yaml").write_text(MAP)
    with role_client(engine, monkeypatch) as client:
        signed_in = _login(client, "alice", password_of("alice"))
        assert signed_in.status_code == 303, signed_in.text
        # Pages: every list shows plant 1's hosts and no other.
        for page in ("/overview", "/findings?state=any", "/assets", "/plan"):
            answer = client.get(page)
            assert answer.status_code == 200, page
            assert _hosts_in(answer.text) <= set(PLANT1), page
        assert _hosts_in(client.get("/assets").text) == set(PLANT1)
        assert _hosts_in(client.get("/findings?state=any").text) == set(PLANT1)
        for name in ELSEWHERE:
            assert client.get(f"/assets/{estate['assets'][name]}").status_code == 404
        outside = estate["findings"]["plant2-ws-11"][0]
        assert client.get(f"/findings/{outside}").status_code == 404
        # Reports and exports: plant 1's rows only.
        report = client.get("/reports/download?kind=technical&format=csv&lang=en")
        assert report.status_code == 200, report.text
        hosts = {row.get("asset") or row.get("host") for row in
                 csv.DictReader(io.StringIO(report.content.decode("utf-8-sig")))}
        assert hosts == set(PLANT1), hosts
        # Triage: plant 1's findings yes; another plant's answers as if it did not exist.
        csrf = page_csrf(client.get("/overview").text)
        inside = estate["findings"]["plant1-app-07"][0]
        assert _triage(client, inside, csrf).status_code == 303
        assert _decisions(engine) == 1
        assert _triage(client, outside, csrf).status_code == 404
        assert _decisions(engine) == 1
        # Nothing else: schedules, playbooks, imports are refused to a scoped user.
        assert client.get("/schedules").status_code == 403
        assert client.get("/playbooks").status_code == 403
    # The API, with a token an admin made for alice: narrowed the same way.
    admin = {"Authorization": f"Bearer {estate['tokens']['admin-user']}"}
    with TestClient(client.app) as api:
        made = api.post("/api/tokens", headers=admin, json={"user": "alice", "role": "analyst"})
        assert made.status_code == 201, made.text
        mine = {"Authorization": f"Bearer {made.json()['token']}"}
        listed = api.get("/api/findings", headers=mine, params={"state": "any",
                                                                "limit": 500}).json()
        rows = listed["items"] if isinstance(listed, dict) else listed
        assert {r["asset"] if isinstance(r["asset"], str) else r["asset"]["name"]
                for r in rows} == set(PLANT1)
        assert api.get(f"/api/findings/{outside}", headers=mine).status_code == 404
        assert api.get("/api/groups", headers=mine).status_code == 403


def test_an_oidc_auditor_reads_everything_and_changes_nothing(
        engine: Engine, estate: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "directory.yaml").write_text(MAP)
    with ProviderServer(IdpUser("u-9", "carol", ["auditors"])) as provider:
        monkeypatch.setenv("PATCHPILOT_DIRECTORY_MAP", str(tmp_path / "directory.yaml"))
        monkeypatch.setenv("PATCHPILOT_OIDC_ISSUER", provider.url)
        monkeypatch.setenv("PATCHPILOT_OIDC_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("PATCHPILOT_OIDC_CLIENT_SECRET", CLIENT_SECRET)
        with role_client(engine, monkeypatch) as client:
            assert through_provider(client, provider).status_code == 303
            assert _hosts_in(client.get("/findings?state=any").text) == {
                "plant1-app-07", "plant1-build-02", "plant2-ws-11"}
            assert _hosts_in(client.get("/assets").text) == {*PLANT1, *ELSEWHERE}
            csrf = page_csrf(client.get("/overview").text)
            for finding_id in (estate["findings"]["plant1-app-07"][0],
                               estate["findings"]["plant2-ws-11"][0]):
                assert _triage(client, finding_id, csrf).status_code == 403
            assert client.post("/sweeps", data={"vuln": "CVE-2022-25235",
                                                "csrf": csrf}).status_code == 403
            assert client.post("/schedules", data={"group": "plant1", "kind": "cron",
                                                   "expression": "0 2 * * 6",
                                                   "timezone": "UTC",
                                                   "csrf": csrf}).status_code == 403
    assert _decisions(engine) == 0
