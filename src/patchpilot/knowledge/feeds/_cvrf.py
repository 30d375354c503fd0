"""Microsoft's CVRF 1.2 monthly documents (Security Update Guide) as plain dataclasses.

The MSRC publishes one document per month (``2026-Mar``): a product tree (ProductID →
full name such as "Windows Server 2022 (Server Core installation)") and, per CVE, the
per-product severity and impact (``Threat Type="Severity"`` / ``"Impact"``; types 3 and 0
in the JSON form), CVSS 3.1 score sets, the exploitation flags (``Threat Type="Exploit
Status"``, type 1: ``Publicly Disclosed:No;Exploited:Yes;Latest Software Release:…``) and
the remediations: ``Vendor Fix`` (KB number, superseded KBs, fixed build, restart, URL),
``Workaround`` and ``Mitigation``.

The XML is read with defusedxml's ``iterparse`` (``forbid_dtd``: a DTD, hence any entity
declaration, is refused before anything is expanded) and each ``Vulnerability`` element is
dropped once read, so a 3 MB month never sits in memory as one tree.  Kept apart from the
feed module so that ``interface`` can name :class:`MsrcDocument` without an import cycle.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from patchpilot.errors import FeedError

NS_CVRF = "{http://www.icasi.org/CVRF/schema/cvrf/1.1}"
NS_PROD = "{http://www.icasi.org/CVRF/schema/prod/1.1}"
NS_VULN = "{http://www.icasi.org/CVRF/schema/vuln/1.1}"

_MONTH_ID = re.compile(r"\d{4}-[A-Z][a-z]{2}")
_CVE = re.compile(r"(?:CVE-\d{4}-\d{4,}|ADV\d{6})", re.IGNORECASE)
_KB_NUMBER = re.compile(r"\d{6,8}")
_TAG = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[ \t]*\n\s*\n\s*|[ \t]+")

# MSRC severity ratings, least to most severe (the vulnerability's rating is its worst).
SEVERITIES = ("Low", "Moderate", "Important", "Critical")


# ------------------------------------------------------------------------- product names


@dataclass(frozen=True, slots=True)
class ProductName:
    """A product full name split into what matching compares with a host's facts."""

    family: str  # "Windows Server", "Windows 11", "SQL Server", or the name itself
    version: str | None  # "2022", "24H2", "2019", "2012 R2"
    edition: str | None  # "Server Core installation", "CU 32", "SP3 GDR"
    arch: str | None  # "x64", "x86", "ARM64"


# Family rules, first match wins: (pattern matched at the start of the name, family).
# ``{family}`` in the family is filled from the pattern's group of that name.
_FAMILY_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), family) for pattern, family in (
        (r"Windows Server (?P<year>\d{4}(?: R2)?), (?P<version>\d{2}H\d) Edition",
         "Windows Server"),
        (r"Windows Server (?P<version>\d{4}(?: R2)?)\b", "Windows Server"),
        (r"Windows (?P<family>10|11|8\.1|7|RT 8\.1) [Vv]ersion (?P<version>\w+)",
         "Windows {family}"),
        (r"Windows (?P<family>10) for ", "Windows {family}"),  # 10 RTM (1507)
        (r"Windows (?P<family>11|8\.1|7|RT 8\.1)\b", "Windows {family}"),
        (r"Microsoft SQL Server (?P<version>\d{4})\b", "SQL Server"),
        (r"Microsoft Exchange Server (?P<version>\d{4}|Subscription Edition)\b",
         "Exchange Server"),
        (r"Microsoft SharePoint (?:Enterprise )?Server (?P<version>\d{4}|Subscription "
         r"Edition)\b", "SharePoint Server"),
        (r"Microsoft Office (?:LTSC )?(?:for Mac )?(?P<version>\d{4})\b", "Office"),
        (r"\.NET (?P<version>\d+\.\d+) installed on (?P<family>\w+)", ".NET on {family}"),
        (r"ASP\.NET Core (?P<version>\d+\.\d+)", "ASP.NET Core"),
        (r"System Center Operations Manager (?P<version>\d{4})", "System Center Operations "
                                                                "Manager"),
    ))

# Where the name says nothing of a version, these names imply one.
_IMPLIED_VERSION = {"Windows 10 for": "1507"}
# Where the name says nothing of an architecture: every Windows Server since 2008 R2 is
# x64 only (2008's names carry theirs).
_IMPLIED_ARCH = {"Windows Server": "x64"}

