"""CMDB exports (CSV, JSON, YAML) parsed into validated :class:`CmdbRecord` values.

Pure functions: text in, records out; nothing here touches the database.

Columns (header names are case-, space- and hyphen-insensitive; aliases in brackets):

===================== ===================================================================
column                meaning
===================== ===================================================================
hostname              [host, name, server, ci_name] matched case-insensitively
fqdn                  [dns_name, dns] matched case-insensitively
ip                    [ip_address, ip_addresses, address, primary_ip] one address (a
                      ``/prefix`` is dropped); matched against the addresses an asset
                      reported
machine_id            [machine-id] ``/etc/machine-id``; the most precise match
criticality           [tier, business_criticality] business criticality tier 1 (highest)
                      to 4; ``1``, ``tier 1``, ``tier-1``, ``T1`` are all tier 1
environment           [env] production, staging or development (prod, stage, dev)
exposure              internet-facing, internal or isolated (internet, air-gapped)
data_classification   [classification, data_class] free text, e.g. confidential
owner                 [owned_by, contact] who patches it
service               [business_service, application] the business service it serves
location              [site, plant] site / plant
tags                  [tag, labels] separated by ``,`` or ``;`` (a list in JSON/YAML)
compensating_control  [control] an applied workaround or control, if any
vendor                [manufacturer] a network device's vendor (NEC, Fortinet, Cisco):
                      the row then declares a device (``assets.devices``)
model                 [device_model] the device's model (Aterm WX3600HP, FortiGate-60F)
firmware              [firmware_version] its firmware version as the vendor writes it
os_name               [device_os] its OS name when it has one (FortiOS, IOS-XE, JUNOS)
===================== ===================================================================

At least one of hostname, fqdn, ip, machine_id is required in each row.  Other columns
are kept as the asset's attributes (nothing in the export is dropped).  A column that is
absent leaves the stored value as it was; a present but empty cell clears it.

Errors name the file, the line (CSV, YAML) or record (JSON) and the column:
``cmdb.csv:14: criticality must be 1-4, got 'high'``.  Every problem in a file is
reported at once, so one round of fixes suffices.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from patchpilot.errors import PatchPilotError

IDENTITY = ("machine_id", "fqdn", "hostname", "ip")
CONTEXT = ("criticality", "environment", "exposure", "data_classification", "owner",
           "service", "location", "compensating_control")
# A row with a vendor declares a network device (assets.devices.import_cmdb_devices):
# identified through the CPE table, else stored as unidentified -- never dropped.
DEVICE = ("vendor", "model", "firmware", "os_name")
COLUMNS = (*IDENTITY, *CONTEXT, "tags", *DEVICE)
ENVIRONMENTS = ("production", "staging", "development")
EXPOSURES = ("internet-facing", "internal", "isolated")

_ALIASES: dict[str, str] = {
    **{c: c for c in COLUMNS},
    "host": "hostname", "name": "hostname", "server": "hostname", "ci_name": "hostname",
    "host_name": "hostname",
    "dns_name": "fqdn", "dns": "fqdn",
    "ip_address": "ip", "ip_addresses": "ip", "address": "ip", "primary_ip": "ip",
    "machineid": "machine_id",
    "tier": "criticality", "business_criticality": "criticality",
    "env": "environment",
    "network_exposure": "exposure",
    "classification": "data_classification", "data_class": "data_classification",
    "owned_by": "owner", "contact": "owner",
    "business_service": "service", "application": "service",
    "site": "location", "plant": "location",
    "tag": "tags", "labels": "tags",
    "control": "compensating_control",
    "manufacturer": "vendor", "device_model": "model", "firmware_version": "firmware",
    "device_os": "os_name",
}
_ENV_WORDS = {"production": "production", "prod": "production", "prd": "production",
              "staging": "staging", "stage": "staging", "stg": "staging",
              "development": "development", "dev": "development"}
_EXPOSURE_WORDS = {"internet-facing": "internet-facing", "internet": "internet-facing",
                   "external": "internet-facing", "public": "internet-facing",
                   "internal": "internal", "isolated": "isolated",
                   "air-gapped": "isolated", "airgapped": "isolated"}
# Column widths of asset_context: a longer value is an error, never silently cut.
_MAX_LENGTH = {"data_classification": 50, "owner": 200, "service": 200, "location": 200,
               "environment": 20, "exposure": 20, "hostname": 300, "fqdn": 300,
               "machine_id": 100, "ip": 100, "vendor": 200, "model": 200, "firmware": 200,
               "os_name": 200}
_TIER = re.compile(r"^(?:tier|t)?[\s_-]*([0-9]+)$")


class CmdbFormatError(PatchPilotError):
    """A CMDB export with bad rows; ``problems`` lists every one as ``file:line: what``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class CmdbRecord:
    """One CMDB row: how to find the asset, and what the CMDB says about it.

    ``present`` names the context fields (and ``tags``) the source carried: only those
    are written, so a file of hostnames and owners changes owners only.
    """

    where: str  # "cmdb.csv:14", "cmdb.json:record 3", "netbox:dcim.devices/17"
    hostname: str | None = None
    fqdn: str | None = None
    ip: str | None = None
    machine_id: str | None = None
    criticality: int | None = None
    environment: str | None = None
    exposure: str | None = None
    data_classification: str | None = None
    owner: str | None = None
    service: str | None = None
    location: str | None = None
    compensating_control: str | None = None
    tags: tuple[str, ...] = ()
    # A network device the row declares (vendor set): model, firmware, OS name.
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    os_name: str | None = None
    present: frozenset[str] = frozenset()
    extra: Mapping[str, str] = field(default_factory=dict)  # other columns → attributes

    def identity(self) -> str:
        """The keys it is matched by, for people: ``hostname=web1 ip=10.0.0.5``."""
        return " ".join(f"{k}={getattr(self, k)}" for k in IDENTITY if getattr(self, k))

    def context(self) -> dict[str, Any]:
        """The context fields this record sets (only those present in the source)."""
        return {k: getattr(self, k) for k in CONTEXT if k in self.present}


