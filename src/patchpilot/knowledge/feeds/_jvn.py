"""JVN iPedia / MyJVN XML: VULDEF 3.2 detail documents, JVNDB RSS 1.0 overviews and the
注意警戒 alert list (``getAlertList``), parsed into :class:`JvnVuln` and :class:`JvnAlert`.

Formats (https://jvndb.jvn.jp/apis/myjvn/ and https://jvndb.jvn.jp/schema/):

* ``VULDEF-Document`` (vuldef_3.2.xsd): ``getVulnDetailInfo`` answers and the yearly
  ``jvndb_detail_YYYY.xml`` data feed -- one ``Vulinfo`` per JVNDB entry with its Japanese
  title, overview, impact, solution, affected items (CPE 2.2 + free-text version phrases),
  CVSS v2/v3 and related ids (CVEs).
* JVNDB RSS (jvnrss_3.2.xsd, ``rdf:RDF`` with ``sec:`` items): ``getVulnOverviewList``
  answers and ``jvndb_YYYY.rdf`` -- title, overview, CVEs, CPEs and CVSS, no versions.
* ``getAlertList`` (Atom + ``sec:items``): IPA's alerts, kept as :class:`JvnAlert`.

Every file is read with defusedxml's ``iterparse`` with ``forbid_dtd``: a DTD, and so any
entity declaration ("billion laughs", external entities), is refused before anything is
expanded, and the error names the file.  Each ``Vulinfo``/``item``/``entry`` element is
cleared once read, so a yearly feed never sits in memory as one tree.

Kept apart from the feed module (as ``_cvrf`` is for MSRC) so that ``interface`` can name
the record types without an import cycle.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from patchpilot.errors import FeedError
from patchpilot.knowledge.cvss import metric_from_vector
from patchpilot.models import AffectedRange, CvssMetric, Reference

NS_VULDEF = "{http://jvn.jp/vuldef/}"
NS_RSS = "{http://purl.org/rss/1.0/}"
NS_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
NS_SEC = "{http://jvn.jp/rss/mod_sec/3.0/}"
NS_DC = "{http://purl.org/dc/elements/1.1/}"
NS_DCTERMS = "{http://purl.org/dc/terms/}"
NS_ATOM = "{http://www.w3.org/2005/Atom}"
NS_STATUS = "{http://jvndb.jvn.jp/myjvn/Status}"

CVSS_SOURCE = "jvndb.jvn.jp"  # who published the metric (CvssMetric.source)
_CVE = re.compile(r"CVE-\d{4}-\d{4,}")
_JVNDB = re.compile(r"JVNDB-\d{4}-\d{6}")
_TAG = re.compile(r"<[^>]{0,200}>")
_CUT_TAG = re.compile(r"</?[A-Za-z]{1,10}\s*$")


@dataclass(frozen=True, slots=True)
class JvnAffectedItem:
    """One ``AffectedItem``: the vendor and product as JVN names them, the CPE 2.2 URI and
    the version phrases verbatim (「ファームウェアバージョン 1.05およびそれ以前」)."""

    vendor: str
    product: str
    cpe: str | None
    phrases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class JvnVuln:
    """One JVNDB entry (a detail document's ``Vulinfo`` or an RSS ``item``)."""

    id: str  # JVNDB-2025-000002
    title: str  # Japanese
    overview: str | None = None
    impact: str | None = None
    solution: str | None = None
    cves: tuple[str, ...] = ()
    cvss: tuple[CvssMetric, ...] = ()
    affected: tuple[JvnAffectedItem, ...] = ()
    references: tuple[Reference, ...] = ()
    cwes: tuple[str, ...] = ()
    published: str | None = None
    modified: str | None = None
    detail: bool = True  # False: an RSS overview (no version phrases, no impact/solution)

    @property
    def url(self) -> str:
        """The entry's page on jvndb.jvn.jp."""
        year = self.id.split("-")[1] if self.id.count("-") >= 2 else ""
        return f"https://jvndb.jvn.jp/ja/contents/{year}/{self.id}.html"


@dataclass(frozen=True, slots=True)
class JvnAlert:
    """One 注意警戒情報 entry of ``getAlertList``."""

    id: str  # MYJVN-ALT-2025-0011
    title: str
    summary: str | None = None
    link: str | None = None
    published: str | None = None
    updated: str | None = None
    cves: tuple[str, ...] = ()
    cpes: tuple[str, ...] = ()


JvnRecord = JvnVuln | JvnAlert


# --------------------------------------------------------------------------- version phrases

# The CVEs an affected item's phrase is limited to: 「Ver.1.4.2より前のバージョン（CVE-2025-0354、
# CVE-2025-0355）」.  After NFKC the full-width parentheses are ASCII ones.
_SCOPE = re.compile(r"\(\s*(CVE-\d{4}-\d{4,}(?:\s*[、,]\s*CVE-\d{4}-\d{4,})*)\s*\)\s*$")
# A version with the words JVN writes before it: ファームウェアバージョン, バージョン, Ver., v.
_V = (r"(?:ファームウェア\s*)?(?:バージョン|version|ver\.?|v\.?)?\s*"
      r"(\d[0-9A-Za-z.\-_+]*)")
_TAIL = r"\s*(?:の?バージョン|version)?"
_FORMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), form) for pattern, form in (
        (rf"{_V}\s*(?:および|及び|並びに)?\s*それ以前{_TAIL}", "<="),
        (rf"{_V}\s*以前{_TAIL}", "<="),
        (rf"{_V}\s*(?:より前|未満){_TAIL}", "<"),
        (rf"{_V}\s*以降{_TAIL}", ">="),
        (rf"{_V}\s*(?:から|~|-)\s*{_V}\s*(?:まで)?{_TAIL}", "range"),
        (rf"{_V}{_TAIL}", "="),
    ))


