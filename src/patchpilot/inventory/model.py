"""The Inventory document: the one contract between every collector and the server.

One JSON document per asset -- its identity, its OS and its packages with purls -- however
it was gathered (agent, SSH, uploaded file).  It is versioned and validated on the way in;
the JSON Schema is published as ``schemas/inventory-2.schema.json``.

Schema 2 adds ``windows`` (product, build, UBR, installed KBs, programs) and ``device``
(a network device's vendor, model, firmware, services) and nothing else: a document
without either is still written as schema 1, so a server that reads
only schema 1 keeps taking new Linux agents' documents, and every schema 1 document reads
as before.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal, Self

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from patchpilot import __version__
from patchpilot.errors import InventoryFormatError
from patchpilot.models import Ecosystem, OsRelease, Package, PackageOwner

SCHEMA_VERSION: Literal[2] = 2
SCHEMA_VERSIONS = (1, 2)
"""The schemas this version reads; it writes 1 unless the document has Windows facts."""


_KB_ID = re.compile(r"KB\d{5,8}")
_WINDOWS_SCHEMA = "windows: Windows facts need schema 2 (this document says 1)"
_DEVICE_SCHEMA = "device: device facts need schema 2 (this document says 1)"


class _Strict(BaseModel):
    """Base of the document's parts: unknown fields are an error, not silently dropped.

    A field this version does not know means a newer schema or a typo; both deserve a
    clear error rather than data quietly lost.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class AssetIdentity(_Strict):
    """What identifies the asset: any one of these may be what the CMDB knows it by."""

    hostname: str | None = None
    fqdn: str | None = None
    machine_id: str | None = None  # /etc/machine-id: stable across renames and re-IPs
    ip_addresses: list[str] = Field(default_factory=list)
    cloud_instance_id: str | None = None
    # The container image (``registry/name``) or code repository (``github.com/org/repo``)
    # an SBOM, lock file or scanner report describes: what identifies an asset that is
    # not a host.
    artifact: str | None = None


class OsInfo(_Strict):
    """The operating system (from os-release) and its kernels."""

    id: str = Field(min_length=1)
    version_id: str | None = None
    codename: str | None = None
    pretty_name: str | None = None
    id_like: list[str] = Field(default_factory=list)
    kernel_running: str | None = None
    kernels_installed: list[str] = Field(default_factory=list)
    # True: a newer kernel is installed than the one running (or the distribution's
    # /var/run/reboot-required flag is set); None: the collector could not tell (no kernel
    # package, a container sharing the host's kernel, an inventory from before this field).
    reboot_required: bool | None = None

    @classmethod
    def from_os_release(cls, release: OsRelease, **kernels: Any) -> OsInfo:
        """An OsInfo from a parsed os-release, plus ``kernel_running``/``kernels_installed``."""
        return cls(id=release.id, version_id=release.version_id, codename=release.codename,
                   pretty_name=release.pretty_name, id_like=list(release.id_like), **kernels)

    def to_os_release(self) -> OsRelease:
        """The shared ``OsRelease`` value (what ``ecosystem_for_os`` takes)."""
        return OsRelease(id=self.id, version_id=self.version_id, codename=self.codename,
                         pretty_name=self.pretty_name, id_like=tuple(self.id_like))


class OwnerEntry(_Strict):
    """The OS package (dpkg, rpm, apk) whose files include a language package."""

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)


class PackageEntry(_Strict):
    """One installed package (the JSON form of ``patchpilot.models.Package``)."""

    ecosystem: str = Field(min_length=1)
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    arch: str | None = None
    source_name: str | None = None
    source_version: str | None = None
    purl: str | None = None
    location: str | None = None
    # A language package installed by an OS package (Debian's python3-cryptography ships
    # cryptography): judged through that package.  Absent: nobody's, or not known.
    owner: OwnerEntry | None = None

    @classmethod
    def from_package(cls, package: Package) -> PackageEntry:
        """The entry for a ``Package`` value."""
        owner = package.owner
        return cls(ecosystem=package.ecosystem, name=package.name, version=package.version,
                   arch=package.arch, source_name=package.source_name,
                   source_version=package.source_version, purl=package.purl,
                   location=package.location,
                   owner=OwnerEntry(name=owner.name, version=owner.version) if owner else None)

    def to_package(self) -> Package:
        """The immutable ``Package`` value the matcher works on."""
        owner = self.owner
        return Package(ecosystem=Ecosystem(self.ecosystem), name=self.name,
                       version=self.version, arch=self.arch, source_name=self.source_name,
                       source_version=self.source_version, purl=self.purl,
                       location=self.location,
                       owner=PackageOwner(owner.name, owner.version) if owner else None)