def canonical_column(header: str) -> str | None:
    """The documented column a header means (``"Business Criticality"`` → criticality)."""
    key = re.sub(r"[\s\-]+", "_", header.strip().lower())
    return _ALIASES.get(key)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _criticality(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):  # YAML "yes" is a bool, not tier 1
        raise ValueError(f"criticality must be 1-4, got {value!r}")
    if isinstance(value, int):
        tier = value
    else:
        found = _TIER.match(str(value).strip().lower())
        if not found:
            raise ValueError(f"criticality must be 1-4, got {str(value).strip()!r}")
        tier = int(found.group(1))
    if not 1 <= tier <= 4:
        raise ValueError(f"criticality must be 1-4, got {value!r}" if isinstance(value, int)
                         else f"criticality must be 1-4, got {str(value).strip()!r}")
    return tier


def _choice(column: str, value: Any, words: dict[str, str], allowed: tuple[str, ...]
            ) -> str | None:
    text = _text(value)
    if text is None:
        return None
    key = re.sub(r"[\s_]+", "-", text.lower())
    if key not in words:
        raise ValueError(f"{column} must be one of {', '.join(allowed)}, got {text!r}")
    return words[key]


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else re.split(r"[,;]", str(value))
    seen: dict[str, None] = {}
    for item in items:
        text = _text(item)
        if text:
            seen.setdefault(text, None)
    return tuple(seen)


