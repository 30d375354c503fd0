"""SNMP v2c/v3: a device's vendor, model, serial and firmware, read with ``pysnmp``.

What is read: ``sysDescr``, ``sysObjectID``, ``sysName`` (SNMPv2-MIB) and the ENTITY-MIB
columns model name, serial number, firmware and software revision of the chassis (the
first entity of class chassis, else the first one naming a model), plus a vendor's own
version object where its sysDescr does not carry the version (FortiGate ``fnSysVersion``,
PAN-OS ``panSysSwVersion``).  Reading (:func:`read_devices`, network) is apart from
judging (:func:`identify_device`, pure), which the tests feed real sysDescr strings.

The vendor comes from the sysObjectID's enterprise number (IANA's registry, a small table
below); the operating system from an exact pattern of that vendor's sysDescr or product
tree; ``cpe_names.identify(vendor, os)`` gives the CPE name.  Anything else is an
*unidentified* device listed with what was seen.  Credentials are never logged, never put
in an error message, never stored.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_walk_cmd,
    get_cmd,
    usmAesCfb128Protocol,
    usmAesCfb256Protocol,
    usmDESPrivProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
    usmNoPrivProtocol,
)

from patchpilot.errors import InvalidInput
from patchpilot.inventory.model import (
    AssetIdentity,
    Collector,
    DeviceInfo,
    Inventory,
    PackageEntry,
)
from patchpilot.knowledge.cpe_names import CPE, identify

COLLECTOR = "snmp"
SYS_DESCR, SYS_OBJECT_ID, SYS_NAME = ("1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0",
                                      "1.3.6.1.2.1.1.5.0")
ENTERPRISES = "1.3.6.1.4.1."
# ENTITY-MIB entPhysicalEntry columns (RFC 6933).
ENTITY = "1.3.6.1.2.1.47.1.1.1.1"
_COLUMNS = {"class": 5, "firmware": 9, "software": 10, "serial": 11, "model": 13}
CHASSIS = 3  # PhysicalClass chassis(3)
# Large chassis list hundreds of entities; past this many rows a column is not walked on.
MAX_ENTITY_ROWS = 2000

# IANA enterprise numbers -> the vendor as devices name themselves.
VENDORS: dict[int, str] = {
    9: "Cisco", 11: "Hewlett-Packard", 119: "NEC", 211: "Fujitsu", 1182: "Yamaha",
    1916: "Extreme Networks", 2011: "Huawei", 2620: "Check Point", 2636: "Juniper Networks",
    3375: "F5", 6876: "VMware", 8072: "net-snmp", 12356: "Fortinet", 14823: "Aruba",
    14988: "MikroTik", 25461: "Palo Alto Networks", 30065: "Arista Networks",
}

# A vendor's own object holding its OS version where sysDescr does not say it.
VENDOR_VERSION_OIDS: dict[str, str] = {
    "Fortinet": "1.3.6.1.4.1.12356.101.4.1.1.0",  # FORTINET-FORTIGATE-MIB fnSysVersion
    "Palo Alto Networks": "1.3.6.1.4.1.25461.2.1.2.1.1.0",  # PAN-COMMON-MIB panSysSwVersion
}


@dataclass(frozen=True, slots=True)
class _OsRule:
    """An operating system recognised in a vendor's sysDescr (``pattern``, searched) or by
    its sysObjectID prefix; ``version`` takes the version out of whichever text holds it
    (sysDescr, the vendor's version object, the chassis' software revision)."""

    vendor: str
    os_name: str
    pattern: re.Pattern[str] | None
    version: re.Pattern[str]
    object_id_prefix: str | None = None


_CISCO_VERSION = re.compile(r"\bVersion\s+([0-9][^\s,]*)")
_OS_RULES: tuple[_OsRule, ...] = (
    # Order matters within a vendor: IOS XE banners also say "Cisco IOS Software".
    _OsRule("Cisco", "IOS-XE", re.compile(r"IOS[ -]XE Software|\bIOSXE\b|_IOSXE\b"),
            _CISCO_VERSION),
    _OsRule("Cisco", "NX-OS", re.compile(r"Cisco NX-OS"), _CISCO_VERSION),
    _OsRule("Cisco", "ASA", re.compile(r"Cisco Adaptive Security Appliance"),
            re.compile(r"Appliance Version\s+([0-9][^\s,]*)")),
    _OsRule("Cisco", "IOS", re.compile(
        r"Cisco IOS Software|Cisco Internetwork Operating System Software"), _CISCO_VERSION),
    _OsRule("Juniper Networks", "JUNOS", re.compile(r"\bJUNOS\s+[0-9]"),
            re.compile(r"\bJUNOS\s+([0-9][^\s,\]]*)")),
    _OsRule("Arista Networks", "EOS", re.compile(r"Arista Networks EOS version"),
            re.compile(r"EOS version\s+([0-9][^\s,]*)")),
    # FortiGate's product tree (FORTINET-FORTIGATE-MIB fgModel): FortiOS, whose version
    # is "v7.2.4,build1396,230131 (GA.F)" in fnSysVersion and the chassis' software rev.
    _OsRule("Fortinet", "FortiOS", None, re.compile(r"\bv?([0-9]+\.[0-9]+\.[0-9]+)\b"),
            object_id_prefix="1.3.6.1.4.1.12356.101."),
    _OsRule("Palo Alto Networks", "PAN-OS", re.compile(r"^Palo Alto Networks"),
            re.compile(r"^\s*([0-9]+\.[0-9]+\.[0-9]+(?:-h[0-9]+)?)\s*$")),
)


class SnmpCredentialError(InvalidInput):
    """SNMP credentials that cannot be used as given (the message never holds them)."""


_AUTH = {"md5": usmHMACMD5AuthProtocol, "sha": usmHMACSHAAuthProtocol,
         "sha256": usmHMAC192SHA256AuthProtocol, "sha512": usmHMAC384SHA512AuthProtocol}
_PRIV = {"des": usmDESPrivProtocol, "aes": usmAesCfb128Protocol,
         "aes256": usmAesCfb256Protocol}


@dataclass(frozen=True, slots=True)
class SnmpCredentials:
    """v2c (``community``) or v3 (``user`` with optional auth and privacy keys).

    ``repr`` shows neither the community nor the keys (a traceback or a log line of it
    gives nothing away).
    """

    community: str | None = None
    user: str | None = None
    auth_key: str | None = None
    priv_key: str | None = None
    auth_protocol: str = "sha"
    priv_protocol: str = "aes"

    def __repr__(self) -> str:
        if self.user:
            auth = "'***'" if self.auth_key else None
            priv = "'***'" if self.priv_key else None
            return f"SnmpCredentials(v3 user={self.user!r}, auth={auth}, priv={priv})"
        return "SnmpCredentials(v2c community='***')"

    @property
    def version(self) -> str:
        """``v3`` or ``v2c``."""
        return "v3" if self.user else "v2c"

    def auth_data(self) -> CommunityData | UsmUserData:
        """pysnmp's authentication object; SnmpCredentialError when incomplete."""
        if self.user:
            if self.priv_key and not self.auth_key:
                raise SnmpCredentialError("SNMPv3: a privacy key needs an auth key too")
            if self.auth_protocol not in _AUTH:
                raise SnmpCredentialError(f"SNMPv3 auth protocol {self.auth_protocol!r}: "
                                          f"use one of {', '.join(_AUTH)}")
            if self.priv_protocol not in _PRIV:
                raise SnmpCredentialError(f"SNMPv3 privacy protocol {self.priv_protocol!r}: "
                                          f"use one of {', '.join(_PRIV)}")
            for what, key in (("auth", self.auth_key), ("privacy", self.priv_key)):
                if key is not None and len(key) < 8:
                    raise SnmpCredentialError(f"SNMPv3: the {what} key is shorter than 8 "
                                              "characters (RFC 3414 refuses it)")
            return UsmUserData(
                self.user, authKey=self.auth_key, privKey=self.priv_key,
                authProtocol=_AUTH[self.auth_protocol] if self.auth_key else None,
                privProtocol=_PRIV[self.priv_protocol] if self.priv_key else usmNoPrivProtocol)
        if not self.community:
            raise SnmpCredentialError("SNMP: no community and no v3 user (set "
                                      "PATCHPILOT_SNMP_COMMUNITY or name a secret)")
        return CommunityData(self.community, mpModel=1)  # mpModel 1: SNMPv2c


