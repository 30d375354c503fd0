"""The importer contract: what every third-party report format turns into.

A format module (``importers/formats/<name>.py``) defines one :class:`Format`: a
``detect`` that scores a file's first bytes (:class:`Sniff`) and a ``parse`` that streams
the file into :class:`ReportItem` values (one vulnerability on one asset, as the report
said it) and :class:`Target` values (an asset the report covers, findings or not: a
re-import closes what it no longer lists on the assets it covers).  Parsers only read: the
import (``importers.apply``) maps items to assets and findings, completes the report's
fields from the knowledge base and applies them under the format's producer.

Readers shared by the formats are here too: a safe XML event stream (no entities, no DTD,
no network), whole-document and streamed JSON, CSV rows with their line numbers -- each
raising :class:`ReportError` with the file and line.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import IO, Any

import ijson
import orjson
from lxml import etree

from patchpilot.errors import InvalidInput
from patchpilot.knowledge.ecosystems import normalize_ecosystem

# How much of a file detection reads.
SNIFF_BYTES = 256 * 1024

# Severity bands (DESIGN.md) an item's ``severity`` is normalised to.
BANDS = ("Critical", "High", "Medium", "Low", "None")
UNKNOWN = "Unknown"


class ReportError(InvalidInput):
    """A report that cannot be read: names the file, the line when known, and why."""

    def __init__(self, source: str, detail: str, *, line: int | None = None) -> None:
        self.source = source
        self.detail = detail
        self.line = line
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {detail}")

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (self.__class__, (self.source, self.detail), {"line": self.line})


@dataclass(frozen=True, slots=True)
class Target:
    """The asset an item is about, as the report names it.

    Any of host name, FQDN, IP address or ``artifact`` (a container image, repository or
    project name).  A report that names no asset (``npm audit``) gives an empty Target:
    the import puts its items on the asset the user names (``--asset``), else one named
    after the file.
    """

    hostname: str | None = None
    fqdn: str | None = None
    ip: str | None = None
    artifact: str | None = None
    os: str | None = None  # the operating system the report saw, as it wrote it
    mac: str | None = None

    @property
    def empty(self) -> bool:
        """True when the report named no asset."""
        return not (self.hostname or self.fqdn or self.ip or self.artifact)

    @property
    def key(self) -> tuple[str | None, str | None, str | None, str | None]:
        """What identifies the target within one report."""
        return (self.hostname, self.fqdn, self.ip, self.artifact)


@dataclass(frozen=True, slots=True)
class ReportItem:
    """One vulnerability on one asset as a report states it.

    ``scanner_id`` is the scanner's own id for the check or advisory (``nessus:19506``,
    ``qualys:38170``, ``openvas:1.3.6.1.4.1.25623.1.0.108440``, ``GHSA-…``, ``CVE-…``);
    ``cves`` every CVE the item names (one finding each; none: the finding's id is
    ``scanner_id``).  The package (``ecosystem`` in PatchPilot's spelling where the
    report says which -- ``npm``, ``PyPI``, ``Debian:12`` --, else the report's word) or,
    for a network scanner, the port/protocol/service.  Every text field is None where the
    report does not have it: the import completes it from the knowledge base.
    ``severity`` is one of :data:`BANDS` (or ``Unknown``); ``informational`` items (Nessus
    severity 0, Qualys "information gathered") are facts about the asset, not findings.
    """

    target: Target
    scanner_id: str
    cves: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # other ids the report gives (GHSA, CWE are not ids)
    title: str | None = None
    description: str | None = None
    ecosystem: str | None = None
    package: str | None = None
    installed_version: str | None = None
    fixed_version: str | None = None
    location: str | None = None  # where the package is (a lock file, a path in an image)
    port: int | None = None
    protocol: str | None = None
    service: str | None = None
    severity: str = UNKNOWN
    cvss_vector: str | None = None  # prefixed (``CVSS:3.1/…``) or a bare v2 vector
    cvss_score: float | None = None
    exploit_available: bool | None = None
    solution: str | None = None
    workaround: str | None = None
    references: tuple[str, ...] = ()
    cwes: tuple[str, ...] = ()  # "CWE-79"
    informational: bool = False
    output: str | None = None  # the scanner's evidence (plugin output, result text)
    line: int | None = None  # where the item starts in the file, when the reader knows


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something the report holds that is not imported, and why (counted in the
    summary by reason): ``Skipped("license finding", line=12)``."""

    reason: str
    line: int | None = None


@dataclass
class Sniff:
    """The start of a file, for detection: its name and first :data:`SNIFF_BYTES`."""

    name: str
    head: bytes
    size: int | None = None

    @cached_property
    def text(self) -> str:
        """The head as text (UTF-8, BOM dropped, undecodable bytes replaced)."""
        text = self.head.decode("utf-8", errors="replace")
        return text.lstrip("\ufeff")

    @cached_property
    def kind(self) -> str:
        """``xml``, ``json``, ``csv`` or ``text`` by the first significant character."""
        stripped = self.text.lstrip()
        if stripped.startswith("<"):
            return "xml"
        if stripped.startswith(("{", "[")):
            return "json"
        first = stripped.split("\n", 1)[0]
        if first.count(",") >= 2 or first.count("\t") >= 2 or first.count(";") >= 2:
            return "csv"
        return "text"

    @cached_property
    def xml_root(self) -> str | None:
        """The local name of the root element, or None."""
        if self.kind != "xml":
            return None
        try:
            for _event, element in etree.iterparse(
                    io.BytesIO(self.head), events=("start",), resolve_entities=False,
                    no_network=True, load_dtd=False, recover=True, huge_tree=False):
                return str(etree.QName(element).localname)
        except etree.LxmlError:
            return None
        return None

    @cached_property
    def xml_namespace(self) -> str | None:
        """The namespace URI of the root element, or None."""
        if self.kind != "xml":
            return None
        root = self.xml_root
        if root is None:
            return None
        # The root's own start tag: its default namespace, else the one its prefix names.
        tag = re.search(r"<((?:[\w.-]+:)?" + re.escape(root) + r")\b[^>]*>", self.text)
        if tag is None:
            return None
        prefix = tag.group(1).split(":")[0] if ":" in tag.group(1) else None
        wanted = f"xmlns:{prefix}" if prefix else "xmlns"
        match = re.search(r"\s" + re.escape(wanted) + r"=\"([^\"]+)\"", tag.group(0))
        return match.group(1) if match else None

    @cached_property
    def json_keys(self) -> frozenset[str]:
        """The top-level keys of a JSON object (those within the head), or none."""
        if self.kind != "json" or not self.text.lstrip().startswith("{"):
            return frozenset()
        keys: set[str] = set()
        try:
            for prefix, event, value in ijson.parse(io.BytesIO(self.head)):
                if prefix == "" and event == "map_key":
                    keys.add(value)
        except (ijson.common.IncompleteJSONError, ijson.common.JSONError, ValueError):
            pass
        return frozenset(keys)

    @cached_property
    def json_list(self) -> bool:
        """True when the JSON document is a list."""
        return self.kind == "json" and self.text.lstrip().startswith("[")

    @cached_property
    def csv_header(self) -> tuple[str, ...]:
        """The first row's cells, stripped and lower-cased (CSV only)."""
        if self.kind != "csv":
            return ()
        first = self.text.split("\n", 1)[0].rstrip("\r")
        dialect = _dialect(first)
        return tuple(c.strip().lower() for c in next(csv.reader([first], dialect), []))


# detect(sniff) -> a score: 0 = not this format; the highest score wins.  A format's own
# marks score 100 (a root element or key only it has); a family reader that takes any
# file of its kind (SARIF, CycloneDX, the generic format) scores lower, so a specific
# reader of the same file wins.
Detect = Callable[[Sniff], int]
Parse = Callable[[IO[bytes], str], Iterator["ReportItem | Target | Skipped"]]


@dataclass(frozen=True, slots=True)
class Format:
    """One report format: its name, the producer its findings belong to, its readers."""

    name: str  # the --format value: "nessus", "trivy", "npm-audit"
    producer: str  # the scanner: findings belong to producer "importer:<producer>"
    title: str  # for people: "Nessus .nessus v2"
    detect: Detect
    parse: Parse
    extensions: tuple[str, ...] = ()  # the usual file name endings, for the upload form
    notes: str = ""  # what is read and what is left out, for docs/importers.md


def read_report(fmt: Format, stream: IO[bytes], source: str
                ) -> Iterator[ReportItem | Target | Skipped]:
    """``fmt.parse`` of ``stream``, with any failure a ReportError naming the file.

    A reader raises ReportError for what it checks (malformed XML/JSON/CSV, a missing
    required column); a document whose shape differs from the format's in a way it did
    not foresee (a number where an object was, a list cut short) surfaces as Python's own
    error -- turned here into "the content does not have the shape of <format>" with the
    line where the reader was when it knows, instead of a traceback.
    """
    try:
        yield from fmt.parse(stream, source)
    except ReportError:
        raise
    except (AttributeError, KeyError, IndexError, TypeError, ValueError,
            UnicodeError, RecursionError) as exc:
        raise ReportError(source, f"this is not a {fmt.title} report of the expected "
                                  f"shape ({type(exc).__name__}: {exc})") from None


# --- helpers the format modules share --------------------------------------------------

_CVE = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)
_CWE = re.compile(r"CWE-(\d+)", re.IGNORECASE)