@dataclass(frozen=True, slots=True)
class PhraseReading:
    """What one version phrase says: a range, or one listed version; or nothing readable
    (``readable`` False: the product's versions are *undetermined*, never guessed)."""

    phrase: str
    scope: tuple[str, ...]  # the CVEs it is limited to (empty: every CVE of the entry)
    ranges: tuple[AffectedRange, ...] = ()
    versions: tuple[str, ...] = ()
    readable: bool = True


def read_phrase(phrase: str) -> PhraseReading:
    """Read one JVN ``VersionNumber`` phrase.

    ======================================  ============================================
    「1.05およびそれ以前」「1.05 以前」           ``<= 1.05`` (last_affected)
    「Ver.1.5.3より前のバージョン」「… 未満」      ``< 1.5.3`` (fixed)
    「2.0 以降」                               ``>= 2.0`` (introduced, no fix known)
    「1.0.0 から 1.2.3 まで」                   ``>= 1.0.0, <= 1.2.3``
    「7.7」                                   the version 7.7 (listed)
    anything else (「v6 R4 およびそれ以前」,      unreadable: undetermined
    「for Windows 5.8 (Build 1575) 未満」)
    ======================================  ============================================

    A trailing 「（CVE-…、CVE-…）」 limits the item to those CVEs.  Full-width digits and
    punctuation are read as their ASCII forms (NFKC).
    """
    text = unicodedata.normalize("NFKC", phrase).strip()
    scope: tuple[str, ...] = ()
    m = _SCOPE.search(text)
    if m:
        scope = tuple(dict.fromkeys(_CVE.findall(m.group(1))))
        text = text[:m.start()].strip()
    for pattern, form in _FORMS:
        found = pattern.fullmatch(text)
        if found is None:
            continue
        first = found.group(1).rstrip(".")
        if form == "<=":
            return PhraseReading(phrase, scope, (AffectedRange(last_affected=first),))
        if form == "<":
            return PhraseReading(phrase, scope, (AffectedRange(fixed=first),))
        if form == ">=":
            return PhraseReading(phrase, scope, (AffectedRange(introduced=first),))
        if form == "range":
            last = found.group(2).rstrip(".")
            return PhraseReading(phrase, scope,
                                 (AffectedRange(introduced=first, last_affected=last),))
        return PhraseReading(phrase, scope, versions=(first,))
    return PhraseReading(phrase, scope, readable=False)


# --------------------------------------------------------------------------- XML helpers


def plain(text: str | None) -> str | None:
    """JVN's text fields carry escaped HTML (``&lt;ul&gt;&lt;li&gt;``): list items become
    lines starting with ・, other tags go, whitespace runs are squeezed per line."""
    if text is None:
        return None
    text = unescape(text)
    text = re.sub(r"<li[^>]{0,50}>", "\n・", text, flags=re.IGNORECASE)
    text = re.sub(r"<br\s*/?>|</(?:ul|ol|p)>", "\n", text, flags=re.IGNORECASE)
    text = _TAG.sub("", text)
    # JVN's markup is not always closed ("…（CVE-2025-0356）&lt;/li&lt;/ul&gt;"): a tag
    # cut off at the end of a line goes too.
    lines = (" ".join(_CUT_TAG.sub("", line).split()) for line in text.splitlines())
    out = "\n".join(line for line in lines if line)
    return out or None


def _text(element: Element | None, path: str) -> str | None:
    if element is None:
        return None
    found = element.find(path)
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    return value or None