@dataclass(frozen=True, slots=True)
class EntityRow:
    """One ENTITY-MIB entPhysicalEntry (index and the columns read)."""

    index: int
    physical_class: int | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    software: str | None = None


@dataclass(frozen=True, slots=True)
class SnmpReading:
    """What a device answered."""

    sys_descr: str | None = None
    sys_object_id: str | None = None
    sys_name: str | None = None
    entities: tuple[EntityRow, ...] = ()
    vendor_version: str | None = None  # the vendor's own version object, when asked


@dataclass(frozen=True, slots=True)
class SnmpResult:
    """One target's outcome: the inventory, or the error (no credentials in it)."""

    address: str
    inventory: Inventory | None
    error: str | None
    seconds: float


def _chassis(entities: Sequence[EntityRow]) -> EntityRow | None:
    for row in entities:
        if row.physical_class == CHASSIS:
            return row
    return next((row for row in entities if row.model), None)


def vendor_of(sys_object_id: str | None) -> str | None:
    """The vendor of a sysObjectID by its enterprise number; None when not in the table."""
    if not sys_object_id or not sys_object_id.startswith(ENTERPRISES):
        return None
    number = sys_object_id[len(ENTERPRISES):].split(".", 1)[0]
    return VENDORS.get(int(number)) if number.isdigit() else None