def cve_ids(*texts: str | Iterable[str] | None) -> tuple[str, ...]:
    """Every CVE id in ``texts`` (strings or lists of strings), upper-cased, in order,
    once each."""
    found: dict[str, None] = {}
    for text in texts:
        if text is None:
            continue
        for part in ([text] if isinstance(text, str) else text):
            if part:
                for match in _CVE.findall(str(part)):
                    found[match.upper()] = None
    return tuple(found)


def cwe_ids(*texts: str | int | Iterable[str | int] | None) -> tuple[str, ...]:
    """``CWE-<n>`` for every CWE in ``texts`` (``"CWE-79"``, ``"79"``, ``79``)."""
    found: dict[str, None] = {}
    for text in texts:
        if text is None:
            continue
        parts = [text] if isinstance(text, (str, int)) else text
        for part in parts:
            if isinstance(part, int) or (isinstance(part, str) and part.strip().isdigit()):
                if int(part) > 0:
                    found[f"CWE-{int(part)}"] = None
                continue
            for number in _CWE.findall(str(part)):
                if int(number) > 0:
                    found[f"CWE-{int(number)}"] = None
    return tuple(found)


_BAND_WORDS = {
    "critical": "Critical", "urgent": "Critical", "severe": "High", "high": "High",
    "important": "High", "serious": "High", "medium": "Medium", "moderate": "Medium",
    "low": "Low", "minor": "Low", "negligible": "Low", "none": "None", "info": "None",
    "informational": "None", "information": "None", "unimportant": "Low",
}


