"""The generic findings format: for a specialist's security assessment (セキュリティ診断,
a penetration test's findings list) or any tool PatchPilot has no reader for.

One finding a row (CSV) or an object (JSON).  Templates to start from:
``importers/templates/generic-findings.csv`` and ``generic-findings.json``.

========================= ======== ===================================================
column / key              required meaning
========================= ======== ===================================================
``asset``                 yes      host name, FQDN, IP address, URL (its host is taken)
                                   or image/repository (``registry/app:1.2``)
``vulnerability_id``      yes      a CVE, or the tester's own id (``WEB-001``)
``severity``              one of   Critical / High / Medium / Low / None (Japanese
``cvss_vector``           the two  words too: 緊急 高 中 低 情報); else the band of the
                                   CVSS vector (``CVSS:3.1/…``, ``CVSS:4.0/…``, bare v2)
``title``                          a short name
``description``                    what was found
``package``                        the affected software, for a package finding
``installed_version``
``fixed_version``                  the first version without the problem
``ecosystem``                      the package's ecosystem (``npm``, ``Debian:12``…)
``port``                           a number, or ``443/tcp``
``protocol``                       ``tcp`` / ``udp``
``exploit_available``              true / false (yes/no, 1/0, あり/なし)
``solution``                       the fix
``workaround``                     what to do until the fix is in
``references``                     URLs separated by spaces or new lines (JSON: a list too)
``cwe``                            ``CWE-79`` (several: spaces or commas)
========================= ======== ===================================================

Column names are matched without regard to case, spaces, hyphens or underscores, and
have Japanese aliases -- :data:`ALIASES`: 資産/ホスト/ホスト名/対象, 脆弱性ID,
タイトル/脆弱性名, 説明/詳細, パッケージ, バージョン, 修正バージョン, ポート,
プロトコル, 深刻度/重要度/危険度/リスク, CVSSベクター, 攻撃コード/エクスプロイト,
対策, 回避策, 参考/参考URL (full-width letters are read as half-width).  Other columns
are ignored.  A CSV is recognised by its
header (``asset``, ``vulnerability_id`` and ``severity`` or ``cvss_vector``, by any
name); a JSON document by its top-level key ``"patchpilot_findings"`` (the format's
version, 1): ``{"patchpilot_findings": 1, "findings": [{…}, …]}``.

A row without one of the required values is refused, naming its line and the column:
a tester's list is fixed and imported again rather than imported in part.  A severity
``None`` (情報) finding is informational.  A bare-number id is prefixed ``generic:``.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import IO, Any
from urllib.parse import urlsplit

from patchpilot.importers.model import (
    SNIFF_BYTES,
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    csv_rows,
    cve_ids,
    cwe_ids,
    ecosystem_for,
    read_json,
    text_or_none,
)
from patchpilot.knowledge.cvss import metric_from_vector

VERSION = 1

COLUMNS = ("asset", "vulnerability_id", "title", "description", "package",
           "installed_version", "fixed_version", "ecosystem", "port", "protocol", "severity",
           "cvss_vector", "exploit_available", "solution", "workaround", "references", "cwe")

# Other names of each column (compared after _normal: case, spaces, hyphens and
# underscores ignored).  The required columns have no plain English alias ("host",
# "CVE", "risk"): those are other scanners' CSV headers, which this format must not claim.
ALIASES: dict[str, tuple[str, ...]] = {
    "asset": ("資産", "資産名", "ホスト", "ホスト名", "対象", "対象ホスト", "診断対象",
              "アセット"),
    "vulnerability_id": ("vuln_id", "脆弱性id", "脆弱性番号", "管理番号", "指摘番号",
                         "識別子"),
    "title": ("タイトル", "脆弱性名", "件名", "指摘事項"),
    "description": ("説明", "詳細", "概要", "内容"),
    "package": ("パッケージ", "パッケージ名", "ソフトウェア", "製品"),
    "installed_version": ("version", "バージョン", "導入バージョン", "現行バージョン",
                          "検出バージョン"),
    "fixed_version": ("fix_version", "修正バージョン", "修正済みバージョン",
                      "対策バージョン"),
    "ecosystem": ("エコシステム",),
    "port": ("ポート", "ポート番号"),
    "protocol": ("プロトコル",),
    "severity": ("深刻度", "重要度", "危険度", "リスク", "リスクレベル"),
    "cvss_vector": ("cvssベクター", "cvssベクトル"),
    "exploit_available": ("exploit", "攻撃コード", "攻撃コードの有無", "エクスプロイト",
                          "悪用可能"),
    "solution": ("remediation", "recommendation", "対策", "対策方法", "推奨対策",
                 "修正方法", "対応策"),
    "workaround": ("mitigation", "回避策", "暫定対策", "緩和策"),
    "references": ("reference", "参考", "参考情報", "参考url", "参照"),
    "cwe": ("cwe_id",),
}

_SEVERITY_WORDS = {
    "緊急": "Critical", "重大": "Critical", "高": "High", "重要": "High", "危険": "High",
    "中": "Medium", "警告": "Medium", "低": "Low", "注意": "Low", "情報": "None",
    "なし": "None",
}
_TRUE = frozenset({"true", "yes", "y", "1", "あり", "有", "はい"})
_FALSE = frozenset({"false", "no", "n", "0", "なし", "無", "いいえ"})


def _normal(name: str) -> str:
    # NFKC folds full-width letters (ＣＶＥ) and spaces a Japanese spreadsheet may carry.
    return re.sub(r"[\s\-_]+", "", unicodedata.normalize("NFKC", name).lower())


_CANONICAL: dict[str, str] = {}
for _column in COLUMNS:
    for _name in (_column, *ALIASES.get(_column, ())):
        _CANONICAL[_normal(_name)] = _column


def canonical(name: str) -> str | None:
    """The column a header cell names (``"深刻度"`` -> ``severity``), or None."""
    return _CANONICAL.get(_normal(name))


def _required_present(names: Iterable[str]) -> bool:
    columns = {canonical(n) for n in names}
    return {"asset", "vulnerability_id"} <= columns and bool(
        {"severity", "cvss_vector"} & columns)


def detect(sniff: Sniff) -> int:
    # Below a specific reader's 100: the generic columns are plain words other CSVs use.
    return 90 if sniff.csv_header and _required_present(sniff.csv_header) else 0


def detect_json(sniff: Sniff) -> int:
    return 100 if "patchpilot_findings" in sniff.json_keys else 0


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def target_of(asset: str) -> Target:
    """The target an ``asset`` cell names: an IP, a host name or FQDN (a URL's host), or
    else an image / repository (anything with ``/``, ``:`` or ``@`` in it)."""
    name = asset.strip()
    if "://" in name:
        name = urlsplit(name).hostname or name
    if _is_ip(name):
        return Target(ip=name)
    if any(c in name for c in "/:@"):
        return Target(artifact=name)
    host = name.lower().rstrip(".")
    if "." in host:
        return Target(hostname=host.split(".")[0], fqdn=host)
    return Target(hostname=host)


class _Row:
    """One row's cells by column, with the place it came from for error messages."""

    def __init__(self, cells: dict[str, Any], source: str, line: int | None,
                 where: str) -> None:
        self.cells, self.source, self.line, self.where = cells, source, line, where

    def refuse(self, detail: str) -> ReportError:
        return ReportError(self.source, f"{self.where}{detail}", line=self.line)

    def text(self, column: str) -> str | None:
        value = self.cells.get(column)
        if isinstance(value, list):
            value = "\n".join(str(v) for v in value)
        return text_or_none(value)

    def required(self, column: str) -> str:
        value = self.text(column)
        if value is None:
            raise self.refuse(f"the required column '{column}' is empty")
        return value


def _severity(row: _Row) -> tuple[str, str | None, float | None]:
    vector = row.text("cvss_vector")
    metric = metric_from_vector(vector) if vector else None
    if vector and metric is None:
        raise row.refuse(f"column 'cvss_vector': {vector!r} is not a CVSS vector")
    word = row.text("severity")
    if word is None:
        if metric is None:
            raise row.refuse("the required column 'severity' (or 'cvss_vector') is empty")
        return metric.severity, metric.vector, metric.score
    severity = _SEVERITY_WORDS.get(unicodedata.normalize("NFKC", word), band(word))
    if severity == "Unknown":
        raise row.refuse(f"column 'severity': {word!r} is not one of Critical, High, "
                         "Medium, Low, None")
    return severity, metric.vector if metric else None, metric.score if metric else None


def _port(row: _Row) -> tuple[int | None, str | None]:
    text = row.text("port")
    protocol = row.text("protocol")
    if text is None:
        return None, protocol.lower() if protocol else None
    number, _, suffix = text.partition("/")
    if not number.strip().isdigit() or not 0 <= int(number) <= 65535:
        raise row.refuse(f"column 'port': {text!r} is not a port number")
    protocol = protocol or text_or_none(suffix)
    return int(number), protocol.lower() if protocol else None


def _exploit(row: _Row) -> bool | None:
    value = row.cells.get("exploit_available")
    if isinstance(value, bool):
        return value
    text = row.text("exploit_available")
    if text is None:
        return None
    word = unicodedata.normalize("NFKC", text).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise row.refuse(f"column 'exploit_available': {text!r} is not true or false")


def _item(row: _Row, targets: dict[Target, None]) -> Iterator[ReportItem | Target]:
    asset = row.required("asset")
    vulnerability = row.required("vulnerability_id")
    severity, vector, score = _severity(row)
    port, protocol = _port(row)
    target = target_of(asset)
    if target not in targets:
        targets[target] = None
        yield target
    cves = cve_ids(vulnerability)
    scanner_id = cves[0] if cves else vulnerability
    if scanner_id.isdigit():
        scanner_id = f"generic:{scanner_id}"
    references = row.cells.get("references")
    urls = ([str(r) for r in references] if isinstance(references, list)
            else (row.text("references") or "").split())
    ecosystem = row.text("ecosystem")
    yield ReportItem(
        target=target,
        scanner_id=scanner_id,
        cves=cves,
        title=row.text("title"),
        description=row.text("description"),
        ecosystem=(ecosystem_for(ecosystem) or ecosystem) if ecosystem else None,
        package=row.text("package"),
        installed_version=row.text("installed_version"),
        fixed_version=row.text("fixed_version"),
        port=port,
        protocol=protocol,
        severity=severity,
        cvss_vector=vector,
        cvss_score=score,
        exploit_available=_exploit(row),
        solution=row.text("solution"),
        workaround=row.text("workaround"),
        references=tuple(dict.fromkeys(u for u in urls if u)),
        cwes=cwe_ids(re.split(r"[\s,]+", row.text("cwe") or "")),
        informational=severity == "None",
        output=asset if "://" in asset else None,
        line=row.line,
    )


def _columns(names: Iterable[str], source: str, line: int | None = 1) -> dict[str, str]:
    """Header cell -> column; refuses a header without the required columns or with two
    names of one column."""
    columns: dict[str, str] = {}
    for name in names:
        column = canonical(name)
        if column is None:
            continue
        if column in columns.values():
            first = next(k for k, v in columns.items() if v == column)
            raise ReportError(source, f"the columns {first!r} and {name!r} both mean "
                                      f"'{column}'", line=line)
        columns[name] = column
    for column in ("asset", "vulnerability_id"):
        if column not in columns.values():
            raise ReportError(source, f"the header has no '{column}' column", line=line)
    if not {"severity", "cvss_vector"} & set(columns.values()):
        raise ReportError(source, "the header has neither a 'severity' nor a 'cvss_vector' "
                                  "column", line=line)
    return columns


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    header = Sniff(source, stream.read(SNIFF_BYTES)).csv_header
    stream.seek(0)
    if not header:
        raise ReportError(source, "not a CSV with a header row (asset, vulnerability_id, "
                                  "severity …)", line=1)
    columns = _columns(header, source)
    targets: dict[Target, None] = {}
    for line, raw in csv_rows(stream, source):
        cells = {columns[k.lower()]: v for k, v in raw.items()
                 if k is not None and k.lower() in columns}
        yield from _item(_Row(cells, source, line, ""), targets)


def parse_json(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    data = read_json(stream, source)
    if not isinstance(data, dict) or "patchpilot_findings" not in data:
        raise ReportError(source, "not a generic findings document: no "
                                  "'patchpilot_findings' key")
    if data["patchpilot_findings"] != VERSION:
        raise ReportError(source, f"generic findings version {data['patchpilot_findings']!r}"
                                  f" is not supported (this reader knows {VERSION})")
    findings = data.get("findings")
    if not isinstance(findings, list):
        raise ReportError(source, "no 'findings' list")
    targets: dict[Target, None] = {}
    for number, finding in enumerate(findings, start=1):
        where = f"finding #{number}: "
        if not isinstance(finding, dict):
            raise ReportError(source, f"{where}not an object")
        cells: dict[str, Any] = {}
        for key, value in finding.items():
            column = canonical(key)
            if column in cells:
                raise ReportError(source, f"{where}two keys mean '{column}'")
            if column is not None:
                cells[column] = value
        yield from _item(_Row(cells, source, None, where), targets)


FORMAT = Format(
    name="generic-csv", producer="generic", title="Generic findings CSV (security assessment)",
    detect=detect, parse=parse, extensions=(".csv", ".tsv"),
    notes="Every row: asset, vulnerability_id and severity or cvss_vector required (Japanese "
          "column names accepted); unknown columns are ignored and a row missing a required "
          "value refuses the file, naming its line.")

FORMAT_JSON = Format(
    name="generic-json", producer="generic", title="Generic findings JSON (security assessment)",
    detect=detect_json, parse=parse_json, extensions=(".json",),
    notes="Every object of 'findings' under {\"patchpilot_findings\": 1}, with the CSV's "
          "columns as keys; unknown keys are ignored and a finding missing a required value "
          "refuses the file, naming its number.")