def _os_rule(vendor: str | None, reading: SnmpReading) -> _OsRule | None:
    for rule in _OS_RULES:
        if rule.vendor != vendor:
            continue
        if rule.object_id_prefix and (reading.sys_object_id or "").startswith(
                rule.object_id_prefix):
            return rule
        if rule.pattern and rule.pattern.search(reading.sys_descr or ""):
            return rule
    return None


def identify_device(reading: SnmpReading) -> tuple[DeviceInfo, list[PackageEntry], list[str]]:
    """The device facts, its ``CPE`` package (when identified with a version) and the
    warnings of one SNMP reading.  Pure: exact patterns only, no guessing."""
    vendor = vendor_of(reading.sys_object_id)
    chassis = _chassis(reading.entities)
    rule = _os_rule(vendor, reading)
    firmware = None
    if rule is not None:
        for text in (reading.sys_descr if rule.pattern else None, reading.vendor_version,
                     chassis.software if chassis else None,
                     chassis.firmware if chassis else None):
            found = rule.version.search(text or "")
            if found:
                firmware = found.group(1)
                break
    seen = {name: value for name, value in (
        ("sysDescr", reading.sys_descr), ("sysObjectID", reading.sys_object_id),
        ("sysName", reading.sys_name), ("vendor version", reading.vendor_version),
        ("entPhysicalSoftwareRev", chassis.software if chassis else None),
        ("entPhysicalFirmwareRev", chassis.firmware if chassis else None)) if value}
    cpe = identify(vendor, rule.os_name) if rule else None
    device = DeviceInfo(
        vendor=vendor, model=chassis.model if chassis else None,
        os_name=rule.os_name if rule else None,
        firmware=firmware or (chassis.software or chassis.firmware if chassis else None),
        serial=chassis.serial if chassis else None, identified=cpe is not None,
        sources=[COLLECTOR], seen=seen)
    warnings: list[str] = []
    packages: list[PackageEntry] = []
    if cpe is None:
        what = "; ".join(f"{k} {v!r}" for k, v in seen.items()) or "nothing"
        warnings.append(f"unidentified device: SNMP saw {what}")
    elif firmware is None:
        warnings.append(f"identified as {cpe}, but no firmware version could be read: "
                        "not matched")
    else:
        packages.append(PackageEntry(ecosystem=CPE, name=cpe, version=firmware))
    return device, packages, warnings


def snmp_inventory(address: str, reading: SnmpReading, *, base: Inventory | None = None,
                   collected_at: datetime | None = None) -> Inventory:
    """The Inventory of a device read over SNMP; with ``base`` (the same host's nmap
    inventory of this run) its services, packages and what nmap saw are kept."""
    device, packages, warnings = identify_device(reading)
    if base is not None and base.device is not None:
        old = base.device
        device = device.model_copy(update={
            "mac_vendor": old.mac_vendor, "services": old.services,
            "sources": [*old.sources, *device.sources], "seen": {**old.seen, **device.seen}})
        names = {p.name for p in packages}
        packages = [*packages, *(p for p in base.packages if p.name not in names)]
        # nmap's "unidentified" note no longer holds once SNMP identified the device.
        kept = [w for w in base.warnings if not (device.identified
                                                 and w.startswith("unidentified device"))]
        warnings = [*kept, *warnings]
    addresses = base.asset.ip_addresses if base is not None else [address]
    return Inventory(
        schema=2,
        asset=AssetIdentity(hostname=reading.sys_name or (base.asset.hostname if base
                                                          else None),
                            ip_addresses=addresses),
        packages=packages, device=device, collected_at=collected_at or datetime.now(UTC),
        collector=Collector(name=COLLECTOR if base is None else "nmap+snmp"),
        warnings=warnings)


# --- reading ---------------------------------------------------------------------------------

def _text(value: object) -> str | None:
    """A varbind's value as text; None for noSuchObject/noSuchInstance/endOfMibView."""
    name = type(value).__name__
    if name in ("NoSuchObject", "NoSuchInstance", "EndOfMibView", "Null"):
        return None
    if hasattr(value, "asOctets") and name == "OctetString":
        text = value.asOctets().decode("utf-8", errors="replace")  # type: ignore[attr-defined]
    else:
        text = value.prettyPrint()  # type: ignore[attr-defined]
    text = text.strip().strip("\x00")
    return text or None


class _NoAnswer(Exception):
    """A device that did not answer (message safe to show)."""


