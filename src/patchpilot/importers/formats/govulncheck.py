"""``govulncheck -json``: the stream of JSON messages (``config``, ``SBOM``, ``progress``,
``osv``, ``finding``), as govulncheck prints it (objects one after another) or gathered
into one JSON list.  (``govulncheck -format sarif`` is SARIF, read by the SARIF reader.)

A ``finding`` says how far its vulnerability reaches into the code: its trace's first
frame names the module only (the module is required at a vulnerable version), a package
(it is imported) or a function (a vulnerable symbol is called; the rest of the trace is
the call stack).  govulncheck emits one finding per level reached, and per called symbol.
The items are one per vulnerability and module version, merged over those findings:

* every vulnerability with a finding is an item (an ``osv`` message without one is only
  the database's record of a module in the build, not a finding);
* in a symbol-level scan (the default) the vulnerabilities whose code is called are
  findings, and the ones only required or imported are informational -- govulncheck's
  own verdict ("Informational: … no call stacks leading to the use of these
  vulnerabilities"); in a ``-scan module`` / ``-scan package`` run every item is a finding,
  since that is as far as the scan looks;
* the called symbols and where the code calls them are the item's evidence.

The target is the main module the ``SBOM`` message names (govulncheck 1.1+), else empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import ijson

from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    cve_ids,
    text_or_none,
)
from patchpilot.knowledge.cvss import metric_from_vector

# The first message is the scan's config (protocol v1.0.0 and later).
_CONFIG = re.compile(r'\A\s*\[?\s*\{\s*"config"\s*:\s*\{[^}]*"(?:protocol_version|scanner_name)"')


def detect(sniff: Sniff) -> int:
    return 100 if _CONFIG.match(sniff.text) else 0


@dataclass
class _Reach:
    """What the findings of one vulnerability in one module version say."""

    fixed: str | None = None
    called: bool = False
    calls: list[str] = field(default_factory=list)


def _frame_name(frame: dict[str, Any]) -> str:
    parts = [frame.get("package") or frame.get("module") or ""]
    if frame.get("receiver"):
        parts.append(str(frame["receiver"]).lstrip("*"))  # as govulncheck prints it
    parts.append(str(frame.get("function")))
    return ".".join(p for p in parts if p)


def _call(trace: list[dict[str, Any]]) -> str:
    """``golang.org/x/text/language.Parse via vuln.tutorial.main (main.go:12:43)``."""
    text = _frame_name(trace[0])
    if len(trace) > 1:
        entry = trace[-1]
        text += f" via {_frame_name(entry)}"
        position = entry.get("position") or {}
        if position.get("filename"):
            text += f" ({position['filename']}:{position.get('line')}:{position.get('column')})"
    return text


def _messages(stream: IO[bytes], source: str) -> Iterator[Any]:
    head = stream.read(64)
    stream.seek(0)
    if not head.strip():
        raise ReportError(source, "the file is empty")
    try:
        if head.lstrip().startswith(b"["):
            yield from ijson.items(stream, "item", use_float=True)
        else:
            yield from ijson.items(stream, "", use_float=True, multiple_values=True)
    except (ijson.common.IncompleteJSONError, ijson.common.JSONError) as exc:
        raise ReportError(source, f"malformed JSON: {exc}") from None


def _severity(osv: dict[str, Any]) -> tuple[str, str | None, float | None]:
    severity = osv.get("severity")
    if isinstance(severity, str):  # some databases put a word here
        return band(severity), None, None
    for entry in severity if isinstance(severity, list) else ():
        metric = metric_from_vector(str((entry or {}).get("score") or ""))
        if metric is not None:
            return metric.severity, metric.vector, metric.score
    return "Unknown", None, None


def _item(target: Target, osv: dict[str, Any], module: str, version: str | None,
          reach: _Reach, symbol_scan: bool) -> ReportItem:
    aliases = [str(a) for a in osv.get("aliases") or ()]
    severity, vector, score = _severity(osv)
    references = [str(r.get("url")) for r in osv.get("references") or () if r.get("url")]
    page = (osv.get("database_specific") or {}).get("url")
    return ReportItem(
        target=target,
        scanner_id=str(osv.get("id")),
        cves=cve_ids(aliases),
        aliases=tuple(dict.fromkeys(a for a in aliases if not a.upper().startswith("CVE-"))),
        title=text_or_none(osv.get("summary")),
        description=text_or_none(osv.get("details")),
        ecosystem="Go",
        package=module,
        installed_version=version,
        fixed_version=reach.fixed,
        severity=severity,
        cvss_vector=vector,
        cvss_score=score,
        references=tuple(dict.fromkeys([*([page] if page else []), *references])),
        informational=symbol_scan and not reach.called,
        output="\n".join(dict.fromkeys(reach.calls)) or None,
    )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    config: dict[str, Any] | None = None
    main_module: str | None = None
    osvs: dict[str, dict[str, Any]] = {}
    reaches: dict[tuple[str, str, str | None], _Reach] = {}
    for message in _messages(stream, source):
        if not isinstance(message, dict):
            raise ReportError(source, "not a govulncheck message (an object)")
        if "config" in message:
            config = message["config"] or {}
        elif "SBOM" in message:
            for module in (message["SBOM"] or {}).get("modules") or ():
                if not module.get("version") and module.get("path"):
                    main_module = str(module["path"])  # the main module has no version
                    break
        elif "osv" in message:
            osv = message["osv"] or {}
            osvs[str(osv.get("id"))] = osv
        elif "finding" in message:
            finding = message["finding"] or {}
            trace = finding.get("trace") or []
            if not trace or not trace[0].get("module"):
                raise ReportError(source, f"finding {finding.get('osv')} has no trace")
            first = trace[0]
            key = (str(finding.get("osv")), str(first["module"]), first.get("version"))
            reach = reaches.setdefault(key, _Reach())
            reach.fixed = reach.fixed or text_or_none(finding.get("fixed_version"))
            if first.get("function"):
                reach.called = True
                reach.calls.append(_call(trace))
    if config is None:
        raise ReportError(source, "not a govulncheck -json report: no config message")
    symbol_scan = (config.get("scan_level") or "symbol") == "symbol"
    target = Target(artifact=main_module)
    yield target
    for (osv_id, module, version), reach in reaches.items():
        osv = osvs.get(osv_id)
        if osv is None:
            raise ReportError(source, f"finding of {osv_id} without its osv message")
        yield _item(target, osv, module, version, reach, symbol_scan)


FORMAT = Format(
    name="govulncheck", producer="govulncheck", title="govulncheck -json",
    detect=detect, parse=parse, extensions=(".json",),
    notes="govulncheck 1.0+ (protocol v1.0.0): every vulnerability with a finding, once per "
          "module version; in a symbol scan "
          "those whose vulnerable code is not called are informational (govulncheck's own "
          "verdict), and OSV records without a finding are not read.")
