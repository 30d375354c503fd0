"""Devices declared by hand and by the CMDB import, on both databases: identified through
the CPE table into a CPE package, or stored as unidentified with what was declared --
never dropped; listed with ``--unidentified``; the CLI and the API on top."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from patchpilot.assets.cmdb import parse_csv
from patchpilot.assets.devices import (
    add_device,
    apply_cmdb,
    cmdb_devices,
    latest_device,
    list_devices,
)
from patchpilot.cli import app
from patchpilot.db.tables import asset_packages, assets, audit_log, inventories, jobs
from patchpilot.errors import InvalidInput
from patchpilot.inventory.network.declared import declared_device, declared_inventory
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token

pytestmark = pytest.mark.db

FORTIGATE = declared_device("fw1", "Fortinet", "FortiGate-60F", "7.2.4", "FortiOS",
                            "192.0.2.1")
UNKNOWN = declared_device("printer3", "Kyocera", "TASKalfa 2554ci", "2V4_S000.002.511")


def test_a_declared_fortigate_is_identified() -> None:
    inventory = declared_inventory(FORTIGATE)
    device = inventory.device
    assert device is not None
    assert device.identified is True
    assert device.sources == ["declared"]
    assert device.seen == {"vendor": "Fortinet", "model": "FortiGate-60F",
                           "os name": "FortiOS", "firmware": "7.2.4"}
    assert [(p.ecosystem, p.name, p.version) for p in inventory.packages] == [
        ("CPE", "fortinet:fortios", "7.2.4")]
    assert inventory.asset.hostname == "fw1"
    assert inventory.asset.ip_addresses == ["192.0.2.1"]
    assert inventory.collector.name == "declared"
    assert (inventory.schema_, inventory.complete, inventory.warnings) == (2, True, [])


def test_an_unknown_vendor_is_unidentified_with_what_was_declared() -> None:
    inventory = declared_inventory(UNKNOWN, "cmdb")
    device = inventory.device
    assert device is not None and device.identified is False
    assert device.sources == ["cmdb"]
    assert inventory.packages == []
    assert inventory.complete is False
    assert inventory.warnings == [
        "unidentified device: vendor=Kyocera; model=TASKalfa 2554ci; "
        "firmware=2V4_S000.002.511"]


@pytest.mark.parametrize(("args", "message"), [
    (("", "Cisco"), "name: a device needs a name"),
    (("r1", "  "), "vendor: a device needs its vendor"),
    (("r1", "Cisco", None, None, None, "10.0.0.300"), "ip: '10.0.0.300' is not an IP"),
])
def test_declaring_refuses_what_cannot_be_stored(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        declared_device(*args)


def test_add_and_list_devices(engine: Engine) -> None:
    fw = add_device(engine, FORTIGATE, actor="cli:test")
    printer = add_device(engine, UNKNOWN, actor="cli:test")
    assert (fw.identified, fw.cpe, printer.identified, printer.cpe) == (
        True, "fortinet:fortios", False, None)
    assert fw.job_id is not None and printer.job_id is not None  # matched by the worker
    with engine.connect() as conn:
        every = list_devices(conn)
        only = list_devices(conn, unidentified=True)
        packages = conn.execute(select(asset_packages.c.ecosystem, asset_packages.c.name,
                                       asset_packages.c.version)
                                .where(asset_packages.c.asset_id == fw.asset_id)).all()
        queued = conn.execute(select(jobs.c.kind)).scalars().all()
        audited = conn.execute(select(audit_log.c.action, audit_log.c.actor,
                                      audit_log.c.target)).all()
        one = latest_device(conn, printer.asset_id)
        os_fw, os_printer = (conn.execute(select(assets.c.os).where(
            assets.c.id == i)).scalar_one() for i in (fw.asset_id, printer.asset_id))
        complete = conn.execute(select(inventories.c.complete).order_by(
            inventories.c.id)).scalars().all()
    assert [(d.name, d.device.vendor, d.device.identified, d.cpe) for d in every] == [
        ("fw1", "Fortinet", True, "fortinet:fortios"), ("printer3", "Kyocera", False, None)]
    assert [d.name for d in only] == ["printer3"]
    assert every[0].ip_addresses == ["192.0.2.1"]
    assert [tuple(p) for p in packages] == [("CPE", "fortinet:fortios", "7.2.4")]
    assert (os_fw, os_printer) == ("Fortinet FortiOS 7.2.4",
                                   "Kyocera TASKalfa 2554ci 2V4_S000.002.511")
    assert queued == ["match", "match"]
    assert [tuple(a) for a in audited] == [
        ("device.declare", "cli:test", f"asset:{fw.asset_id}"),
        ("device.declare", "cli:test", f"asset:{printer.asset_id}")]
    assert complete == [True, False]  # an unidentified device closes no finding
    assert one is not None and one.device.seen == {
        "vendor": "Kyocera", "model": "TASKalfa 2554ci", "firmware": "2V4_S000.002.511"}
    # Declared again with a new firmware: the same asset, a new latest inventory.
    again = add_device(engine, declared_device("fw1", "Fortinet", "FortiGate-60F", "7.2.10",
                                               "FortiOS", "192.0.2.1"), actor="cli:test")
    assert again.asset_id == fw.asset_id
    with engine.connect() as conn:
        [row] = [d for d in list_devices(conn) if d.asset_id == fw.asset_id]
    assert row.device.firmware == "7.2.10"


CMDB = """hostname,ip,criticality,vendor,model,firmware,os_name
fw1,192.0.2.1,1,Fortinet,FortiGate-60F,7.2.4,FortiOS
aterm1,192.0.2.9,3,NEC,Aterm WX3600HP,1.0.2,
nas9,192.0.2.10,4,Buffalo,LS220D,1.70,
web1,192.0.2.20,2,,,,
"""


def test_cmdb_rows_with_a_vendor_declare_devices(engine: Engine) -> None:
    records = parse_csv(CMDB)
    assert [(r.vendor, r.model, r.firmware, r.os_name) for r in records] == [
        ("Fortinet", "FortiGate-60F", "7.2.4", "FortiOS"),
        ("NEC", "Aterm WX3600HP", "1.0.2", None), ("Buffalo", "LS220D", "1.70", None),
        (None, None, None, None)]
    assert [d.name for _, d in cmdb_devices(records)] == ["fw1", "aterm1", "nas9"]
    result = apply_cmdb(engine, records, source="cmdb-import", actor="cli:test",
                        label="cmdb.csv")
    # Both devices' assets were created by their inventories, then got their context; the
    # row without a vendor matched nothing (no --create-missing).
    assert len(result.devices) == 3
    assert sorted(m.asset_id for m in result.updated) == sorted(result.devices)
    assert [r.hostname for r in result.unmatched] == ["web1"]
    assert result.to_dict()["devices"] == result.devices
    with engine.connect() as conn:
        found = {d.name: d for d in list_devices(conn)}
    assert found["fw1"].device.sources == ["cmdb"] and found["fw1"].cpe == "fortinet:fortios"
    # No OS name: the model names the product, as JVN's CPE names do.
    assert found["aterm1"].cpe == "nec:aterm_wx3600hp_firmware"
    # No CPE name for a Buffalo LS220D in the table: unidentified, not dropped.
    assert found["nas9"].device.identified is False
    assert found["nas9"].device.seen == {"vendor": "Buffalo", "model": "LS220D",
                                         "firmware": "1.70"}


def test_cli_device_add_and_list(engine: Engine, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", engine.url.render_as_string(False))
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    added = runner.invoke(app, ["device", "add", "edge1", "--vendor", "Juniper", "--model",
                                "srx1500", "--firmware", "21.4R3-S5", "--os-name", "JUNOS",
                                "--ip", "192.0.2.7", "--json"])
    assert added.exit_code == 0, added.output
    assert orjson.loads(added.output)["cpe"] == "juniper:junos"
    other = runner.invoke(app, ["device", "add", "cam1", "--vendor", "Hikvision",
                                "--firmware", "V5.5.0"])
    assert other.exit_code == 0, other.output
    assert "unidentified" in other.output
    listed = runner.invoke(app, ["device", "list", "--unidentified", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = orjson.loads(listed.output)
    assert (row["name"], row["vendor"], row["identified"], row["sources"], row["seen"]) == (
        "cam1", "Hikvision", False, ["declared"], {"vendor": "Hikvision",
                                                    "firmware": "V5.5.0"})
    bad = runner.invoke(app, ["device", "add", "x", "--vendor", "Cisco", "--ip", "nope"])
    assert bad.exit_code == 2
    assert "ip: 'nope' is not an IP address" in bad.output


def test_api_declares_and_lists_devices(engine: Engine) -> None:
    analyst, _ = create_api_token(engine, user="ann", role=Role.ANALYST)
    viewer, _ = create_api_token(engine, user="vic", role=Role.VIEWER)
    client = TestClient(create_app(engine))
    body = {"name": "core1", "vendor": "Cisco", "model": "C9500-40X", "firmware": "16.9.3",
            "os_name": "IOS-XE", "ip": "192.0.2.30"}
    refused = client.post("/api/devices", json=body,
                          headers={"Authorization": f"Bearer {viewer}"})
    assert refused.status_code == 403
    made = client.post("/api/devices", json=body,
                       headers={"Authorization": f"Bearer {analyst}"})
    assert made.status_code == 201, made.text
    assert made.json()["identified"] is True and made.json()["cpe"] == "cisco:ios_xe"
    odd = client.post("/api/devices", json={"name": "nas1", "vendor": "Synology-ish"},
                      headers={"Authorization": f"Bearer {analyst}"})
    assert odd.status_code == 201 and odd.json()["identified"] is False
    listed = client.get("/api/devices", params={"unidentified": "true"},
                        headers={"Authorization": f"Bearer {viewer}"})
    assert listed.status_code == 200
    assert [(d["name"], d["identified"], d["seen"]) for d in listed.json()] == [
        ("nas1", False, {"vendor": "Synology-ish"})]
    assert len(client.get("/api/devices", headers={
        "Authorization": f"Bearer {viewer}"}).json()) == 2
    bad = client.post("/api/devices", json={**body, "ip": "300.1.1.1"},
                      headers={"Authorization": f"Bearer {analyst}"})
    assert (bad.status_code, bad.json()["detail"]) == (
        422, "ip: '300.1.1.1' is not an IP address")
