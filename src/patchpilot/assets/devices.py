"""Network devices as assets: declaring one (by hand, the API or the CMDB import),
listing them -- identified or not -- and the device part of an asset's latest inventory.

A device is an asset whose latest inventory has a ``device`` part (schema 2).  Declaring
one stores a new inventory through the ordinary ingest (one transaction, its match job
queued with it), so a declared FortiGate is matched exactly as one read over SSH.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from patchpilot.assets.cmdb import CmdbRecord
from patchpilot.assets.context import ApplyResult, apply_records
from patchpilot.assets.groups import Reach, within
from patchpilot.audit import audit
from patchpilot.db.tables import assets, inventories
from patchpilot.errors import InvalidInput
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import DeviceInfo
from patchpilot.inventory.network.declared import (
    CMDB,
    DECLARED,
    DeclaredDevice,
    declared_device,
    declared_inventory,
)

# The key of the device part as the stored JSON writes it when present ("device":null
# otherwise); inside a JSON string a quote is escaped, so only the key itself matches.
_HAS_DEVICE = '%"device":{%'


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One device as listed: its asset, the latest inventory's device part and CPE."""

    asset_id: int
    name: str
    ip_addresses: list[str]
    inventory_id: int
    collector: str
    device: DeviceInfo
    cpe: str | None  # "fortinet:fortios" when identified and its firmware is known
    warnings: list[str]

    def to_dict(self) -> dict[str, object]:
        """The row as JSON (the API and ``device list --json``)."""
        return {"asset_id": self.asset_id, "name": self.name,
                "ip_addresses": self.ip_addresses, "inventory_id": self.inventory_id,
                "collector": self.collector, "cpe": self.cpe, "warnings": self.warnings,
                **self.device.model_dump(mode="json")}


@dataclass(frozen=True, slots=True)
class Declared:
    """Where a declared device went: its asset, inventory, match job; identified or not."""

    asset_id: int
    inventory_id: int
    job_id: int | None
    identified: bool
    cpe: str | None


def add_device(engine: Engine, device: DeclaredDevice, *, actor: str,
               source: str = DECLARED, asset_id: int | None = None) -> Declared:
    """Store ``device`` as its asset's latest inventory (found by name/address, or given,
    else created) with its match job queued, and audit who declared it.  An unknown
    vendor/product is stored all the same, as an unidentified device."""
    inventory = declared_inventory(device, source)
    identified = inventory.device is not None and inventory.device.identified
    result = ingest_inventory(engine, inventory, asset_id=asset_id, enqueue_match=True)
    with engine.begin() as conn:
        audit(conn, actor, "device.declare", f"asset:{result.asset_id}", {
            "source": source, "name": device.name, "vendor": device.vendor,
            "model": device.model, "firmware": device.firmware, "identified": identified})
    cpe = inventory.packages[0].name if inventory.packages else None
    return Declared(result.asset_id, result.inventory_id, result.job_id, identified, cpe)


def cmdb_devices(records: Sequence[CmdbRecord]) -> list[tuple[CmdbRecord, DeclaredDevice]]:
    """The CMDB rows that describe a device (a ``vendor`` column filled in), each with the
    device it declares; its name is the row's hostname, else its FQDN's first label, else
    its address.  InvalidInput names the row whose vendor is set without any name."""
    found: list[tuple[CmdbRecord, DeclaredDevice]] = []
    for record in records:
        if not record.vendor:
            continue
        name = record.hostname or (record.fqdn or "").split(".", 1)[0] or record.ip
        if not name:
            raise InvalidInput(f"{record.where}: a device row needs a hostname, fqdn or ip")
        found.append((record, declared_device(
            name, record.vendor, record.model, record.firmware, record.os_name, record.ip,
            record.fqdn)))
    return found


def import_cmdb_devices(engine: Engine, records: Sequence[CmdbRecord], *, actor: str
                        ) -> list[Declared]:
    """Store a declared device (source ``cmdb``) for each CMDB row with a vendor; the
    asset is found by the row's keys as any inventory's is, else created."""
    return [add_device(engine, device, actor=actor, source=CMDB)
            for _record, device in cmdb_devices(records)]


def apply_cmdb(engine: Engine, records: Sequence[CmdbRecord], *, source: str, actor: str,
               create_missing: bool = False, label: str | None = None) -> ApplyResult:
    """A CMDB import: first the devices its rows declare (each stored as an inventory,
    which finds or creates its asset), then every row's context as ``apply_records``
    applies it -- so a device row's context lands on the device's asset."""
    declared = import_cmdb_devices(engine, records, actor=actor)
    result = apply_records(engine, records, source=source, actor=actor,
                           create_missing=create_missing, label=label)
    result.devices = list(dict.fromkeys(r.asset_id for r in declared))
    return result


def _device_of(document: str) -> tuple[DeviceInfo, str | None, list[str]] | None:
    try:
        data = orjson.loads(document)
        info = DeviceInfo.model_validate(data.get("device"))
    except (orjson.JSONDecodeError, AttributeError, ValidationError):
        return None  # no device part (None does not validate), or not an object
    cpe = next((p.get("name") for p in data.get("packages") or []
                if isinstance(p, dict) and p.get("ecosystem") == "CPE"), None)
    return info, cpe, [str(w) for w in data.get("warnings") or []]


def list_devices(conn: Connection, *, unidentified: bool = False, reach: Reach = None
                 ) -> list[DeviceRow]:
    """Every asset whose latest inventory describes a device, by name; ``unidentified``
    keeps only those whose vendor/product the CPE table does not know; ``reach`` only
    those of the assets a scoped caller sees (None: the estate)."""
    conds = [] if reach is None else [within(assets.c.id, reach)]
    rows = conn.execute(
        select(assets.c.id, assets.c.name, assets.c.ip_addresses, inventories.c.id.label(
            "inventory_id"), inventories.c.collector, inventories.c.document)
        .join(inventories, assets.c.last_inventory_id == inventories.c.id)
        .where(inventories.c.document.like(_HAS_DEVICE), *conds)
        .order_by(assets.c.name, assets.c.id)).all()
    found: list[DeviceRow] = []
    for row in rows:
        read = _device_of(row.document)
        if read is None or (unidentified and read[0].identified):
            continue
        found.append(DeviceRow(row.id, row.name, orjson.loads(row.ip_addresses or "[]"),
                               row.inventory_id, row.collector, *read))
    return found


def latest_device(conn: Connection, asset_id: int) -> DeviceRow | None:
    """The device part of asset ``asset_id``'s latest inventory; None when it has none."""
    row = conn.execute(
        select(assets.c.id, assets.c.name, assets.c.ip_addresses, inventories.c.id.label(
            "inventory_id"), inventories.c.collector, inventories.c.document)
        .join(inventories, assets.c.last_inventory_id == inventories.c.id)
        .where(assets.c.id == asset_id)).first()
    if row is None:
        return None
    read = _device_of(row.document)
    if read is None:
        return None
    return DeviceRow(row.id, row.name, orjson.loads(row.ip_addresses or "[]"),
                     row.inventory_id, row.collector, *read)
