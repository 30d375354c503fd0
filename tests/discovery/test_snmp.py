"""SNMP: a real net-snmp ``snmpd`` on loopback answering as a FortiGate and as a Cisco
router (v2c and v3), a wrong community, and identification from real sysDescr strings."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.discovery.snmp import (
    EntityRow,
    SnmpCredentials,
    SnmpOptions,
    SnmpReading,
    identify_device,
    read_devices,
)
from patchpilot.inventory.model import DeviceInfo, PackageEntry
from tests.snmpd import SnmpServer, snmpd_or_skip, start_snmpd

COMMUNITY = "fw-Community-7f3a"
V3 = ("pp-reader", "auth-passphrase-91", "priv-passphrase-42")
ENTITY = "1.3.6.1.2.1.47.1.1.1.1"
# A FortiGate 1500D as LibreNMS captured it (tests/snmpsim/fortigate_1500d-sensors.snmprec:
# sysDescr is the admin's own description, the model is in the product tree and the
# ENTITY-MIB), with FortiOS 7.2.4 GA's fnSysVersion.
FORTIGATE = {
    "sys_descr": "our firewall", "sys_object_id": ".1.3.6.1.4.1.12356.101.1.15000",
    "sys_name": "fw-hq-01",
    "overrides": {
        f"{ENTITY}.2.1": ("octet_str", "Fortinet FGT_1500D, HW Serial#: FG1K5D3I10000000"),
        f"{ENTITY}.5.1": ("integer", "3"),
        f"{ENTITY}.11.1": ("octet_str", "FG1K5D3I10000000"),
        f"{ENTITY}.13.1": ("octet_str", "FGT_1500D"),
        f"{ENTITY}.5.2": ("integer", "10"),
        f"{ENTITY}.13.2": ("octet_str", "mgmt1"),
        "1.3.6.1.4.1.12356.101.4.1.1.0": ("octet_str", "v7.2.4,build1396,230131 (GA.F)"),
    },
}
FORTIGATE_DEVICE = DeviceInfo(
    vendor="Fortinet", model="FGT_1500D", os_name="FortiOS", firmware="7.2.4",
    serial="FG1K5D3I10000000", identified=True, sources=["snmp"],
    seen={"sysDescr": "our firewall", "sysObjectID": "1.3.6.1.4.1.12356.101.1.15000",
          "sysName": "fw-hq-01", "vendor version": "v7.2.4,build1396,230131 (GA.F)"})
# A Cisco 3945 on IOS 15.2(4)M7 (its sysDescr's first line, as IOS answers it).
CISCO_DESCR = ("Cisco IOS Software, C3900 Software (C3900-UNIVERSALK9-M), Version 15.2(4)M7, "
               "RELEASE SOFTWARE (fc2)")


@pytest.fixture(scope="module")
def fortigate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpServer]:
    snmpd_or_skip()
    server = start_snmpd(tmp_path_factory.mktemp("snmpd-fgt"), community=COMMUNITY,
                         v3_user=V3, **FORTIGATE)  # type: ignore[arg-type]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cisco(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpServer]:
    snmpd_or_skip()
    server = start_snmpd(
        tmp_path_factory.mktemp("snmpd-cisco"), community=COMMUNITY, sys_descr=CISCO_DESCR,
        sys_object_id=".1.3.6.1.4.1.9.1.1043", sys_name="rtr-osaka",
        overrides={f"{ENTITY}.5.1": ("integer", "3"),
                   f"{ENTITY}.13.1": ("octet_str", "CISCO3945-CHASSIS"),
                   f"{ENTITY}.11.1": ("octet_str", "FGL1650111X"),
                   f"{ENTITY}.9.1": ("octet_str", "System Bootstrap, Version 15.0(1r)M16")})
    yield server
    server.stop()


def test_a_fortigate_is_identified_with_its_fortios_version(fortigate: SnmpServer) -> None:
    [result] = read_devices(["127.0.0.1"], SnmpCredentials(community=COMMUNITY),
                            SnmpOptions(port=fortigate.port))
    assert result.error is None and result.inventory is not None
    assert result.inventory.device == FORTIGATE_DEVICE
    assert result.inventory.packages == [
        PackageEntry(ecosystem="CPE", name="fortinet:fortios", version="7.2.4")]
    assert result.inventory.asset.hostname == "fw-hq-01"
    assert result.inventory.asset.ip_addresses == ["127.0.0.1"]
    assert result.inventory.warnings == []


def test_snmp_v3_with_auth_and_privacy_reads_the_same(fortigate: SnmpServer) -> None:
    user, auth, priv = V3
    [result] = read_devices(["127.0.0.1"], SnmpCredentials(user=user, auth_key=auth,
                                                           priv_key=priv),
                            SnmpOptions(port=fortigate.port))
    assert result.error is None and result.inventory is not None
    assert result.inventory.device == FORTIGATE_DEVICE
    [wrong] = read_devices(["127.0.0.1"], SnmpCredentials(
        user=user, auth_key="not-the-key-1", priv_key=priv),
        SnmpOptions(port=fortigate.port, timeout=0.5, retries=0))
    assert wrong.inventory is None
    assert wrong.error == "SNMPv3 authentication failed (wrong user, auth or privacy key)"


def test_a_cisco_router_is_identified_from_its_sysdescr(cisco: SnmpServer) -> None:
    [result] = read_devices(["127.0.0.1"], SnmpCredentials(community=COMMUNITY),
                            SnmpOptions(port=cisco.port))
    assert result.inventory is not None
    assert result.inventory.device == DeviceInfo(
        vendor="Cisco", model="CISCO3945-CHASSIS", os_name="IOS", firmware="15.2(4)M7",
        serial="FGL1650111X", identified=True, sources=["snmp"],
        seen={"sysDescr": CISCO_DESCR, "sysObjectID": "1.3.6.1.4.1.9.1.1043",
              "sysName": "rtr-osaka",
              "entPhysicalFirmwareRev": "System Bootstrap, Version 15.0(1r)M16"})
    assert [(p.name, p.version) for p in result.inventory.packages] == [
        ("cisco:ios", "15.2(4)M7")]


def test_a_wrong_community_is_a_clear_error_that_never_shows_the_community(
        fortigate: SnmpServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    credentials = SnmpCredentials(community="Wrong-Community-0000")
    [result] = read_devices(["127.0.0.1"], credentials,
                            SnmpOptions(port=fortigate.port, timeout=0.5, retries=0))
    assert result.inventory is None
    assert result.error == ("no SNMP answer within 0.5 s (wrong community or v3 user, SNMP "
                            "not enabled, or a firewall)")
    assert "Wrong-Community" not in caplog.text + repr(credentials) + repr(result)
    assert repr(credentials) == "SnmpCredentials(v2c community='***')"


def test_the_command_reads_devices_and_stores_them(fortigate: SnmpServer,
                                                   tmp_path: Path) -> None:
    env = {"PATCHPILOT_HOME": str(tmp_path), "PATCHPILOT_DISCOVERY_SCOPE": "127.0.0.0/8",
           "PP_TEST_COMMUNITY": COMMUNITY}
    done = CliRunner().invoke(app, [
        "discover", "127.0.0.1", "--snmp-only", "--snmp-port", str(fortigate.port),
        "--community-env", "PP_TEST_COMMUNITY", "--json"], env=env)
    assert done.exit_code == 0, done.output
    [inv] = orjson.loads(done.stdout)
    assert inv["device"]["firmware"] == "7.2.4"
    assert inv["packages"][0]["name"] == "fortinet:fortios"
    assert COMMUNITY not in done.output
    wrong = CliRunner().invoke(app, [
        "discover", "127.0.0.1", "--snmp-only", "--snmp-port", str(fortigate.port),
        "--snmp-timeout", "0.3", "--no-store"],
        env={**env, "PATCHPILOT_SNMP_COMMUNITY": "Wrong-Community-0000"})
    assert wrong.exit_code == 4
    assert "SNMP 127.0.0.1: no SNMP answer within 0.3 s" in " ".join(wrong.output.split())
    assert "Wrong-Community" not in wrong.output


@pytest.mark.parametrize(("descr", "object_id", "software", "expected"), [
    # Real sysDescr strings as these platforms answer them.
    ("Juniper Networks, Inc. ex4300-48t Ethernet Switch, kernel JUNOS 21.4R3-S5.4, Build "
     "date: 2023-09-20 11:41:13 UTC Copyright (c) 1996-2023 Juniper Networks, Inc.",
     "1.3.6.1.4.1.2636.1.1.1.2.132", None, ("juniper:junos", "21.4R3-S5.4")),
    ("Arista Networks EOS version 4.28.3M running on an Arista Networks DCS-7050SX-64",
     "1.3.6.1.4.1.30065.1.3011.7050.1958.64", None, ("arista:eos", "4.28.3M")),
    ("Cisco IOS Software [Amsterdam], Catalyst L3 Switch Software (CAT9K_IOSXE), Version "
     "17.3.4, RELEASE SOFTWARE (fc3)", "1.3.6.1.4.1.9.1.2494", None, ("cisco:ios_xe", "17.3.4")),
    ("Cisco NX-OS(tm) n9000, Software (n9000-dk9), Version 9.3(8), RELEASE SOFTWARE",
     "1.3.6.1.4.1.9.12.3.1.3.1812", None, ("cisco:nx-os", "9.3(8)")),
    ("Cisco Adaptive Security Appliance Version 9.16(3)19", "1.3.6.1.4.1.9.1.2315", None,
     ("cisco:adaptive_security_appliance_software", "9.16(3)19")),
    ("Palo Alto Networks PA-3200 series firewall", "1.3.6.1.4.1.25461.2.3.38", "10.2.9-h1",
     ("paloaltonetworks:pan-os", "10.2.9-h1")),
])
def test_real_sysdescr_strings_identify_their_platform(
        descr: str, object_id: str, software: str | None,
        expected: tuple[str, str]) -> None:
    entities = (EntityRow(1, 3, software=software),) if software else ()
    device, packages, warnings = identify_device(SnmpReading(descr, object_id, None, entities))
    assert (device.identified, [(p.name, p.version) for p in packages], warnings) == (
        True, [expected], [])


def test_an_unknown_device_is_unidentified_with_what_was_seen() -> None:
    descr = "Linux nas01 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 x86_64"
    device, packages, warnings = identify_device(
        SnmpReading(descr, "1.3.6.1.4.1.8072.3.2.10", "nas01"))
    assert (device.vendor, device.identified, packages) == ("net-snmp", False, [])
    assert warnings == [f"unidentified device: SNMP saw sysDescr {descr!r}; sysObjectID "
                        "'1.3.6.1.4.1.8072.3.2.10'; sysName 'nas01'"]
    # A vendor outside the table is no guess either.
    device, packages, _ = identify_device(SnmpReading(
        "FortiGate-60F v7.2.4", "1.3.6.1.4.1.99999.1", None))
    assert (device.vendor, device.identified, packages) == (None, False, [])
