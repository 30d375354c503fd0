"""nmap discovery: a real nmap against a real sshd and HTTP server on loopback, a saved
nmap XML file, hostile XML, the scope, and the hosts stored through the ingest."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.db.tables import asset_packages, assets, inventories
from patchpilot.discovery.nmap import (
    NmapOptions,
    host_inventory,
    nmap_command,
    parse_nmap_xml,
    run_nmap,
)
from patchpilot.discovery.scope import OutOfScope, check_targets
from patchpilot.errors import InvalidInput, InventoryFormatError
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import (
    AssetIdentity,
    Collector,
    DeviceService,
    Inventory,
    PackageEntry,
)
from patchpilot.scans.discovery import store_discovered
from tests.snmpd import nmap_or_skip
from tests.sshd import SshServer, free_port, sshd_problem, start_sshd, wait_for_port

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nmap"
SAVED = FIXTURES / "loopback_ssh_http_os.xml"
OPENSSH_VERSION = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "openssh-server"],
                                 capture_output=True, text=True, check=False).stdout


@dataclass
class LoopbackServices:
    """A real sshd and a Python HTTP server listening on loopback ports."""

    ssh: SshServer
    http_port: int


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServices]:
    nmap_or_skip()
    problem = sshd_problem()
    if problem:
        import os
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"cannot start sshd under CI=true: {problem}")
        pytest.skip(problem)
    ssh = start_sshd(tmp_path_factory.mktemp("sshd"))
    port = free_port()
    http = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield LoopbackServices(ssh, port)
    finally:
        http.terminate()
        http.wait(timeout=5)
        ssh.stop()


def test_nmap_finds_the_loopback_services_and_their_cpe_packages(
        services: LoopbackServices) -> None:
    run = run_nmap(["127.0.0.1"], NmapOptions(
        rate=5000, ports=f"{services.ssh.port},{services.http_port}"))
    scan = parse_nmap_xml(run.xml, "nmap output")
    [host] = scan.hosts
    assert host.addresses == ("127.0.0.1",)
    upstream = OPENSSH_VERSION.split("-")[0].split(":")[-1]  # 1:9.2p1-2+deb12u10 -> 9.2p1
    debian = OPENSSH_VERSION.split("-", 1)[1]
    assert host.services == tuple(sorted((
        DeviceService(port=services.ssh.port, protocol="tcp", name="ssh", product="OpenSSH",
                      version=f"{upstream} Debian {debian} protocol 2.0",
                      cpes=[f"cpe:/a:openbsd:openssh:{upstream}", "cpe:/o:linux:linux_kernel"]),
        DeviceService(port=services.http_port, protocol="tcp", name="http",
                      product="SimpleHTTPServer",
                      version=f"0.6 Python {sys.version.split()[0]}",
                      cpes=["cpe:/a:python:simplehttpserver:0.6"])),
        key=lambda s: s.port))  # nmap lists ports in order
    inv = host_inventory(host)
    assert sorted((p.ecosystem, p.name, p.version) for p in inv.packages) == [
        ("CPE", "openbsd:openssh", upstream), ("CPE", "python:simplehttpserver", "0.6")]
    assert inv.asset == AssetIdentity(ip_addresses=["127.0.0.1"])
    assert inv.device is not None and inv.device.sources == ["nmap"]
    assert inv.device.identified is False
    assert scan.elapsed is not None and scan.elapsed <= run.seconds + 1


def test_the_command_line_is_polite_and_safe() -> None:
    assert nmap_command(["10.0.0.0/24"], NmapOptions(rate=200, ports="22,80,T:443")) == [
        "nmap", "-oX", "-", "-sV", "--max-rate", "200", "--host-timeout", "15m",
        "-p", "22,80,T:443", "-n", "--", "10.0.0.0/24"]
    with pytest.raises(InvalidInput, match="--ports '22 --script=evil'"):
        nmap_command(["10.0.0.1"], NmapOptions(rate=200, ports="22 --script=evil"))


def test_a_saved_nmap_file_keeps_the_os_guess_as_seen_never_as_a_package() -> None:
    scan = parse_nmap_xml(SAVED.read_bytes(), str(SAVED))
    assert scan.elapsed == 11.14
    [host] = scan.hosts
    inv = host_inventory(host)
    assert [(p.name, p.version) for p in inv.packages] == [
        ("openbsd:openssh", "9.2p1"), ("python:simplehttpserver", "0.6")]
    assert inv.device is not None
    assert inv.device.seen == {"os guess": "Linux 5.0 - 5.2 (accuracy 97%)",
                               "os guess cpe": "cpe:/o:linux:linux_kernel:5"}
    assert [s.port for s in inv.device.services] == [33655, 47441]
    assert inv.device.services[0].version == "9.2p1 Debian 2+deb12u10 protocol 2.0"
    assert inv.warnings == [
        "unidentified device: 127.0.0.1: nmap saw os guess Linux 5.0 - 5.2 (accuracy 97%); "
        "services 33655/tcp ssh OpenSSH 9.2p1 Debian 2+deb12u10 protocol 2.0, 47441/tcp "
        "http SimpleHTTPServer 0.6 Python 3.11.7; its services' CPEs are matched, its own "
        "firmware is not (read it with SNMP or declare it)"]


@pytest.mark.parametrize(("name", "message"), [
    ("billion_laughs.xml", "refused: the XML EntitiesForbidden(name='lol', "),
    ("external_entity.xml", "refused: the XML EntitiesForbidden(name='xxe', "),
    ("truncated.xml", "not well-formed XML: "),
    ("not_nmap.xml", "not an nmap XML file (its root is <NessusClientData_v2>, nmap -oX "
                     "writes <nmaprun>)"),
])
def test_hostile_or_broken_xml_is_refused_naming_the_file(name: str, message: str) -> None:
    path = FIXTURES / name
    with pytest.raises(InventoryFormatError) as caught:
        parse_nmap_xml(path.read_bytes(), str(path))
    assert str(caught.value).startswith(f"{path}")
    assert message in str(caught.value)
    assert "root:" not in str(caught.value)  # /etc/passwd was never read


def test_targets_outside_the_scope_are_refused() -> None:
    scope = ["10.1.0.0/16", "127.0.0.0/8"]
    assert [t.probe for t in check_targets(["10.1.2.0/24", "127.0.0.1"], scope)] == [
        "10.1.2.0/24", "127.0.0.1"]
    with pytest.raises(OutOfScope) as caught:
        check_targets(["10.1.2.3", "10.0.0.0/8", "192.0.2.1"], scope)
    assert str(caught.value) == (
        "outside the discovery scope (10.1.0.0/16, 127.0.0.0/8): 10.0.0.0/8, 192.0.2.1; only "
        "targets inside PATCHPILOT_DISCOVERY_SCOPE are probed")
    # A name is probed at the address it resolves to, which must be inside the scope.
    assert [t.probe for t in check_targets(["fw1"], scope, resolver=lambda n: [
        "10.1.9.9"])] == ["10.1.9.9"]
    with pytest.raises(OutOfScope, match=r": fw2 \(192.0.2.9\); "):
        check_targets(["fw2"], scope, resolver=lambda n: ["10.1.9.9", "192.0.2.9"])
    with pytest.raises(OutOfScope, match="no discovery scope is configured: set "
                                         "PATCHPILOT_DISCOVERY_SCOPE"):
        check_targets(["127.0.0.1"], [])
    with pytest.raises(InvalidInput, match="nmap ranges such as 10.0.0.1-20 are written"):
        check_targets(["10.1.0.1-20"], scope, resolver=lambda n: [])


def test_the_command_refuses_a_target_outside_the_scope(tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["discover", "192.0.2.0/24", "-p", "22"], env={
        "PATCHPILOT_HOME": str(tmp_path), "PATCHPILOT_DISCOVERY_SCOPE": "127.0.0.0/8"})
    assert done.exit_code == 2
    assert "outside the discovery scope (127.0.0.0/8): 192.0.2.0/24" in " ".join(
        done.output.split())


def test_the_command_imports_a_saved_file_as_an_asset(tmp_path: Path) -> None:
    env = {"PATCHPILOT_HOME": str(tmp_path)}
    done = CliRunner().invoke(app, ["discover", "--from-xml", str(SAVED), "--json"], env=env)
    assert done.exit_code == 0, done.output
    listed = orjson.loads(done.stdout)
    assert [p["name"] for p in listed[0]["packages"]] == ["openbsd:openssh",
                                                         "python:simplehttpserver"]
    bad = CliRunner().invoke(app, ["discover", "--from-xml",
                                   str(FIXTURES / "billion_laughs.xml")], env=env)
    assert bad.exit_code == 2
    assert f"{FIXTURES / 'billion_laughs.xml'}: refused: the XML EntitiesForbidden" in \
        " ".join(bad.output.split())


@pytest.mark.db
def test_discovered_hosts_become_assets_and_never_replace_a_host_scan(engine: Engine) -> None:
    [host] = parse_nmap_xml(SAVED.read_bytes(), str(SAVED)).hosts
    # Loopback addresses never name an asset (ingest.find_asset): as if found at a LAN one.
    inv = host_inventory(host).model_copy(update={
        "asset": AssetIdentity(ip_addresses=["192.0.2.7"])})
    [first] = store_discovered(engine, [inv])
    assert first.kept_because is None and first.job_id is not None
    [again] = store_discovered(engine, [inv])
    assert again.asset_id == first.asset_id  # the same address is the same asset
    with engine.connect() as conn:
        rows = conn.execute(select(asset_packages.c.ecosystem, asset_packages.c.name,
                                   asset_packages.c.version)
                            .where(asset_packages.c.asset_id == first.asset_id)
                            .order_by(asset_packages.c.name)).all()
        assert [tuple(r) for r in rows] == [("CPE", "openbsd:openssh", "9.2p1"),
                                           ("CPE", "python:simplehttpserver", "0.6")]
        assert conn.execute(select(assets.c.name).where(
            assets.c.id == first.asset_id)).scalar() == "192.0.2.7"
    # A host an agent inventories: discovery leaves its package list alone.
    agent = Inventory.from_packages(
        [PackageEntry(ecosystem="Debian:12", name="openssh-server",
                      version="1:9.2p1-2+deb12u10").to_package()],
        asset=AssetIdentity(hostname="web1", ip_addresses=["192.0.2.10"]),
        collector=Collector(name="agent"))
    stored = ingest_inventory(engine, agent)
    found = host_inventory(host).model_copy(update={
        "asset": AssetIdentity(ip_addresses=["192.0.2.10"])})
    [kept] = store_discovered(engine, [found])
    assert kept.kept_because == (f"asset {stored.asset_id} is inventoried by its agent "
                                 "collector; discovery does not replace that")
    with engine.connect() as conn:
        assert conn.execute(select(inventories.c.collector).join(
            assets, assets.c.last_inventory_id == inventories.c.id).where(
            assets.c.id == stored.asset_id)).scalar() == "agent"
