"""Network devices: declare one by hand (``POST /api/devices``), list them, identified
or not (``GET /api/devices?unidentified=true``).  Authorised like assets: any viewer
lists, an analyst declares.  The stage is ``assets.devices``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from patchpilot.assets.devices import add_device, list_devices
from patchpilot.inventory.network.declared import declared_device
from patchpilot.server.deps import Analyst, EngineDep, Viewer, scope_aware
from patchpilot.server.params import Text
from patchpilot.server.security import reach

router = APIRouter(tags=["devices"])


class DeviceIn(BaseModel):
    """A device nothing can reach, as a person declares it."""

    name: Text = Field(min_length=1, max_length=300)  # its hostname
    vendor: Text = Field(min_length=1, max_length=200)
    model: Text | None = Field(None, max_length=200)
    firmware: Text | None = Field(None, max_length=200)
    os_name: Text | None = Field(None, max_length=200)
    ip: Text | None = Field(None, max_length=100)


class ServiceOut(BaseModel):
    """A network service the device answers on."""

    port: int
    protocol: str
    name: str | None
    product: str | None
    version: str | None
    cpes: list[str]


class DeviceOut(BaseModel):
    """A device: its asset, what identifies it, and what was seen when unidentified."""

    asset_id: int
    name: str
    ip_addresses: list[str]
    inventory_id: int
    collector: str
    cpe: str | None
    warnings: list[str]
    vendor: str | None
    model: str | None
    platform: str | None
    os_name: str | None
    firmware: str | None
    serial: str | None
    mac_vendor: str | None
    identified: bool
    sources: list[str]
    seen: dict[str, str]
    services: list[ServiceOut]


class DeviceDeclared(BaseModel):
    """Where the declared device went (its match job queued with it)."""

    asset_id: int
    inventory_id: int
    job_id: int | None
    identified: bool
    cpe: str | None  # "fortinet:fortios" when identified with its firmware


@router.post("/devices", status_code=201, response_model=DeviceDeclared)
def declare_device(body: DeviceIn, who: Analyst, engine: EngineDep) -> dict[str, Any]:
    """Declare a device (vendor, model, firmware); an unknown vendor/product is stored as
    an unidentified device, never refused."""
    device = declared_device(body.name, body.vendor, body.model, body.firmware,
                             body.os_name, body.ip)
    done = add_device(engine, device, actor=who.name)
    return {"asset_id": done.asset_id, "inventory_id": done.inventory_id,
            "job_id": done.job_id, "identified": done.identified, "cpe": done.cpe}


@router.get("/devices", response_model=list[DeviceOut])
@scope_aware  # the caller's assets only
def get_devices(who: Viewer, engine: EngineDep, unidentified: bool = False
                ) -> list[dict[str, Any]]:
    """Every device (an asset whose latest inventory describes one); ``unidentified``:
    only those the CPE table does not name."""
    with engine.connect() as conn:
        return [d.to_dict() for d in list_devices(conn, unidentified=unidentified,
                                                  reach=reach(conn, who))]