_ARCH_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), arch) for pattern, arch in (
        (r"\bARM64-based\b", "ARM64"),
        (r"\bx64-based\b|\b64-bit (?:edition|Systems)|\(64-bit edition\)|for 64-bit editions",
         "x64"),
        (r"\b32-bit (?:edition|Systems)|\(32-bit edition\)|for 32-bit editions|x86-based",
         "x86"),
        (r"Itanium-based", "IA64"),
    ))

_EDITION_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), edition) for pattern, edition in (
        (r"\(Server Core installation\)", "Server Core installation"),
        (r"Service Pack (?P<n>\d+)", "SP{n}"),
        (r"Cumulative Update (?P<n>\d+)", "CU {n}"),
        (r"\(CU ?(?P<n>\d+)\)", "CU {n}"),
        (r"\(GDR\)", "GDR"),
        (r"Azure Connect Feature Pack", "Azure Connect Feature Pack"),
    ))


def normalize_product(name: str) -> ProductName:
    """(family, version, edition, architecture) of an MSRC product full name.

    Table-driven (``_FAMILY_RULES``, ``_ARCH_RULES``, ``_EDITION_RULES``) so that a new
    naming pattern is one row; a name no family rule knows keeps itself as its family
    (minus the architecture suffix), so nothing is lost, it just matches by name.
    """
    name = " ".join(name.split())
    family, version = None, None
    for pattern, template in _FAMILY_RULES:
        match = pattern.match(name)
        if match:
            groups = match.groupdict()
            family = template.format(family=groups.get("family") or "")
            version = groups.get("version")
            break
    if version is None:
        version = next((v for prefix, v in _IMPLIED_VERSION.items()
                        if family and name.startswith(prefix)), None)
    arch = next((a for pattern, a in _ARCH_RULES if pattern.search(name)), None)
    if arch is None and family in _IMPLIED_ARCH:
        arch = _IMPLIED_ARCH[family]
    editions = []
    for pattern, template in _EDITION_RULES:
        match = pattern.search(name)
        if match:
            editions.append(template.format(**match.groupdict()))
    if family is None:
        family = re.sub(r"\s+for (?:x64|ARM64|32-bit|64-bit)[- ]\S+(?: Systems)?$", "", name)
    return ProductName(family, version, " ".join(editions) or None, arch)


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class MsrcProduct:
    """One entry of the product tree."""

    product_id: str
    name: str
    family: str
    version: str | None
    edition: str | None
    arch: str | None
    branch: str | None  # the tree's "Product Family" branch: "Windows", "ESU", "SQL Server"


@dataclass(frozen=True, slots=True)
class MsrcFix:
    """A ``Vendor Fix`` remediation: one KB (or other fix) for some products."""

    fix: str  # the Description as given: "5078766", "Release Notes", "" (URL only)
    kb: str | None  # "KB5078766" when the description is a KB number
    supersedes: tuple[str, ...]  # "KB5075906", …
    fixed_build: str | None
    restart: bool | None
    url: str | None
    subtype: str | None  # "Security Update", "Security Hotpatch Update", "Monthly Rollup"
    product_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MsrcScore:
    """A CVSS 3.1 score set for some products."""

    base: float
    vector: str | None
    product_ids: tuple[str, ...]


@dataclass(slots=True)
class MsrcVulnerability:
    """What one document says about one CVE."""

    cve: str
    title: str | None = None
    description: str | None = None
    faq: str | None = None
    workaround: str | None = None  # Workaround and Mitigation remediations, as text
    publicly_disclosed: bool = False
    exploited: bool = False
    exploitability: str | None = None  # "Exploitation More Likely", "Exploitation Detected"
    affected: tuple[str, ...] = ()  # product ids with status "Known Affected"
    severity: dict[str, str] = field(default_factory=dict)  # product id → "Important"
    impact: dict[str, str] = field(default_factory=dict)  # product id → "Elevation of …"
    scores: list[MsrcScore] = field(default_factory=list)
    fixes: list[MsrcFix] = field(default_factory=list)

    def worst_severity(self) -> str | None:
        """The most severe rating over its products (the CVE's headline severity)."""
        known = [s for s in self.severity.values() if s in SEVERITIES]
        return max(known, key=SEVERITIES.index) if known else None


@dataclass(slots=True)
class MsrcDocument:
    """One monthly document: its id (``2026-Mar``), products and vulnerabilities."""

    month: str
    path: str
    released: str | None = None
    products: dict[str, MsrcProduct] = field(default_factory=dict)
    vulnerabilities: list[MsrcVulnerability] = field(default_factory=list)