def band(text: str | int | float | None) -> str:
    """A scanner's severity word as one of :data:`BANDS` (``Unknown`` when it says none
    PatchPilot knows).  ``"CRITICAL"``, ``"moderate"``, ``"Info"`` …"""
    if text is None:
        return UNKNOWN
    word = str(text).strip().lower()
    return _BAND_WORDS.get(word, UNKNOWN)


def score_band(score: float | None) -> str:
    """The CVSS v3 band of a score (DESIGN.md's table), ``Unknown`` for None."""
    if score is None:
        return UNKNOWN
    if score >= 9.0:
        return "Critical"
    if score >= 7.0:
        return "High"
    if score >= 4.0:
        return "Medium"
    if score > 0.0:
        return "Low"
    return "None"


def number(value: Any) -> float | None:
    """A score as a float: a number, or text holding one; None for None, empty text and
    what is no number (``-``, ``N/A``)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value) if str(value).strip() else None
    except (TypeError, ValueError):
        return None


def text_or_none(value: Any) -> str | None:
    """``value`` as a stripped string; None for None, empty and whitespace."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def xml_events(stream: IO[bytes], source: str, *, tags: Iterable[str] | None = None,
               events: tuple[str, ...] = ("end",)) -> Iterator[tuple[str, Any]]:
    """``(event, element)`` pairs of a streamed XML parse, safely (no entity expansion,
    no DTD, no network), raising :class:`ReportError` with the line on malformed XML.

    ``tags`` limits the events to those element names (``{ns}local`` or plain local
    names).  Clear elements you are done with (``element.clear()``) so memory stays flat.
    """
    parser = etree.iterparse(stream, events=events, tag=list(tags) if tags else None,
                             resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=True, remove_comments=True)
    try:
        yield from parser
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        raise ReportError(source, f"malformed XML: {exc.msg}", line=line) from None


def xml_text(element: Any, path: str) -> str | None:
    """The stripped text of ``element.find(path)`` (None when absent or empty)."""
    found = element.find(path)
    return text_or_none(found.text) if found is not None else None


def read_json(stream: IO[bytes], source: str) -> Any:
    """The whole JSON document (for reports that are one object).  A syntax error names
    the line; an empty file is refused as such."""
    data = stream.read()
    if not data.strip():
        raise ReportError(source, "the file is empty")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        line = data[:exc.pos].count(b"\n") + 1 if exc.pos is not None else None
        raise ReportError(source, f"malformed JSON: {exc.msg}", line=line) from None


def json_items(stream: IO[bytes], source: str, prefix: str) -> Iterator[Any]:
    """Stream the values at ``prefix`` (ijson syntax: ``"Results.item"``) one by one, so a
    large report is never held whole."""
    try:
        yield from ijson.items(stream, prefix, use_float=True)
    except (ijson.common.IncompleteJSONError, ijson.common.JSONError) as exc:
        raise ReportError(source, f"malformed JSON: {exc}") from None


