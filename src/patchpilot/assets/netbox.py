"""Asset context from NetBox: devices and virtual machines, read with pynetbox.

NetBox keeps what PatchPilot calls asset context partly in its own model and partly in
custom fields an organisation defines:

* custom fields (names configurable, :class:`NetboxFields`): criticality, environment,
  exposure, data_classification, service, owner;
* ``tenant`` → service when no service custom field is set; ``site`` (and its
  ``location``) → location; ``role`` → a tag ``role:<slug>``; NetBox tags → tags;
* ``name`` → hostname (and FQDN when it is dotted); ``primary_ip`` → ip.

Fetching (:func:`fetch`) is kept apart from converting (:func:`records_from_netbox`, a
pure function over the API's JSON), and the records are applied by
:mod:`patchpilot.assets.context` exactly like a CSV import, with source "netbox".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from patchpilot.assets.cmdb import CmdbFormatError, CmdbRecord, record_from_mapping
from patchpilot.assets.context import ApplyResult, apply_records
from patchpilot.errors import PatchPilotError

# The two NetBox endpoints that hold servers: (pynetbox app, endpoint, label in messages).
ENDPOINTS = (("dcim", "devices", "dcim.devices"),
             ("virtualization", "virtual_machines", "virtualization.virtual_machines"))


class NetboxError(PatchPilotError):
    """NetBox could not be reached, refused the token, or answered unexpectedly."""


@dataclass(frozen=True, slots=True)
class NetboxFields:
    """The names of the custom fields that carry each context field in this NetBox."""

    criticality: str = "criticality"
    environment: str = "environment"
    exposure: str = "exposure"
    data_classification: str = "data_classification"
    service: str = "service"
    owner: str = "owner"


@dataclass(slots=True)
class NetboxSync:
    """What a sync read and what applying it did."""

    netbox_version: str | None
    devices: int
    virtual_machines: int
    result: ApplyResult


def _name(obj: Any) -> str | None:
    return obj.get("name") if isinstance(obj, Mapping) else None


def _choice(value: Any) -> Any:
    # A selection custom field may come back as its value or as {"value", "label"}.
    return value.get("value") if isinstance(value, Mapping) else value


def record_from_object(kind: str, obj: Mapping[str, Any], fields: NetboxFields) -> CmdbRecord:
    """One NetBox device or VM (its API JSON) as a CMDB record; ``ValueError`` if bad."""
    custom = obj.get("custom_fields") or {}
    name = obj.get("name") or ""
    row: dict[str, Any] = {"hostname": name.split(".", 1)[0] if name else None,
                           "fqdn": name if "." in name else None}
    primary = obj.get("primary_ip") or obj.get("primary_ip4") or obj.get("primary_ip6")
    if isinstance(primary, Mapping):
        row["ip"] = primary.get("address")
    for column in ("criticality", "environment", "exposure", "data_classification", "owner",
                   "service"):
        key = getattr(fields, column)
        if key in custom:
            row[column] = _choice(custom[key])
    if not row.get("service") and _name(obj.get("tenant")):
        row["service"] = _name(obj.get("tenant"))
    site = _name(obj.get("site"))
    place = _name(obj.get("location"))
    if site or place:
        row["location"] = " / ".join(p for p in (site, place) if p)
    tags = [t.get("slug") or t.get("name") for t in obj.get("tags") or []
            if isinstance(t, Mapping)]
    role = obj.get("role")
    if isinstance(role, Mapping) and role.get("slug"):
        tags.append(f"role:{role['slug']}")
    row["tags"] = [t for t in tags if t]
    return record_from_mapping(f"netbox:{kind}/{obj.get('id')}", row)


def records_from_netbox(devices: Iterable[Mapping[str, Any]],
                        virtual_machines: Iterable[Mapping[str, Any]],
                        fields: NetboxFields | None = None) -> list[CmdbRecord]:
    """CMDB records of NetBox's device and VM JSON; every bad object reported at once."""
    fields = fields or NetboxFields()
    records: list[CmdbRecord] = []
    problems: list[str] = []
    for kind, objects in (("dcim.devices", devices),
                          ("virtualization.virtual_machines", virtual_machines)):
        for obj in objects:
            try:
                records.append(record_from_object(kind, obj, fields))
            except ValueError as exc:
                problems.append(f"netbox:{kind}/{obj.get('id')} ({obj.get('name')}): {exc}")
    if problems:
        raise CmdbFormatError(problems)
    return records


def fetch(url: str, token: str | None) -> tuple[str | None, list[dict[str, Any]],
                                                list[dict[str, Any]]]:
    """NetBox's version, devices and virtual machines, as the API's JSON (all pages)."""
    import pynetbox
    import requests

    api = pynetbox.api(url, token=token)
    try:
        # /api/status/ first: a wrong URL or token fails here with one clear message
        # rather than halfway through the pages.
        status = api.status()
        out: list[list[dict[str, Any]]] = []
        for app, endpoint, _label in ENDPOINTS:
            out.append([dict(r) for r in getattr(getattr(api, app), endpoint).all()])
    except pynetbox.RequestError as exc:
        raise NetboxError(f"NetBox at {url} answered {exc.req.status_code}: {exc.error}"
                          ) from exc
    except (pynetbox.ContentError, requests.RequestException, ValueError) as exc:
        raise NetboxError(f"NetBox at {url}: {exc}") from exc
    version = status.get("netbox-version") if isinstance(status, dict) else None
    return version, out[0], out[1]


def sync(engine: Engine, url: str, token: str | None, *, actor: str,
         fields: NetboxFields | None = None, create_missing: bool = False) -> NetboxSync:
    """Read NetBox and apply its devices' and VMs' context to the matching assets."""
    version, devices, vms = fetch(url, token)
    records = records_from_netbox(devices, vms, fields)
    result = apply_records(engine, records, source="netbox", actor=actor,
                           create_missing=create_missing, label=url)
    return NetboxSync(version, len(devices), len(vms), result)