def _ip(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        # A JSON/YAML list of addresses: the first identifies the asset.
        value = value[0] if value else None
    text = _text(value)
    return text.split("/", 1)[0] if text else None


def record_from_mapping(where: str, row: Mapping[str, Any], *,
                        require_identity: bool = True) -> CmdbRecord:
    """One record from a row of (header → value); ``ValueError`` names the column.

    The message carries no location; callers prefix ``where``.  ``require_identity``
    off: the asset is already known (the API's PUT by id).
    """
    values: dict[str, Any] = {}
    extra: dict[str, str] = {}
    present: set[str] = set()
    for header, raw in row.items():
        if header is None:  # csv: more cells than headers
            raise ValueError("more cells than columns in the header")
        column = canonical_column(str(header))
        if column is None:
            text = _text(raw)
            if text is not None:
                extra[str(header).strip()] = text
            continue
        if column in values or column in present:
            raise ValueError(f"column {column} given twice (as {header!r})")
        if column == "criticality":
            values[column] = _criticality(raw)
        elif column == "environment":
            values[column] = _choice(column, raw, _ENV_WORDS, ENVIRONMENTS)
        elif column == "exposure":
            values[column] = _choice(column, raw, _EXPOSURE_WORDS, EXPOSURES)
        elif column == "tags":
            values[column] = _tags(raw)
        elif column == "ip":
            values[column] = _ip(raw)
        else:
            values[column] = _text(raw)
        limit = _MAX_LENGTH.get(column)
        if limit and isinstance(values[column], str) and len(values[column]) > limit:
            raise ValueError(f"{column} is longer than {limit} characters")
        if column not in IDENTITY and column not in DEVICE:
            present.add(column)
    if require_identity and not any(values.get(k) for k in IDENTITY):
        raise ValueError("no hostname, fqdn, ip or machine_id to match the row by")
    return CmdbRecord(where=where, present=frozenset(present), extra=extra, **values)


def _collect(rows: Iterable[tuple[str, Mapping[str, Any]]]) -> list[CmdbRecord]:
    records: list[CmdbRecord] = []
    problems: list[str] = []
    for where, row in rows:
        try:
            records.append(record_from_mapping(where, row))
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        raise CmdbFormatError(problems)
    return records


def parse_csv(text: str, name: str = "cmdb.csv") -> list[CmdbRecord]:
    """Records of a CSV export with a header row; ``where`` is ``name:line``.

    The delimiter (``,`` ``;`` or tab) is sniffed, since spreadsheet exports in many
    locales use ``;``.
    """
    text = text.lstrip("\ufeff")  # Excel's UTF-8 byte-order mark
    if not text.strip():
        raise CmdbFormatError([f"{name}: empty file, expected a header row"])
    first = text.splitlines()[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return _read_csv(reader, text, name, delimiter)
    except csv.Error as exc:
        # The csv module's own refusals (a field over its 128 KiB limit, …): the record
        # that held it, and the column when it can be told.  Nothing is stored.
        header = next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
        column = _oversized_column(text, reader.line_num, delimiter, header)
        raise CmdbFormatError([f"{name}:{reader.line_num}: {column}{exc}"]) from exc


def _oversized_column(text: str, line: int, delimiter: str, header: list[str]) -> str:
    """``"column NAME: "`` of the first field over the csv module's limit in the record
    that ends at ``line`` (1-based), or "" when no field there is over it."""
    limit = csv.field_size_limit()
    lines = text.splitlines()[:line]
    # The record may span lines (quoted newlines): scan back to where it started, counting
    # fields outside quotes as the csv dialect does (doubled quotes inside are escapes,
    # which toggling twice handles).
    for begin in range(line - 1, -1, -1):
        field, length, quoted = 0, 0, False
        chunk = "\n".join(lines[begin:line])
        for char in chunk:
            if char == '"':
                quoted = not quoted
            elif char == delimiter and not quoted:
                field, length = field + 1, 0
                continue
            length += 1
            if length > limit:
                label = header[field] if field < len(header) else f"#{field + 1}"
                return f"column {label!r}: "
        if not quoted:
            break
    return ""


def _read_csv(reader: Any, text: str, name: str, delimiter: str) -> list[CmdbRecord]:
    header = next(reader)
    unknown_dupes = [h for h in header if not h.strip()]
    if unknown_dupes:
        raise CmdbFormatError([f"{name}:1: a column has no name"])
    if not any(canonical_column(h) in IDENTITY for h in header):
        raise CmdbFormatError([f"{name}:1: no hostname, fqdn, ip or machine_id column "
                               f"(got {', '.join(header)})"])
    rows: list[tuple[str, Mapping[str, Any]]] = []
    start = reader.line_num + 1
    for cells in reader:
        # A quoted cell may span lines: the row starts where the previous one ended.
        where, start = f"{name}:{start}", reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        nul = next((i for i, c in enumerate(cells) if "\x00" in c), None)
        if nul is not None:
            label = header[nul] if nul < len(header) else f"#{nul + 1}"
            raise CmdbFormatError([f"{where}: column {label!r}: must not contain a NUL "
                                   "byte (\\x00)"])
        if len(cells) > len(header):
            rows.append((where, {None: cells}))  # type: ignore[dict-item]
            continue
        rows.append((where, dict(zip(header, cells + [""] * (len(header) - len(cells)),
                                     strict=True))))
    return _collect(rows)


def _records_list(data: Any, name: str) -> list[Any]:
    if isinstance(data, dict):
        # {"assets": [...]} as well as a bare list: exports often wrap their rows.
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    if not isinstance(data, list):
        raise CmdbFormatError([f"{name}: expected a list of records"])
    return data


def parse_json(text: str | bytes, name: str = "cmdb.json") -> list[CmdbRecord]:
    """Records of a JSON list of objects; ``where`` is ``name:record N`` (1-based)."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CmdbFormatError([f"{name}: not valid JSON: {exc}"]) from exc
    items = _records_list(data, name)
    problems = [f"{name}:record {i}: expected an object"
                for i, item in enumerate(items, 1) if not isinstance(item, dict)]
    if problems:
        raise CmdbFormatError(problems)
    return _collect((f"{name}:record {i}", item) for i, item in enumerate(items, 1))


def parse_yaml(text: str, name: str = "cmdb.yaml") -> list[CmdbRecord]:
    """Records of a YAML list of mappings; ``where`` is ``name:line`` of each mapping."""
    try:
        # The node tree gives each record's line; safe_load of the same text its values.
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CmdbFormatError([f"{name}: not valid YAML: {exc}"]) from exc
    items = _records_list(data, name)
    nodes: list[Any] = []
    if isinstance(root, yaml.SequenceNode):
        nodes = root.value
    elif isinstance(root, yaml.MappingNode):
        nodes = next((v.value for _, v in root.value if isinstance(v, yaml.SequenceNode)), [])
    lines = [n.start_mark.line + 1 for n in nodes] if len(nodes) == len(items) else []
    wheres = [f"{name}:{lines[i]}" if lines else f"{name}:record {i + 1}"
              for i in range(len(items))]
    problems = [f"{w}: expected a mapping" for w, item in zip(wheres, items, strict=True)
                if not isinstance(item, dict)]
    if problems:
        raise CmdbFormatError(problems)
    return _collect(zip(wheres, items, strict=True))


def parse_records(items: Iterable[Mapping[str, Any]], name: str = "request") -> list[CmdbRecord]:
    """Records from already-decoded mappings (the API's JSON body)."""
    return _collect((f"{name}:record {i}", item) for i, item in enumerate(items, 1))


FORMATS = {".csv": parse_csv, ".json": parse_json, ".yaml": parse_yaml, ".yml": parse_yaml}


def _parser_for(name: str) -> Any:
    parser = FORMATS.get(Path(name).suffix.lower())
    if parser is None:
        raise CmdbFormatError([f"{name}: unknown format {Path(name).suffix!r}; use .csv, "
                               ".json, .yaml or .yml"])
    return parser


def parse_bytes(data: bytes, name: str) -> list[CmdbRecord]:
    """Records of a CMDB export's content (an uploaded file called ``name``), its format
    chosen by the extension of ``name``; errors name ``name``."""
    parser = _parser_for(name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CmdbFormatError([f"{name}: cannot be read: {exc}"]) from exc
    return list(parser(text, name))


def parse_file(path: Path) -> list[CmdbRecord]:
    """Records of a CMDB export, its format chosen by the file's extension."""
    _parser_for(path.name)  # an unknown format is told before the file is read
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CmdbFormatError([f"{path}: cannot be read: {exc}"]) from exc
    return parse_bytes(data, path.name)