class PendingUpdate(_Strict):
    """A security update the host's own package manager offers for an installed package.

    What apt sees in the distribution's ``-security`` suite, or what ``dnf updateinfo``
    lists.  ``cve_ids`` is empty when the repository did not say which CVEs it fixes (apt
    without network: the candidate's changelog is not on disk); ``advisory_id`` (DSA, DLA,
    RHSA, ALSA, …) and ``severity`` (the distribution's own rating) are None when unknown.
    """

    package: str = Field(min_length=1)  # the installed binary package
    source_name: str | None = None  # its source package, the name advisories use
    arch: str | None = None
    installed_version: str = Field(min_length=1)
    candidate_version: str = Field(min_length=1)
    repository: str = Field(min_length=1)  # "bookworm-security", "dnf updateinfo", …
    advisory_id: str | None = None
    cve_ids: list[str] = Field(default_factory=list)
    severity: str | None = None  # "Important", "Moderate", … as the distribution rates it


class WindowsProgram(_Strict):
    """One installed program from the Uninstall registry keys (schema 2)."""

    name: str = Field(min_length=1)  # DisplayName
    version: str | None = None  # DisplayVersion
    publisher: str | None = None
    # Which registry view listed it: "x64" (the 64-bit view) or "x86" (WOW6432Node).
    arch: str | None = None


class WindowsInfo(_Strict):
    """What a Windows host says about itself (schema 2): what matching against Microsoft's
    security updates needs, and the programs installed beside the OS.

    ``ubr`` (the ``.3270`` of ``20348.3270``) comes only from the registry; the files a
    person saves (``systeminfo``, ``wmic qfe``) lack it, and matching then relies on
    ``kbs``.  ``kbs_complete`` is False when the source's list is known to be cut short
    (``systeminfo`` stops after a few hundred hotfixes): a KB missing from it is then no
    proof that it is not installed.
    """

    product_name: str | None = None  # "Windows Server 2022 Standard"
    family: str | None = None  # "Windows Server 2022", "Windows 11", "Windows 7"
    release: str | None = None  # DisplayVersion: "21H2", "24H2"
    edition: str | None = None  # "Standard", "Enterprise", "Pro"
    # "Server Core" / "Server" / "Client" (registry InstallationType): MSRC lists Server
    # Core installations as products of their own.
    installation_type: str | None = None
    build: int | None = Field(None, ge=0)
    ubr: int | None = Field(None, ge=0)
    service_pack: int | None = Field(None, ge=0)
    architecture: str | None = None  # "x64", "x86", "arm64", "ia64"
    kbs: list[str] = Field(default_factory=list)  # "KB5075912", unique
    kbs_complete: bool = True
    programs: list[WindowsProgram] = Field(default_factory=list)
    # Server products' own versions where present: "sql-server", "exchange", "iis",
    # "dotnet-framework" -> version ("15.0.4415.2", "15.2.1544.4", "10.0", "4.8.09032").
    components: dict[str, str] = Field(default_factory=dict)

    @field_validator("kbs")
    @classmethod
    def _kb_ids(cls, kbs: list[str]) -> list[str]:
        bad = next((kb for kb in kbs if not _KB_ID.fullmatch(kb)), None)
        if bad is not None:
            raise ValueError(f"{bad!r} is not a KB id (KB and 5 to 8 digits)")
        return kbs


class DeviceService(_Strict):
    """One network service a device answers on (nmap's service and version detection)."""

    port: int = Field(ge=0, le=65535)
    protocol: str = "tcp"  # tcp, udp
    name: str | None = None  # "ssh", "https"
    product: str | None = None  # "OpenSSH", "nginx"
    version: str | None = None  # "9.2p1 Debian 2+deb12u3"
    # As nmap gives them: "cpe:/a:openbsd:openssh:9.2p1".
    cpes: list[str] = Field(default_factory=list)