def _check_status(path: Path, element: Element) -> None:
    """A MyJVN API error answer (``retCd`` 1) is a FeedError with its own message."""
    if element.get("retCd", "0") not in ("0", ""):
        raise FeedError(path, f"MyJVN API error {element.get('errCd') or '?'}: "
                              f"{element.get('errMsg') or 'no message'}")


def _metrics(vectors: list[str]) -> tuple[CvssMetric, ...]:
    out: dict[str, CvssMetric] = {}
    for vector in vectors:
        metric = metric_from_vector(vector, source=CVSS_SOURCE)
        if metric is not None:
            out.setdefault(metric.vector, metric)
    return tuple(out.values())


def _vulinfo(path: Path, element: Element) -> JvnVuln:
    v = NS_VULDEF
    vuln_id = _text(element, f"{v}VulinfoID")
    if not vuln_id or not _JVNDB.fullmatch(vuln_id):
        raise FeedError(path, f"Vulinfo/VulinfoID {vuln_id!r} is not a JVNDB id")
    data = element.find(f"{v}VulinfoData")
    if data is None:
        raise FeedError(path, f"{vuln_id}: no VulinfoData")
    title = _text(data, f"{v}Title")
    if not title:
        raise FeedError(path, f"{vuln_id}: VulinfoData/Title is missing")
    items = []
    for item in data.iterfind(f"{v}Affected/{v}AffectedItem"):
        phrases = tuple(p.text.strip() for p in item.iterfind(f"{v}VersionNumber")
                        if p.text and p.text.strip())
        items.append(JvnAffectedItem(vendor=_text(item, f"{v}Name") or "",
                                     product=_text(item, f"{v}ProductName") or "",
                                     cpe=_text(item, f"{v}Cpe"), phrases=phrases))
    vectors = [(c.get("version") or "", _text(c, f"{v}Vector") or "")
               for c in data.iterfind(f"{v}Impact/{v}Cvss")]
    # v3 before v2: the order CvssMetric lists are kept in (preferred_metric decides).
    vectors.sort(key=lambda pair: not pair[0].startswith("3"))
    cves: dict[str, None] = {}
    cwes: dict[str, None] = {}
    refs: dict[str, Reference] = {}
    for rel in data.iterfind(f"{v}Related/{v}RelatedItem"):
        rel_id = _text(rel, f"{v}VulinfoID") or ""
        url = _text(rel, f"{v}URL")
        kind = rel.get("type") or "web"
        if kind == "cwe":
            if re.fullmatch(r"CWE-\d+", rel_id):
                cwes[rel_id] = None
            continue
        if _CVE.fullmatch(rel_id):
            cves[rel_id] = None
        if url:
            refs.setdefault(url, Reference(url, "advisory" if kind == "advisory" else "web"))
    impact = [plain(d.text) for d in data.iterfind(f"{v}Impact/{v}ImpactItem/{v}Description")]
    solution = [plain(d.text) for d in
                data.iterfind(f"{v}Solution/{v}SolutionItem/{v}Description")]
    return JvnVuln(
        id=vuln_id, title=" ".join(title.split()),
        overview=plain(_text(data, f"{v}VulinfoDescription/{v}Overview")),
        impact="\n".join(t for t in impact if t) or None,
        solution="\n".join(t for t in solution if t) or None,
        cves=tuple(cves), cvss=_metrics([vec for _, vec in vectors]),
        affected=tuple(items), references=tuple(refs.values()), cwes=tuple(cwes),
        published=_text(data, f"{v}DateFirstPublished"),
        modified=_text(data, f"{v}DateLastUpdated"), detail=True)


