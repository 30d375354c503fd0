"""Imported findings next to the matcher's: the overview, the findings list, a finding's
detail and the patch plan treat a Nessus and a Trivy report like PatchPilot's own scans."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from patchpilot.importers.apply import import_file
from patchpilot.knowledge.update import update_from
from patchpilot.scoring.apply import reprioritise_engine
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token
from tests.builders.plan_estate import FEEDS, OLD_FIREFOX, context, scan


@pytest.fixture
def client(engine: Engine, feed_dir, shared_data: Path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    update_from(engine, [feed_dir(FEEDS)])
    web = scan(engine, "plant1-web-01", OLD_FIREFOX)  # the matcher's findings
    context(engine, web, 1, "internet-facing", "production")
    reports = shared_data / "reports"
    import_file(engine, reports / "tenable" / "nessus__nessus_with_cwe-.nessus")
    import_file(engine, reports / "trivy" / "severity_prio.json")
    reprioritise_engine(engine)
    with TestClient(create_app(engine)) as c:
        yield c


def _viewer(engine: Engine) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_api_token(engine, user='v', role=Role.VIEWER)[0]}"}


def test_overview_list_detail_and_plan(client: TestClient, engine: Engine) -> None:
    auth = _viewer(engine)
    listed = client.get("/api/findings", headers=auth, params={"limit": 1000}).json()
    by_source: dict[str, set[str]] = {}
    for item in listed["items"]:
        for source in item["sources"]:
            by_source.setdefault(source, set()).add(item["asset"])
    assert by_source == {"matcher": {"plant1-web-01"},
                         "importer:tenable": {"testphp"},
                         "importer:trivy": {"sbom.json"}}
    imported = [i for i in listed["items"] if i["sources"] != ["matcher"]]
    assert len(imported) == 15 + 2
    assert all(i["priority"] in ("P1", "P2", "P3", "P4") and i["due_date"] for i in imported)
    certifi = next(i for i in imported if i["package"] == "certifi")
    assert (certifi["vuln_id"], certifi["ecosystem"], certifi["severity"],
            certifi["installed_version"], certifi["fixed_version"]) == (
        "CVE-2023-37920", "PyPI", "Critical", "2022.5.18.1", "2023.7.22")

    overview = client.get("/api/overview", headers=auth).json()
    assert overview["assets_total"] == 3
    assert overview["open_total"] == listed["total"]
    assert overview["by_severity"]["Critical"] >= 1

    detail = client.get(f"/api/findings/{certifi['id']}", headers=auth).json()
    assert detail["sources"] == ["importer:trivy"]
    assert detail["field_sources"]["fix"] == "report"
    assert detail["evidence"]["feed"] == "importer:trivy"
    php = next(i for i in imported if i["vuln_id"] == "CVE-2006-1015")
    nessus = client.get(f"/api/findings/{php['id']}", headers=auth).json()
    assert nessus["solution"] == "Upgrade to PHP version 5.2.0 or later."
    assert nessus["evidence"]["detail"].startswith("Version source :")
    assert (nessus["ecosystem"], nessus["package"]) == ("network", "tcp/80")

    plan = client.get("/api/plan", headers=auth).json()
    packages = {i["package"]: i for i in plan["items"]}
    assert "firefox" in packages  # the matcher's
    assert packages["certifi"]["fixed_version"] == "2023.7.22"
    assert packages["certifi"]["vulns"] == ["CVE-2023-37920"]
    assert packages["curl"]["fixed_version"] == "7.81.0-1ubuntu1.15"