class DeviceInfo(_Strict):
    """A device without a package manager -- router, switch, firewall, VPN gateway, NAS,
    printer -- as discovery, SNMP, ``show version`` or a person declared it (schema 2).

    What was identified becomes the inventory's ``CPE`` packages (``fortinet:fortios``
    at ``7.2.4``), which the matcher judges like any package.  ``identified`` is False
    when the vendor or product could not be mapped to a CPE name: the device is then
    listed as *unidentified* with ``seen`` (what was read, verbatim), never matched to a
    similar name and never dropped.
    """

    vendor: str | None = None  # as seen: "Fortinet", "Cisco", "NEC"
    model: str | None = None  # "FortiGate-60F", "C9300-48P", "Aterm WX3600HP"
    platform: str | None = None  # "fortinet_fortios", "cisco_ios" (ntc-templates names)
    os_name: str | None = None  # "FortiOS", "IOS-XE", "JUNOS"
    firmware: str | None = None  # as the device says: "7.2.4", "15.2(4)M7", "21.4R3-S5"
    serial: str | None = None
    mac_vendor: str | None = None  # from the MAC address's OUI (nmap)
    identified: bool = False
    # How it was learnt: "nmap", "snmp", "ssh:show version", "declared", "cmdb".
    sources: list[str] = Field(default_factory=list)
    # What was seen, verbatim, by field ("sysDescr", "sysObjectID", "show version", "os
    # guess"): what a person reads to identify an unidentified device.
    seen: dict[str, str] = Field(default_factory=dict)
    services: list[DeviceService] = Field(default_factory=list)


class Collector(_Strict):
    """What gathered the inventory: ``local``, ``file``, ``ssh``, ``agent``, …"""

    name: str = Field(min_length=1)
    version: str = __version__


class Inventory(_Strict):
    """Everything installed on one asset at one moment (schema 1, or 2 with ``windows``).

    ``complete`` is False when the collector knows it could not read everything; the
    server then never closes a finding as fixed only because a package is absent.
    ``warnings`` lists what was skipped (an unreadable METADATA, …) so a user can see it.
    """

    schema_: Literal[1, 2] = Field(1, alias="schema")
    asset: AssetIdentity = Field(default_factory=AssetIdentity)
    os: OsInfo | None = None
    packages: list[PackageEntry] = Field(default_factory=list)
    # Empty both when nothing is pending and when the collector could not ask (a warning
    # then says so); documents written before this field read as "none known".
    pending_updates: list[PendingUpdate] = Field(default_factory=list)
    # Per OS package that owns a language package: the CVE ids its own changelog names in
    # entries up to the installed version (Debian's changelog.Debian.gz, ``rpm -q
    # --changelog``) -- the backport evidence used where the distribution's feed is not
    # loaded.  Only owners are read, so the document stays small; absent in older ones.
    changelog_cves: dict[str, list[str]] = Field(default_factory=dict)
    # A Windows host's product, build, KBs and programs (schema 2); None elsewhere.
    windows: WindowsInfo | None = None
    # A network device's identity, firmware and services (schema 2); None elsewhere.
    device: DeviceInfo | None = None
    collected_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    collector: Collector
    complete: bool = True
    warnings: list[str] = Field(default_factory=list)

    @field_validator("collected_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        # Stored and compared in UTC whatever offset the collector's clock used.
        try:
            return value.astimezone(UTC)
        except OverflowError:
            # 9999-12-31T23:59-05:00 is past datetime.max in UTC: a validation error (the
            # API's 422 naming the field), not an OverflowError out of the model.
            raise ValueError("date out of range once converted to UTC") from None

    @model_validator(mode="before")
    @classmethod
    def _schema_of_windows(cls, data: Any) -> Any:
        # Built in code with Windows facts and no schema named: schema 2, as it must be.
        if isinstance(data, dict) and (data.get("windows") is not None or data.get(
                "device") is not None) and not ("schema" in data or "schema_" in data):
            return {**data, "schema": 2}
        return data

    @model_validator(mode="after")
    def _windows_needs_schema_2(self) -> Self:
        if self.windows is not None and self.schema_ < 2:
            raise ValueError(_WINDOWS_SCHEMA)
        if self.device is not None and self.schema_ < 2:
            raise ValueError(_DEVICE_SCHEMA)
        return self

    @classmethod
    def from_packages(cls, packages: list[Package], **fields: Any) -> Inventory:
        """An Inventory listing ``packages``; ``fields`` are the other fields by name."""
        return cls(packages=[PackageEntry.from_package(p) for p in packages], **fields)

    def to_packages(self) -> list[Package]:
        """The packages as immutable ``Package`` values, for the matcher."""
        return [entry.to_package() for entry in self.packages]

    def to_json(self) -> bytes:
        """The document as JSON bytes, ``"schema"`` spelled as the schema says."""
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str, source: str = "inventory") -> Inventory:
        """Parse and validate an Inventory document.

        Raises InventoryFormatError naming ``source`` and the first wrong field as a path
        (``packages[3].version``), or the line and column of invalid JSON.
        """
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InventoryFormatError(
                source, f"invalid JSON at column {exc.colno}: {exc.msg}", line=exc.lineno
            ) from exc
        if not isinstance(raw, dict):
            raise InventoryFormatError(source, "an inventory is a JSON object")
        if "schema" not in raw:
            raise InventoryFormatError(source, "schema: missing (not an inventory document)")
        if raw["schema"] not in SCHEMA_VERSIONS or isinstance(raw["schema"], bool):
            raise InventoryFormatError(
                source, f"schema: unsupported inventory schema {raw['schema']!r} "
                        f"(this PatchPilot {__version__} reads schemas 1 and 2)")
        if raw.get("windows") is not None and raw["schema"] == 1:
            raise InventoryFormatError(source, _WINDOWS_SCHEMA)
        if raw.get("device") is not None and raw["schema"] == 1:
            raise InventoryFormatError(source, _DEVICE_SCHEMA)
        problem = _unstorable(raw)
        if problem:
            raise InventoryFormatError(source, problem)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            errors = exc.errors()
            first = errors[0]
            more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
            raise InventoryFormatError(
                source, f"{field_path(first['loc'])}: {first['msg']}{more}") from exc