def _dialect(first_line: str) -> type[csv.Dialect]:
    counts = {",": first_line.count(","), ";": first_line.count(";"),
              "\t": first_line.count("\t")}
    delimiter = max(counts, key=lambda k: counts[k])

    class Dialect(csv.excel):
        pass

    Dialect.delimiter = delimiter
    return Dialect


def csv_rows(stream: IO[bytes], source: str, *, skip_until: Callable[[list[str]], bool]
             | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, row)`` for every data row of a CSV report (``line``: where the row
    starts), keyed by the header's cells (stripped, case kept).  The delimiter (``,``,
    ``;``, tab) is read off the first line; a UTF-8 BOM is dropped.  ``skip_until``
    skips preamble rows (Qualys puts report metadata above the table) until it is true of
    a row, which is then the header.
    """
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        for line in text:
            consumed += 1
            yield line

    feed = lines()
    try:
        first = next(feed)
    except StopIteration:
        raise ReportError(source, "the file is empty") from None
    reader = csv.reader(itertools.chain([first], feed), _dialect(first))
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            line, start = start, consumed + 1
            if header is None:
                if skip_until is not None and not skip_until(row):
                    continue
                header = [h.strip() for h in row]
                continue
            if not any(cell.strip() for cell in row):
                continue
            yield line, dict(zip(header, row, strict=False))
    except csv.Error as exc:
        raise ReportError(source, f"malformed CSV: {exc}", line=start) from None
    if header is None:
        raise ReportError(source, "no header row found")


# A report's package type word (Trivy's ``Type``, Grype's ``type``, a purl type, Snyk's
# ``packageManager`` …) -> PatchPilot's ecosystem name (what the knowledge base says).
_LANGUAGE = {
    "npm": "npm", "yarn": "npm", "pnpm": "npm", "node-pkg": "npm", "nodejs": "npm",
    "javascript": "npm", "bun": "npm",
    "pip": "PyPI", "pipenv": "PyPI", "poetry": "PyPI", "python-pkg": "PyPI", "pypi": "PyPI",
    "python": "PyPI", "uv": "PyPI", "conda-pkg": "PyPI",
    "gomod": "Go", "gobinary": "Go", "go": "Go", "golang": "Go", "go-module": "Go",
    "jar": "Maven", "pom": "Maven", "gradle": "Maven", "maven": "Maven", "sbt": "Maven",
    "java-archive": "Maven", "java": "Maven",
    "cargo": "crates.io", "rust-binary": "crates.io", "crates.io": "crates.io",
    "rust-crate": "crates.io", "cargo-auditable": "crates.io",
    "composer": "Packagist", "php": "Packagist", "packagist": "Packagist",
    "composer-vendor": "Packagist", "php-composer": "Packagist",
    "bundler": "RubyGems", "gemspec": "RubyGems", "gem": "RubyGems", "rubygems": "RubyGems",
    "ruby": "RubyGems",
    "nuget": "NuGet", "dotnet-core": "NuGet", "packages-lock": "NuGet", "dotnet": "NuGet",
    "dotnet-deps": "NuGet",
    "hex": "Hex", "mix": "Hex", "pub": "Pub", "dart": "Pub",
}
_DISTRIBUTION = {
    "debian": "Debian", "ubuntu": "Ubuntu", "alpine": "Alpine", "alma": "AlmaLinux",
    "almalinux": "AlmaLinux", "rocky": "Rocky Linux", "redhat": "Red Hat", "rhel": "Red Hat",
    "centos": "CentOS", "oracle": "Oracle Linux", "ol": "Oracle Linux", "fedora": "Fedora",
    "amazon": "Amazon Linux", "amzn": "Amazon Linux", "opensuse": "openSUSE",
    "opensuse-leap": "openSUSE", "suse": "SUSE", "sles": "SUSE", "wolfi": "Wolfi",
    "chainguard": "Chainguard", "photon": "Photon OS", "mariner": "Azure Linux",
    "azurelinux": "Azure Linux", "cbl-mariner": "Azure Linux",
}


def ecosystem_for(kind: str | None, release: str | None = None) -> str | None:
    """PatchPilot's ecosystem for a report's package type word: ``"pip"`` -> ``PyPI``,
    ``"gomod"`` -> ``Go``; a distribution with its release -> ``Debian:12``,
    ``Alpine:3.18`` (without a release: the distribution's name).  None when the word
    names no ecosystem PatchPilot knows (the item keeps the report's word)."""
    if not kind:
        return None
    word = kind.strip().lower()
    if word in _LANGUAGE:
        return _LANGUAGE[word]
    distro = _DISTRIBUTION.get(word)
    if distro is None:
        return None
    if release:
        return str(normalize_ecosystem(f"{distro}:{release.strip()}"))
    return distro
