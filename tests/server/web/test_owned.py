"""The asset page lists the language packages an OS package installed, with the owner;
a finding on such a copy names its owner in the evidence (English and Japanese).

The host: Debian 12 with Debian's ``cryptography 38.0.4`` (owned by
``python3-cryptography 38.0.4-3+deb12u1``, whose shortened changelog names only
CVE-2023-49083), matched against PyPI's real OSV advisories of CVE-2023-49083 and
CVE-2023-23931.
"""

from __future__ import annotations

from collections.abc import Iterator
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from patchpilot.db.tables import findings
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package, PackageOwner
from patchpilot.pipeline import process_inventory
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, set_password
from tests.builders.sessions import sign_in as login

DIST = "/usr/lib/python3/dist-packages"
OWNER = PackageOwner("python3-cryptography", "38.0.4-3+deb12u1")
FEEDS = {
    "osv/PYSEC-2023-254.yaml": "osv/pypi/cryptography/PYSEC-2023-254.yaml",  # CVE-2023-49083
    "osv/PYSEC-2023-11.yaml": "osv/pypi/cryptography/PYSEC-2023-11.yaml",  # CVE-2023-23931
}


@pytest.fixture
def client(engine: Engine, feed_dir, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
           ) -> Iterator[tuple[TestClient, str]]:
    """A logged-in analyst's client and CSRF token, the host matched."""
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", "test-secret-" + "x" * 32)
    update_from(engine, [feed_dir(FEEDS)])
    debian = Ecosystem("Debian:12")
    inventory = Inventory.from_packages(
        [Package(debian, "python3-cryptography", OWNER.version,
                 source_name="python-cryptography", source_version=OWNER.version),
         Package(Ecosystem("PyPI"), "cryptography", "38.0.4", location=DIST, owner=OWNER)],
        asset=AssetIdentity(hostname="deb-owned"), collector=Collector(name="test"),
        changelog_cves={"python3-cryptography": ["CVE-2023-49083"]})
    process_inventory(engine, ingest_inventory(engine, inventory).inventory_id)
    set_password(engine, "analyst-user", Role.ANALYST, "analyst-password")
    with TestClient(create_app(engine), follow_redirects=False) as c:
        yield c, login(c, "analyst-user", "analyst-password")


def test_asset_and_finding_pages_name_the_owner(client: tuple[TestClient, str],
                                                engine: Engine) -> None:
    web, csrf = client
    with engine.connect() as conn:
        [(finding_id, vuln_id, asset_id)] = conn.execute(
            select(findings.c.id, findings.c.vuln_id, findings.c.asset_id)).all()
    assert vuln_id == "CVE-2023-23931"  # CVE-2023-49083: the changelog names its fix
    page = unescape(web.get(f"/assets/{asset_id}").text)
    assert "Language packages installed by the operating system (1)" in page
    assert ("<tr><td>PyPI cryptography</td><td>38.0.4</td>"
            "<td>python3-cryptography 38.0.4-3+deb12u1</td></tr>") in page
    finding = unescape(web.get(f"/findings/{finding_id}").text)
    assert ("<dt>Owned by</dt><dd>python3-cryptography 38.0.4-3+deb12u1 (no distribution "
            "advisories loaded, and its changelog does not name this vulnerability)</dd>"
            ) in finding
    assert web.post("/language", data={"lang": "ja", "csrf": csrf}).status_code == 303
    ja = unescape(web.get(f"/assets/{asset_id}").text)
    assert "OS パッケージがインストールした言語パッケージ (1)" in ja