# Fields stored in columns of a fixed length (db/tables.py: assets, inventories,
# asset_packages): a longer value is refused here, naming the field, on both databases --
# PostgreSQL would refuse it at the insert (a 500), SQLite would store it.
_MAX_LENGTHS: dict[tuple[str, ...], int] = {
    ("asset", "hostname"): 300, ("asset", "fqdn"): 300, ("asset", "machine_id"): 100,
    ("os", "pretty_name"): 200, ("os", "id"): 100, ("os", "version_id"): 99,
    ("collector", "name"): 50,
    ("packages", "*", "ecosystem"): 100, ("packages", "*", "name"): 300,
    ("packages", "*", "source_name"): 300, ("packages", "*", "version"): 200,
    ("packages", "*", "source_version"): 200,
    ("windows", "kbs", "*"): 20, ("windows", "product_name"): 300,
    ("windows", "programs", "*", "name"): 300, ("windows", "programs", "*", "version"): 200,
}


def _unstorable(value: Any, loc: tuple[int | str, ...] = ()) -> str | None:
    """The first string of a raw document the database cannot store, described with its
    path: a NUL byte anywhere (PostgreSQL text cannot hold U+0000), or a value longer
    than its column.  None when every string fits."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{field_path(loc)}: must not contain a NUL byte (\\x00)"
        key = tuple("*" if isinstance(part, int) else part for part in loc)
        limit = _MAX_LENGTHS.get(key)
        if limit is not None and len(value) > limit:
            return f"{field_path(loc)}: longer than {limit} characters ({len(value)})"
        return None
    if isinstance(value, dict):
        for name, item in value.items():
            if isinstance(name, str) and "\x00" in name:
                return f"{field_path(loc) if loc else '(document)'}: a key holds a NUL byte"
            problem = _unstorable(item, (*loc, name))
            if problem:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problem = _unstorable(item, (*loc, index))
            if problem:
                return problem
    return None


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a readable path: ``('packages', 3, 'name')`` ->
    ``packages[3].name``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(document)"


def inventory_json_schema() -> dict[str, Any]:
    """The JSON Schema of Inventory schema 2 (which reads schema 1 documents too), as
    published in schemas/."""
    schema = Inventory.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
