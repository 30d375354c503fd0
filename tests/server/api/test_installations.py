"""A finding's installations in the API (list and detail), the pages and the plan's
exports: pip 18.1 in a pyenv Python and 23.2.1 in a virtualenv (real PyPA advisories)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from html import unescape

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from patchpilot import worker
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package
from patchpilot.queue import Job
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token, set_password

PIP = ["PYSEC-2020-173", "PYSEC-2021-437", "PYSEC-2023-228"]
PYENV = "/root/.pyenv/versions/3.6.15/lib/python3.6/site-packages"
VENV = "/srv/app/venv/lib/python3.11/site-packages"
PYENV_CMD = "/root/.pyenv/versions/3.6.15/bin/python -m pip install --upgrade 'pip>=23.3'"
VENV_CMD = "/srv/app/venv/bin/python -m pip install --upgrade 'pip>=23.3'"


@pytest.fixture
def client(engine: Engine, feed_dir, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
           ) -> Iterator[TestClient]:
    files = {f"osv/{a}.yaml": f"osv/pypi/pip/{a}.yaml" for a in PIP}
    assert {r.status for r in update_from(engine, [feed_dir(files)])} == {"loaded"}
    pypi = Ecosystem("PyPI")
    inv = Inventory.from_packages(
        [Package(pypi, "pip", "18.1", location=PYENV),
         Package(pypi, "pip", "23.2.1", location=VENV)], complete=True,
        asset=AssetIdentity(hostname="build-01", machine_id="build-01"),
        collector=Collector(name="agent"))
    stored = ingest_inventory(engine, inv)
    worker.HANDLERS["match"](engine, Job(0, "match", {"inventory_id": stored.inventory_id},
                                         1, None, None, None, None))
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", "test-secret-" + "x" * 32)
    set_password(engine, "viewer-user", Role.VIEWER, "viewer-password")
    with TestClient(create_app(engine)) as c:
        yield c


def _auth(engine: Engine) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_api_token(engine, user='v', role=Role.VIEWER)[0]}"}


def test_api_lists_every_installation(client: TestClient, engine: Engine) -> None:
    viewer = _auth(engine)
    listed = client.get("/api/findings", params={"vuln": "CVE-2023-5752"},
                        headers=viewer).json()["items"]
    assert len(listed) == 1
    assert listed[0]["installed_version"] == "18.1" and listed[0]["fixed_version"] == "23.3"
    assert listed[0]["installations"] == [
        {"location": PYENV, "installed_version": "18.1", "fixed_version": "23.3",
         "command": PYENV_CMD},
        {"location": VENV, "installed_version": "23.2.1", "fixed_version": "23.3",
         "command": VENV_CMD}]
    detail = client.get(f"/api/findings/{listed[0]['id']}", headers=viewer).json()
    assert detail["installations"] == listed[0]["installations"]
    assert detail["fix"]["command"] == f"{PYENV_CMD}\n{VENV_CMD}"

    plan = client.get("/api/plan", headers=viewer).json()
    assert [(i["package"], i["fixed_version"]) for i in plan["items"]] == [("pip", "23.3")]
    assert plan["items"][0]["summary"] == "pip → 23.3 fixes 3 CVEs on 1 host"
    assert plan["items"][0]["first_hosts"][0]["installations"] == [
        {"location": PYENV, "installed_version": "18.1", "command": PYENV_CMD},
        {"location": VENV, "installed_version": "23.2.1", "command": VENV_CMD}]
    rows = list(csv.DictReader(io.StringIO(client.get("/api/plan.csv", headers=viewer).text)))
    assert [(r["location"], r["installed_version"], r["command"]) for r in rows] == [
        (PYENV, "18.1", PYENV_CMD), (VENV, "23.2.1", VENV_CMD)]
    files = client.get("/api/plan/ansible", headers=viewer,
                       params={"format": "json"}).json()["files"]
    (play,) = yaml.safe_load(files["playbook.yml"])
    assert play["tasks"] == [{"name": "Upgrade pip → 23.3 (3 vulnerabilities)",
                              "ansible.builtin.shell": "{{ item }}",
                              "loop": "{{ pp_item_1_commands | default([]) }}"}]
    assert yaml.safe_load(files["inventory.yml"]) == {"all": {"children": {"pp_item_1": {
        "hosts": {"build-01": {"pp_item_1_commands": [PYENV_CMD, VENV_CMD]}}}}}}


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_pages_show_the_installations(client: TestClient, engine: Engine) -> None:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    client.post("/login", data={"username": "viewer-user", "password": "viewer-password",
                                "csrf": token.group(1), "next": "/findings"})
    listing = _text(client.get("/findings", params={"q": "CVE-2023-5752"}).text)
    assert "pip 18.1, 23.2.1 2 installations" in listing
    fid = re.search(r'data-id="(\d+)"', client.get(
        "/findings", params={"q": "CVE-2023-5752"}).text)
    assert fid is not None
    page = client.get(f"/findings/{fid.group(1)}").text
    table = _text(page[page.index('id="installations"'):page.index("</table>",
                                                                    page.index('id="installations"'))])
    assert f"{PYENV} 18.1 23.3 {PYENV_CMD}" in table
    assert f"{VENV} 23.2.1 23.3 {VENV_CMD}" in table
    plan = _text(client.get("/plan").text)
    assert f"build-01: {PYENV} (18.1) {PYENV_CMD}" in plan
    assert f"build-01: {VENV} (23.2.1) {VENV_CMD}" in plan