def _problem(indication: object, seconds: float) -> str:
    text = str(indication)
    if "timeout" in text.lower() or "no snmp response" in text.lower():
        return (f"no SNMP answer within {seconds:g} s (wrong community or v3 user, SNMP "
                "not enabled, or a firewall)")
    lowered = text.lower()
    # pysnmp's indications: "Wrong SNMP PDU digest", "Unknown USM user", "decryption error".
    if any(word in lowered for word in ("digest", "unknown usm user", "unknownusername",
                                        "decrypt")):
        return "SNMPv3 authentication failed (wrong user, auth or privacy key)"
    return f"SNMP error: {text}"


async def _read_one(engine: SnmpEngine, address: str, port: int, auth: object,
                    vendor_oids: dict[str, str], timeout: float, retries: int) -> SnmpReading:
    target = await UdpTransportTarget.create((address, port), timeout=timeout,
                                             retries=retries)
    context = ContextData()
    indication, status, _index, binds = await get_cmd(
        engine, auth, target, context, *(ObjectType(ObjectIdentity(o)) for o in (
            SYS_DESCR, SYS_OBJECT_ID, SYS_NAME)), lookupMib=False)
    if indication:
        raise _NoAnswer(_problem(indication, timeout))
    if status:
        raise _NoAnswer(f"SNMP error: {status.prettyPrint()}")
    descr, object_id, name = (_text(value) for _name, value in binds)
    reading = SnmpReading(descr, object_id, name)
    vendor = vendor_of(reading.sys_object_id)
    vendor_version = None
    if vendor in vendor_oids:
        indication, status, _index, binds = await get_cmd(
            engine, auth, target, context, ObjectType(ObjectIdentity(vendor_oids[vendor])),
            lookupMib=False)
        if not indication and not status:
            vendor_version = _text(binds[0][1])
    columns: dict[str, dict[int, str]] = {}
    for column, number in _COLUMNS.items():
        prefix = f"{ENTITY}.{number}"
        found: dict[int, str] = {}
        async for indication, status, _index, rows in bulk_walk_cmd(
                engine, auth, target, context, 0, 25, ObjectType(ObjectIdentity(prefix)),
                lexicographicMode=False, lookupMib=False):
            if indication or status:
                break  # ENTITY-MIB is optional: a device without it still identifies
            for name, value in rows:
                oid = str(name)
                text = _text(value)
                if oid.startswith(prefix + ".") and text is not None:
                    found[int(oid.rsplit(".", 1)[1])] = text
            if len(found) >= MAX_ENTITY_ROWS:
                break
        columns[column] = found
    indexes = sorted(set().union(*(c.keys() for c in columns.values())))
    entities = tuple(EntityRow(
        i, int(columns["class"][i]) if columns["class"].get(i, "").isdigit() else None,
        columns["model"].get(i), columns["serial"].get(i), columns["firmware"].get(i),
        columns["software"].get(i)) for i in indexes)
    return SnmpReading(reading.sys_descr, reading.sys_object_id, reading.sys_name, entities,
                       vendor_version)


async def _read_all(addresses: Sequence[str], credentials: SnmpCredentials, port: int,
                    timeout: float, retries: int, max_concurrent: int,
                    bases: dict[str, Inventory]) -> list[SnmpResult]:
    auth = credentials.auth_data()
    engine = SnmpEngine()
    gate = asyncio.Semaphore(max_concurrent)

    async def one(address: str) -> SnmpResult:
        async with gate:
            started = time.perf_counter()
            try:
                reading = await _read_one(engine, address, port, auth, VENDOR_VERSION_OIDS,
                                          timeout, retries)
            except _NoAnswer as exc:
                return SnmpResult(address, None, str(exc), time.perf_counter() - started)
            except OSError as exc:
                return SnmpResult(address, None, f"cannot reach: {exc.strerror or exc}",
                                  time.perf_counter() - started)
            return SnmpResult(address, snmp_inventory(address, reading,
                                                      base=bases.get(address)),
                              None, time.perf_counter() - started)

    try:
        return list(await asyncio.gather(*(one(a) for a in addresses)))
    finally:
        engine.close_dispatcher()


@dataclass(frozen=True, slots=True)
class SnmpOptions:
    """How devices are read: port, per-request timeout and retries, hosts at once."""

    port: int = 161
    timeout: float = 2.0
    retries: int = 1
    max_concurrent: int = 10
    bases: dict[str, Inventory] = field(default_factory=dict)  # address -> nmap inventory


def read_devices(addresses: Sequence[str], credentials: SnmpCredentials,
                 options: SnmpOptions | None = None) -> list[SnmpResult]:
    """Read each address over SNMP (at most ``max_concurrent`` at once), in order; a
    device that does not answer is a result with its error, never an exception."""
    options = options or SnmpOptions()
    return asyncio.run(_read_all(addresses, credentials, options.port, options.timeout,
                                 options.retries, options.max_concurrent, options.bases))