def _rss_item(path: Path, element: Element) -> JvnVuln:
    vuln_id = _text(element, f"{NS_SEC}identifier")
    if not vuln_id or not _JVNDB.fullmatch(vuln_id):
        raise FeedError(path, f"item/sec:identifier {vuln_id!r} is not a JVNDB id")
    title = _text(element, f"{NS_RSS}title")
    if not title:
        raise FeedError(path, f"{vuln_id}: item/title is missing")
    cves: dict[str, None] = {}
    cwes: dict[str, None] = {}
    refs: dict[str, Reference] = {}
    for ref in element.iterfind(f"{NS_SEC}references"):
        ref_id = (ref.get("id") or "").strip()
        url = (ref.text or "").strip()
        if re.fullmatch(r"CWE-\d+", ref_id):
            cwes[ref_id] = None
            continue
        if ref.get("source") == "CVE" and _CVE.fullmatch(ref_id):
            cves[ref_id] = None
        if url:
            refs.setdefault(url, Reference(url, "advisory"))
    items = tuple(JvnAffectedItem(vendor=c.get("vendor") or "", product=c.get("product") or "",
                                  cpe=(c.text or "").strip() or None, phrases=())
                  for c in element.iterfind(f"{NS_SEC}cpe"))
    vectors = [(c.get("version") or "", c.get("vector") or "")
               for c in element.iterfind(f"{NS_SEC}cvss")]
    vectors.sort(key=lambda pair: not pair[0].startswith("3"))
    return JvnVuln(
        id=vuln_id, title=" ".join(title.split()),
        overview=plain(_text(element, f"{NS_RSS}description")),
        cves=tuple(cves), cvss=_metrics([vec for _, vec in vectors]), affected=items,
        references=tuple(refs.values()), cwes=tuple(cwes),
        published=_text(element, f"{NS_DCTERMS}issued"),
        modified=_text(element, f"{NS_DCTERMS}modified"), detail=False)


def _alert(path: Path, element: Element) -> JvnAlert:
    alert_id = _text(element, f"{NS_ATOM}id")
    title = _text(element, f"{NS_ATOM}title")
    if not alert_id or not title:
        raise FeedError(path, f"entry {alert_id or '?'}: id and title are required")
    link = element.find(f"{NS_ATOM}link")
    words = [title, _text(element, f"{NS_ATOM}summary") or ""]
    cpes: dict[str, None] = {}
    for item in element.iterfind(f"{NS_SEC}items/{NS_SEC}item"):
        words += [_text(item, f"{NS_SEC}title") or "", _text(item, f"{NS_SEC}summary") or "",
                  _text(item, f"{NS_SEC}identifier") or ""]
        for cpe in item.iterfind(f"{NS_SEC}cpe"):
            if cpe.text and cpe.text.strip():
                cpes[cpe.text.strip()] = None
    return JvnAlert(
        id=alert_id, title=" ".join(title.split()),
        summary=_text(element, f"{NS_ATOM}summary"),
        link=link.get("href") if link is not None else None,
        published=_text(element, f"{NS_ATOM}published"),
        updated=_text(element, f"{NS_ATOM}updated"),
        cves=tuple(dict.fromkeys(_CVE.findall(" ".join(words)))), cpes=tuple(cpes))


# Root element -> the element each record is; record element -> its reader.
_ROOTS = {
    NS_VULDEF + "VULDEF-Document": NS_VULDEF + "Vulinfo",
    NS_RDF + "RDF": NS_RSS + "item",
    NS_ATOM + "feed": NS_ATOM + "entry",
}
_READERS: dict[str, Callable[[Path, Element], JvnRecord]] = {
    NS_VULDEF + "Vulinfo": _vulinfo,
    NS_RSS + "item": _rss_item,
    NS_ATOM + "entry": _alert,
}


def parse_jvn(path: Path) -> Iterator[JvnRecord]:
    """Every record of one JVN XML file; FeedError names the file (and the line for
    invalid XML).  A DTD or entity declaration is refused before anything is expanded.

    Only "end" events are asked for (defusedxml's parser calls back into Python for each
    event, and a yearly feed has some 70 elements an entry): records are read by their
    element's name as they close, and the root -- the last element to close -- must be
    the one those records belong in, else the file is refused (``db update`` reads a
    source whole before writing anything, so nothing of a refused file is stored).
    """
    try:
        with open(path, "rb") as stream:
            element: Element | None = None
            kinds: set[str] = set()
            readers = _READERS
            status = NS_STATUS + "Status"
            for _, element in DefusedET.iterparse(stream, events=("end",), forbid_dtd=True):
                tag = element.tag
                reader = readers.get(tag)
                if reader is not None:
                    kinds.add(tag)
                    yield reader(path, element)
                    element.clear()
                elif tag == status:
                    _check_status(path, element)
            root = element.tag if element is not None else None
            if root not in _ROOTS:
                raise FeedError(path, f"root element is {root!r}, not a VULDEF-Document, "
                                      "JVNDB RSS or MyJVN alert feed")
            stray = kinds - {_ROOTS[root]}
            if stray:
                raise FeedError(path, f"{sorted(stray)[0]!r} elements in a {root!r} document")
    except DefusedXmlException as exc:
        raise FeedError(path, f"refused XML ({exc.__class__.__name__}): DTDs and entities "
                              "are not allowed in a JVN document") from None
    except ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise FeedError(path, f"invalid XML: {exc.msg}", line=line) from None
    except OSError as exc:
        raise FeedError(path, f"cannot be read: {exc.strerror or exc}") from None
