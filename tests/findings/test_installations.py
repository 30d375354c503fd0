"""One finding per (asset, vulnerability, package) listing every affected installation.

Real inputs: pip's and aiohttp's PyPA advisories, a real ``Pipfile.lock`` (syft's test
data) in two projects of one host, and this machine's own Python installations as the
collector finds them (ten pips, from 18.1 to 24.2).
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, func, inspect, select

from patchpilot import worker
from patchpilot.db.tables import finding_events, finding_priority, findings
from patchpilot.findings.commands import python_for
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.findings.queries import finding_detail
from patchpilot.findings.scan import scan_inventory
from patchpilot.inventory.collect import CollectOptions, python_packages
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.inventory.transports.file import read_path
from patchpilot.inventory.transports.local import LocalHost
from patchpilot.knowledge.update import update_from
from patchpilot.knowledge.versions import version_key
from patchpilot.models import Ecosystem, Package
from patchpilot.queue import Job
from patchpilot.scans.plan import build_plan, plan_rows
from patchpilot.scans.rematch import rematch_all

PIP = ["PYSEC-2013-8", "PYSEC-2013-9", "PYSEC-2014-11", "PYSEC-2019-160", "PYSEC-2020-173",
       "PYSEC-2021-437", "PYSEC-2023-228"]
AIOHTTP = ["PYSEC-2021-76", "PYSEC-2022-43059", "PYSEC-2023-120", "PYSEC-2023-246",
           "PYSEC-2023-247", "PYSEC-2023-250", "PYSEC-2023-251", "PYSEC-2024-24",
           "PYSEC-2024-26"]
PYPI = Ecosystem("PyPI")
PIPFILE_LOCK = "inventories/pipfile-lock/syft__python__pipfile-lock__Pipfile.lock"
# aiohttp 3.7.4.post0 (that Pipfile.lock): every fixed CVE, by the version that fixes it.
AIOHTTP_FIXES = {"CVE-2023-37276": "3.8.5", "CVE-2023-47627": "3.8.6",
                 "CVE-2023-47641": "3.8.0", "CVE-2023-49081": "3.9.0",
                 "CVE-2023-49082": "3.9.0", "CVE-2024-23334": "3.9.2",
                 "CVE-2024-23829": "3.9.2"}


@pytest.fixture
def kb(engine: Engine, feed_dir) -> Engine:  # type: ignore[no-untyped-def]
    files = {f"osv/{a}.yaml": f"osv/pypi/pip/{a}.yaml" for a in PIP}
    files |= {f"osv/{a}.yaml": f"osv/pypi/aiohttp/{a}.yaml" for a in AIOHTTP}
    assert {r.status for r in update_from(engine, [feed_dir(files)])} == {"loaded"}
    return engine


def _inventory(packages: list[Package], host: str = "build-01") -> Inventory:
    return Inventory.from_packages(packages, complete=True,
                                   asset=AssetIdentity(hostname=host, machine_id=host),
                                   collector=Collector(name="agent"))


def _process(engine: Engine, inv: Inventory) -> int:
    """Ingest and run the match job, as the server does."""
    result = ingest_inventory(engine, inv)
    job = Job(0, "match", {"inventory_id": result.inventory_id}, 1, None, None, None, None)
    return int(worker.HANDLERS["match"](engine, job)["asset_id"])


def _finding(engine: Engine, vuln: str, package: str) -> tuple[str, list[list[str | None]]]:
    with engine.connect() as conn:
        state, column = conn.execute(select(findings.c.state, findings.c.installations).where(
            findings.c.vuln_id == vuln, findings.c.package == package)).one()
    return state, orjson.loads(column)


def _events(engine: Engine, kind: str) -> list[dict[str, object] | None]:
    with engine.connect() as conn:
        return [orjson.loads(d) if d else None for d in conn.execute(
            select(finding_events.c.detail).where(finding_events.c.kind == kind)
            .order_by(finding_events.c.id)).scalars()]


def _projects(tmp_path: Path, shared_data: Path, *names: str) -> Path:
    """A folder with one project per name, each holding the real Pipfile.lock."""
    root = tmp_path / "srv"
    for name in names:
        (root / name).mkdir(parents=True)
        shutil.copyfile(shared_data / PIPFILE_LOCK, root / name / "Pipfile.lock")
    return root


def test_two_projects_make_one_finding_with_both_installations(
        kb: Engine, tmp_path: Path, shared_data: Path) -> None:
    root = _projects(tmp_path, shared_data, "blog", "shop")
    inv = read_path(root, hostname="web-01")
    aiohttp = [p for p in inv.to_packages() if p.name == "aiohttp"]
    assert [(p.version, p.location) for p in aiohttp] == [
        ("3.7.4.post0", f"{root}/blog/Pipfile.lock"),
        ("3.7.4.post0", f"{root}/shop/Pipfile.lock")]
    result = scan_inventory(kb, inv)
    found = [f for f in result.findings if f.package == "aiohttp"]
    # One finding per vulnerability (7), not one per project (14); PYSEC-2022-43059
    # (CVE-2022-33124) is withdrawn.
    assert sorted(f.vuln_id for f in found) == sorted(AIOHTTP_FIXES)
    cve = next(f for f in found if f.vuln_id == "CVE-2024-23829")
    assert [(i.location, i.installed_version, i.fixed_version, i.command)
            for i in cve.installations] == [
        (f"{root}/blog/Pipfile.lock", "3.7.4.post0", "3.9.2",
         f"cd {root}/blog && pipenv install 'aiohttp>=3.9.2'"),
        (f"{root}/shop/Pipfile.lock", "3.7.4.post0", "3.9.2",
         f"cd {root}/shop && pipenv install 'aiohttp>=3.9.2'")]
    assert cve.fix.command == (f"cd {root}/blog && pipenv install 'aiohttp>=3.9.2'\n"
                               f"cd {root}/shop && pipenv install 'aiohttp>=3.9.2'")


def test_upgrading_one_installation_leaves_the_finding_open(
        kb: Engine, tmp_path: Path, shared_data: Path) -> None:
    root = _projects(tmp_path, shared_data, "blog", "shop")
    packages = read_path(root).to_packages()
    blog, shop = f"{root}/blog/Pipfile.lock", f"{root}/shop/Pipfile.lock"
    both = _inventory(packages, "web-01")
    shop_only = _inventory([p for p in packages if p.location == shop], "web-01")
    _process(kb, both)
    assert _finding(kb, "CVE-2024-23829", "aiohttp")[0] == "open"
    assert len(_events(kb, "new")) == 7

    # The blog's aiohttp is upgraded (its lock no longer names a vulnerable one).
    _process(kb, shop_only)
    state, installations = _finding(kb, "CVE-2024-23829", "aiohttp")
    assert state == "open"
    assert [(i[0], i[1]) for i in installations] == [(shop, "3.7.4.post0")]
    assert _events(kb, "fixed") == []
    changed = _events(kb, "installations_changed")
    assert len(changed) == 7
    assert changed[0] == {"fixed": [[blog, "3.7.4.post0"]], "added": []}

    # And the shop's: nothing affected is left, every finding is fixed.
    upgraded = _inventory([replace(p, version="3.9.2") if p.name == "aiohttp" else p
                           for p in packages if p.location == shop], "web-01")
    _process(kb, upgraded)
    assert _finding(kb, "CVE-2024-23829", "aiohttp")[0] == "fixed"
    assert len(_events(kb, "fixed")) == 7
    assert len(_events(kb, "installations_changed")) == 7


def _machine_pips() -> list[Package]:
    found = asyncio.run(python_packages(LocalHost(), CollectOptions(python=True)))
    return [p for p in found.packages if p.name.lower() == "pip"]


def test_every_old_pip_of_this_machine_is_in_the_finding(kb: Engine) -> None:
    """CVE-2023-5752 (pip < 23.3) lists every pip the collector found older than 23.3,
    with its folder and the command of the Python that owns it."""
    pips = _machine_pips()
    fixed = version_key("PyPI", "23.3")
    vulnerable = sorted({(p.location, p.version) for p in pips
                         if version_key("PyPI", p.version) < fixed})
    # This machine has several Pythons with an old pip (pyenv's and Debian's).
    assert len(vulnerable) >= 2
    asset_id = _process(kb, _inventory(pips))
    with kb.connect() as conn:
        fid = conn.execute(select(findings.c.id).where(
            findings.c.asset_id == asset_id, findings.c.vuln_id == "CVE-2023-5752")).scalar()
        detail = finding_detail(conn, fid)
    installations = detail.data["installations"]
    assert sorted((i["location"], i["installed_version"]) for i in installations) \
        == vulnerable
    for i in installations:
        interpreter, user = python_for(i["location"])  # type: ignore[misc]
        assert i["fixed_version"] == "23.3"
        assert i["command"] == (f"{interpreter} -m pip install --upgrade "
                                f"{'--user ' if user else ''}'pip>=23.3'")
    # Oldest first; the finding's version columns are the oldest's and the highest fix.
    assert detail.row.installed_version == installations[0]["installed_version"]
    assert detail.row.fixed_version == "23.3"
    # A re-match of the estate (from the stored asset_packages rows) finds the same
    # installations, with their locations: nothing changes, no event.
    rematch_all(kb)
    assert _finding(kb, "CVE-2023-5752", "pip") == (
        "open", [list(i.values()) for i in installations])
    assert _events(kb, "installations_changed") == []

    # The plan: one item per installation, each upgraded once, to the highest fix any
    # of its CVEs needs (an 18.1 needs 19.2, 21.1 and 23.3: it gets 23.3).
    with kb.connect() as conn:
        plan = build_plan(conn)
    pip_items = [i for i in plan.items if i.package == "pip"]
    assert [i.fixed_version for i in pip_items] == ["23.3"]
    (host,) = pip_items[0].hosts
    assert sorted((i.location, i.installed_version) for i in host.installations) \
        == vulnerable
    assert {i.command for i in host.installations} == {i["command"] for i in installations}


def test_the_plan_upgrades_each_installation_once_to_its_highest_fix(
        kb: Engine, tmp_path: Path, shared_data: Path) -> None:
    """aiohttp 3.7.4.post0 has 7 fixed CVEs, fixed in 3.8.0 … 3.9.2: one item, 3.9.2,
    with both projects' installations and their own commands; pip 18.1 in a pyenv
    Python (CVEs fixed in 19.2, 21.1, 23.3) and pip 23.2.1 (23.3) are one item, 23.3."""
    root = _projects(tmp_path, shared_data, "blog", "shop")
    site = "/root/.pyenv/versions/3.6.15/lib/python3.6/site-packages"
    venv = "/srv/app/venv/lib/python3.11/site-packages"
    pips = [Package(PYPI, "pip", "18.1", location=site),
            Package(PYPI, "pip", "23.2.1", location=venv)]
    _process(kb, _inventory([*read_path(root).to_packages(), *pips], "web-01"))
    _process(kb, _inventory([Package(PYPI, "aiohttp", "3.8.5", location="/opt/x/uv.lock")],
                            "web-02"))
    with kb.connect() as conn:
        plan = build_plan(conn)
    items = {(i.package, i.fixed_version): i for i in plan.items}
    assert sorted(items) == [("aiohttp", "3.9.2"), ("pip", "23.3")]
    aiohttp = items[("aiohttp", "3.9.2")]
    assert aiohttp.vulns == sorted(AIOHTTP_FIXES)
    assert [h.name for h in aiohttp.hosts] == ["web-01", "web-02"]
    assert aiohttp.summary == "aiohttp → 3.9.2 fixes 7 CVEs on 2 hosts"
    assert [(i.location, i.installed_version, i.command)
            for i in aiohttp.hosts[0].installations] == [
        (f"{root}/blog/Pipfile.lock", "3.7.4.post0",
         f"cd {root}/blog && pipenv install 'aiohttp>=3.9.2'"),
        (f"{root}/shop/Pipfile.lock", "3.7.4.post0",
         f"cd {root}/shop && pipenv install 'aiohttp>=3.9.2'")]
    # 3.8.5 needs 3.8.6, 3.9.0 and 3.9.2: upgraded once, to 3.9.2 (uv.lock's project).
    assert [(i.location, i.installed_version, i.command)
            for i in aiohttp.hosts[1].installations] == [
        ("/opt/x/uv.lock", "3.8.5", "cd /opt/x && uv add 'aiohttp>=3.9.2'")]
    pip = items[("pip", "23.3")]
    assert pip.vulns == ["CVE-2019-20916", "CVE-2021-3572", "CVE-2023-5752"]
    assert [(i.location, i.installed_version, i.command)
            for i in pip.hosts[0].installations] == [
        (site, "18.1",
         "/root/.pyenv/versions/3.6.15/bin/python -m pip install --upgrade 'pip>=23.3'"),
        (venv, "23.2.1", "/srv/app/venv/bin/python -m pip install --upgrade 'pip>=23.3'")]
    rows = [r for r in plan_rows(plan.items) if r["package"] == "pip"]
    assert [(r["location"], r["installed_version"]) for r in rows] == [
        (site, "18.1"), (venv, "23.2.1")]


def test_migration_0012_keeps_every_finding_and_reads_old_rows_as_one_copy(
        kb: Engine, migrate) -> None:  # type: ignore[no-untyped-def]
    site = "/srv/app/venv/lib/python3.11/site-packages"
    inv = _inventory([Package(PYPI, "pip", "18.1", location=site)])
    _process(kb, inv)
    with kb.connect() as conn:
        before = conn.execute(select(func.count()).select_from(findings)).scalar_one()
        ranked = conn.execute(select(func.count()).select_from(finding_priority)).scalar_one()
    assert (before, ranked) == (3, 3)
    migrate(kb, "downgrade", "0011")
    with kb.connect() as conn:
        assert "installations" not in {c["name"] for c in inspect(conn).get_columns("findings")}
        assert conn.execute(select(func.count()).select_from(findings)).scalar_one() == 3
        assert conn.execute(select(func.count()).select_from(finding_priority)
                            ).scalar_one() == 3
    migrate(kb, "upgrade", "head")
    with kb.connect() as conn:
        fid = conn.execute(select(findings.c.id).where(
            findings.c.vuln_id == "CVE-2023-5752")).scalar_one()
        assert conn.execute(select(findings.c.installations).where(
            findings.c.id == fid)).scalar_one() is None
        # Before its next match, a row stands for the one copy its columns describe.
        assert finding_detail(conn, fid).data["installations"] == [
            {"location": None, "installed_version": "18.1", "fixed_version": "23.3",
             "command": None}]
        assert [(i.package, i.fixed_version) for i in build_plan(conn).items] == [
            ("pip", "23.3")]
    _process(kb, inv)
    assert _finding(kb, "CVE-2023-5752", "pip") == ("open", [
        [site, "18.1", "23.3", "/srv/app/venv/bin/python -m pip install --upgrade 'pip>=23.3'"]])
    assert _events(kb, "installations_changed") == []