# ------------------------------------------------------------------------------- parsing


def html_text(value: str | None) -> str | None:
    """The readable text of an MSRC note (HTML fragments, entities already decoded once)."""
    if not value:
        return None
    text = html.unescape(_TAG.sub(" ", value.replace("</p>", "\n\n").replace("<br>", "\n")))
    text = _SPACES.sub(lambda m: "\n\n" if "\n" in m.group() else " ", text).strip()
    return text or None


def _text(element: Element, tag: str) -> str | None:
    child = element.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _ids(element: Element) -> tuple[str, ...]:
    return tuple(dict.fromkeys((e.text or "").strip() for e in element.iter(NS_VULN +
                                                                           "ProductID")
                               if (e.text or "").strip()))


def _exploit_flags(description: str) -> dict[str, str]:
    """``Publicly Disclosed:No;Exploited:Yes;Latest Software Release:…`` as a dict."""
    flags = {}
    for part in description.split(";"):
        key, sep, value = part.partition(":")
        if sep:
            flags[key.strip().lower()] = value.strip()
    return flags


def _vulnerability(element: Element, ordinal: int, path: Path | str) -> MsrcVulnerability:
    """One ``vuln:Vulnerability`` element → MsrcVulnerability; FeedError names it."""
    where = f"vuln:Vulnerability #{ordinal}"
    cve = _text(element, NS_VULN + "CVE")
    if not cve or not _CVE.fullmatch(cve):
        raise FeedError(path, f"{where}: vuln:CVE {cve!r} is missing or not a CVE id")
    cve = cve.upper()
    where = f"{where} ({cve})"
    vuln = MsrcVulnerability(cve=cve, title=_text(element, NS_VULN + "Title"))
    for note in element.iterfind(f"{NS_VULN}Notes/{NS_VULN}Note"):
        kind = note.get("Type")
        if kind == "Description" and vuln.description is None:
            vuln.description = html_text(note.text)
        elif kind == "FAQ":
            faq = html_text(note.text)
            if faq:
                vuln.faq = f"{vuln.faq}\n\n{faq}" if vuln.faq else faq
    affected: list[str] = []
    for status in element.iterfind(f"{NS_VULN}ProductStatuses/{NS_VULN}Status"):
        if status.get("Type") == "Known Affected":
            affected.extend(_ids(status))
    vuln.affected = tuple(dict.fromkeys(affected))
    for threat in element.iterfind(f"{NS_VULN}Threats/{NS_VULN}Threat"):
        kind = threat.get("Type")
        text = _text(threat, NS_VULN + "Description") or ""
        if kind in ("Severity", "3"):
            vuln.severity.update(dict.fromkeys(_ids(threat), text))
        elif kind in ("Impact", "0"):
            vuln.impact.update(dict.fromkeys(_ids(threat), text))
        elif kind in ("Exploit Status", "1"):
            flags = _exploit_flags(text)
            vuln.exploited = vuln.exploited or flags.get("exploited", "").lower() == "yes"
            vuln.publicly_disclosed = (vuln.publicly_disclosed
                                       or flags.get("publicly disclosed", "").lower() == "yes")
            vuln.exploitability = flags.get("latest software release") or vuln.exploitability
    for n, score_set in enumerate(element.iterfind(
            f"{NS_VULN}CVSSScoreSets/{NS_VULN}ScoreSet")):
        base = _text(score_set, NS_VULN + "BaseScore")
        try:
            score = float(base or "")
        except ValueError:
            raise FeedError(path, f"{where}: vuln:ScoreSet[{n}]/vuln:BaseScore {base!r} is "
                                  "not a number") from None
        if not 0.0 <= score <= 10.0:
            raise FeedError(path, f"{where}: vuln:ScoreSet[{n}]/vuln:BaseScore {score} is "
                                  "outside 0-10")
        vuln.scores.append(MsrcScore(score, _text(score_set, NS_VULN + "Vector"),
                                     _ids(score_set)))
    workarounds: list[str] = []
    for n, remediation in enumerate(element.iterfind(
            f"{NS_VULN}Remediations/{NS_VULN}Remediation")):
        kind = remediation.get("Type")
        if kind in ("Workaround", "Mitigation", "0", "1"):
            advice = html_text(_text(remediation, NS_VULN + "Description"))
            if advice:
                workarounds.append(advice)
        elif kind in ("Vendor Fix", "2"):
            vuln.fixes.append(_fix(remediation, f"{where}: vuln:Remediation[{n}]", path))
    vuln.workaround = "\n\n".join(dict.fromkeys(workarounds)) or None
    return vuln


def _fix(element: Element, where: str, path: Path | str) -> MsrcFix:
    """One ``Remediation Type="Vendor Fix"`` → MsrcFix."""
    # Real documents have Vendor Fix rows without a Description (the fix is the URL).
    description = _text(element, NS_VULN + "Description") or ""
    if not _ids(element):
        raise FeedError(path, f"{where}: a Vendor Fix names no vuln:ProductID")
    restart = _text(element, NS_VULN + "RestartRequired")
    supersedes = _text(element, NS_VULN + "Supercedence") or ""
    return MsrcFix(
        fix=description,
        kb=f"KB{description}" if _KB_NUMBER.fullmatch(description) else None,
        supersedes=tuple(dict.fromkeys(f"KB{n}" for n in _KB_NUMBER.findall(supersedes))),
        fixed_build=_text(element, NS_VULN + "FixedBuild"),
        restart=None if restart is None else restart.lower() == "yes",
        url=_text(element, NS_VULN + "URL"),
        subtype=_text(element, NS_VULN + "SubType"),
        product_ids=_ids(element),
    )


def _products(tree: Element, path: Path | str) -> dict[str, MsrcProduct]:
    """Every FullProductName of the product tree, with the branch it sits under."""
    products: dict[str, MsrcProduct] = {}

    def walk(branch: Element, family: str | None) -> None:
        for child in branch:
            if child.tag == NS_PROD + "Branch":
                walk(child, child.get("Name") if child.get("Type") == "Product Family"
                     else family)
            elif child.tag == NS_PROD + "FullProductName":
                product_id = (child.get("ProductID") or "").strip()
                name = " ".join((child.text or "").split())
                if not product_id or not name:
                    raise FeedError(path, f"prod:FullProductName {product_id or name!r}: "
                                          "ProductID or name is missing")
                seen = products.get(product_id)
                if seen is not None and (seen.branch or not family):
                    continue  # listed twice: under its family branch and in a flat list
                norm = normalize_product(name)
                products[product_id] = MsrcProduct(product_id, name, norm.family,
                                                   norm.version, norm.edition, norm.arch,
                                                   family)

    walk(tree, None)
    return products


def parse_cvrf(path: Path, source: IO[bytes] | None = None) -> MsrcDocument:
    """Read one CVRF 1.2 XML document; FeedError names the file and the element.

    Streams with ``iterparse``: each vulnerability is turned into a record and its element
    cleared, so memory stays at one vulnerability's worth plus the records.
    """
    doc = MsrcDocument(month="", path=str(path))
    count = 0
    try:
        stream = source if source is not None else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise FeedError(path, f"cannot be read: {exc.strerror or exc}") from exc
    root: Element | None = None
    try:
        with stream:
            for event, element in DefusedET.iterparse(stream, events=("start", "end"),
                                                      forbid_dtd=True):
                if root is None:
                    root = element
                    if element.tag != NS_CVRF + "cvrfdoc":
                        raise FeedError(path, f"root element is {element.tag!r}, not "
                                              "cvrf:cvrfdoc")
                if event != "end":
                    continue
                tag = element.tag
                if tag == NS_CVRF + "ID" and not doc.month:
                    doc.month = (element.text or "").strip()
                elif tag == NS_CVRF + "CurrentReleaseDate":
                    doc.released = (element.text or "").strip() or None
                elif tag == NS_PROD + "ProductTree":
                    doc.products = _products(element, path)
                    element.clear()
                elif tag == NS_VULN + "Vulnerability":
                    count += 1
                    doc.vulnerabilities.append(_vulnerability(element, count, path))
                    element.clear()  # an empty shell stays: a few bytes each
    except DefusedXmlException as exc:
        raise FeedError(path, f"refused XML ({exc.__class__.__name__}): DTDs and entities "
                              "are not allowed in a CVRF document") from None
    except ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise FeedError(path, f"invalid XML: {exc.msg}", line=line) from None
    if not _MONTH_ID.fullmatch(doc.month):
        raise FeedError(path, f"cvrf:DocumentTracking/cvrf:Identification/cvrf:ID "
                              f"{doc.month!r} is not a month id like 2026-Mar")
    if not doc.products:
        raise FeedError(path, "prod:ProductTree is missing or empty")
    return doc
