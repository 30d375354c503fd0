"""A priority's reason as a code with its values, rendered in the reader's language.

``finding_priority.reason`` holds the reason as compact JSON, written by
:mod:`patchpilot.scoring.priority` (one finding) and by the one SQL statement of
:mod:`patchpilot.scoring.apply` (every finding) -- byte for byte the same text::

    {"code":"matrix","priority":3,"severity":"High","tier":3,"asset_known":false,
     "tier_known":false,"adjustments":[{"code":"kev"},{"code":"epss","threshold":0.1}]}
    {"code":"ssvc","priority":1,"outcome":"Immediate","exploitation":"active",
     "exposure":"open","automatable":"yes","human_impact":"very high",
     "asset_known":true,"tier_known":true}

Words are chosen when the reason is shown (:func:`render`), with the reader's gettext:
English reads as before ("P3: High × tier 3 (unknown asset); known exploited"), Japanese
in Japanese.  A reason stored as English text by an older version is read back into its
code (:func:`parse_text`); text that is neither is shown as it was stored.

Every message id is in :data:`MSGIDS`; the catalogues of the pages and of the reports
must translate each (``tests/i18n``), so a new code without a translation fails a test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

Gettext = Callable[[str], str]
Code = dict[str, Any]

MATRIX = "matrix"
SSVC = "ssvc"
# Adjustments of the matrix, in the order they are applied and written.
KEV = "kev"
EPSS = "epss"
INTERNET_FACING = "internet_facing"
COMPENSATING_CONTROL = "compensating_control"
DEVELOPMENT = "development"
ADJUSTMENTS = (KEV, EPSS, INTERNET_FACING, COMPENSATING_CONTROL, DEVELOPMENT)

# The words, as message ids ({name} placeholders are filled after translation).
MATRIX_HEAD = "P{priority}: {severity} × tier {tier}"
UNKNOWN_ASSET = "{reason} (unknown asset)"
UNKNOWN_TIER = "{reason} (tier unknown)"
ADJUSTMENT_WORDS = {KEV: "known exploited", EPSS: "EPSS above {threshold}",
                    INTERNET_FACING: "internet-facing",
                    COMPENSATING_CONTROL: "compensating control",
                    DEVELOPMENT: "development"}
SSVC_HEAD = "P{priority}: {outcome} ({points})"
SSVC_UNKNOWN_ASSET = "{reason}; unknown asset"
SSVC_UNKNOWN_TIER = "{reason}; tier unknown"
OUTCOME_WORDS = {o: f"SSVC {o}" for o in ("Defer", "Scheduled", "Out-of-Cycle", "Immediate")}
# Each decision point with its value is one message, so that "open" (an exposure) never
# shares a translation with "open" (a finding's state).
POINTS = {"exploitation": ("none", "PoC", "active"),
          "exposure": ("small", "controlled", "open"),
          "automatable": ("no", "yes"),
          "human_impact": ("low", "medium", "high", "very high")}
POINT_WORDS = {(point, value): f"{point.replace('_', ' ')} {value}"
               for point, values in POINTS.items() for value in values}
SEVERITY_WORDS = ("Critical", "High", "Medium", "Low", "None", "Unknown")
SEPARATOR = "; "
# A priority set by hand or by a playbook that is more urgent than the computed one
# (``finding_overrides``; the code's ``override`` key, appended by ``scoring.apply``).
OVERRIDE = "{reason}; raised to P{priority} by override"

MSGIDS: tuple[str, ...] = (
    MATRIX_HEAD, UNKNOWN_ASSET, UNKNOWN_TIER, *ADJUSTMENT_WORDS.values(), SSVC_HEAD,
    SSVC_UNKNOWN_ASSET, SSVC_UNKNOWN_TIER, *OUTCOME_WORDS.values(), *POINT_WORDS.values(),
    *SEVERITY_WORDS, OVERRIDE)


def _english(message: str) -> str:
    return message


def matrix_code(priority: int, severity: str, tier: int, asset_known: bool,
                tier_known: bool, adjustments: list[Code]) -> Code:
    """The code of a matrix reason (keys in the order the SQL writes them)."""
    return {"code": MATRIX, "priority": priority, "severity": severity, "tier": tier,
            "asset_known": asset_known, "tier_known": tier_known,
            "adjustments": adjustments}


def ssvc_code(priority: int, outcome: str, points: tuple[str, str, str, str],
              asset_known: bool, tier_known: bool) -> Code:
    """The code of an SSVC reason: the outcome and the four decision points."""
    e, x, a, h = points
    return {"code": SSVC, "priority": priority, "outcome": outcome, "exploitation": e,
            "exposure": x, "automatable": a, "human_impact": h,
            "asset_known": asset_known, "tier_known": tier_known}


def dumps(code: Mapping[str, Any]) -> str:
    """The stored form: compact JSON, keys in order (what the SQL writes)."""
    return orjson.dumps(code).decode()


def _threshold(value: Any) -> str:
    return f"{float(value):g}"


def _unknown(code: Mapping[str, Any], text: str, gettext: Gettext, asset: str,
             tier: str) -> str:
    if not code.get("asset_known", True):
        return gettext(asset).format(reason=text)
    if not code.get("tier_known", True):
        return gettext(tier).format(reason=text)
    return text


def render(code: Mapping[str, Any], gettext: Gettext = _english) -> str:
    """The reason of ``code`` in the language of ``gettext`` (English by default)."""
    text = _render_computed(code, gettext)
    if code.get("override") is not None:
        text = gettext(OVERRIDE).format(reason=text, priority=code["override"])
    return text


def _render_computed(code: Mapping[str, Any], gettext: Gettext) -> str:
    if code.get("code") == SSVC:
        points = ", ".join(gettext(POINT_WORDS[(p, str(code.get(p)))])
                           if (p, code.get(p)) in POINT_WORDS else f"{p} {code.get(p)}"
                           for p in POINTS)
        outcome = str(code.get("outcome"))
        text = gettext(SSVC_HEAD).format(
            priority=code.get("priority"),
            outcome=gettext(OUTCOME_WORDS[outcome]) if outcome in OUTCOME_WORDS
            else f"SSVC {outcome}", points=points)
        return _unknown(code, text, gettext, SSVC_UNKNOWN_ASSET, SSVC_UNKNOWN_TIER)
    severity = str(code.get("severity"))
    text = gettext(MATRIX_HEAD).format(
        priority=code.get("priority"), tier=code.get("tier"),
        severity=gettext(severity) if severity in SEVERITY_WORDS else severity)
    text = _unknown(code, text, gettext, UNKNOWN_ASSET, UNKNOWN_TIER)
    for adjustment in code.get("adjustments") or ():
        kind = adjustment.get("code")
        if kind in ADJUSTMENT_WORDS:
            words = gettext(ADJUSTMENT_WORDS[kind])
            if kind == EPSS:
                words = words.format(threshold=_threshold(adjustment.get("threshold")))
            text += SEPARATOR + words
    return text


# --- reasons stored as English text (before the codes) ---------------------------------

_MATRIX_TEXT = re.compile(
    r"P(?P<priority>[1-4]): (?P<severity>\w+) × tier (?P<tier>[1-4])"
    r"(?P<flag> \(unknown asset\)| \(tier unknown\))?(?P<rest>(?:; .+)?)$")
_SSVC_TEXT = re.compile(
    r"P(?P<priority>[1-4]): SSVC (?P<outcome>[\w-]+) \(exploitation (?P<e>\w+), exposure "
    r"(?P<x>\w+), automatable (?P<a>\w+), human impact (?P<h>[\w ]+)\)"
    r"(?P<flag>; unknown asset|; tier unknown)?$")
_ADJUSTMENT_TEXT = {words: kind for kind, words in ADJUSTMENT_WORDS.items() if kind != EPSS}
_EPSS_TEXT = re.compile(r"EPSS above (?P<threshold>[0-9.e-]+)$")


def parse_text(text: str) -> Code | None:
    """The code of a reason stored as English text by an older version, or None."""
    found = _SSVC_TEXT.match(text)
    if found:
        flag = found["flag"] or ""
        return ssvc_code(int(found["priority"]), found["outcome"],
                         (found["e"], found["x"], found["a"], found["h"]),
                         "unknown asset" not in flag, not flag)
    found = _MATRIX_TEXT.match(text)
    if not found:
        return None
    adjustments: list[Code] = []
    for part in filter(None, found["rest"].split(SEPARATOR)):
        epss = _EPSS_TEXT.match(part)
        if epss:
            adjustments.append({"code": EPSS, "threshold": float(epss["threshold"])})
        elif part in _ADJUSTMENT_TEXT:
            adjustments.append({"code": _ADJUSTMENT_TEXT[part]})
        else:
            return None
    flag = found["flag"] or ""
    return matrix_code(int(found["priority"]), found["severity"], int(found["tier"]),
                       "unknown asset" not in flag, not flag, adjustments)


def loads(stored: str | None) -> Code | None:
    """The code of a stored reason (JSON, or the English text of an older version)."""
    if not stored:
        return None
    if stored.startswith("{"):
        try:
            value = orjson.loads(stored)
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None
    return parse_text(stored)


def reason_text(stored: str | None, gettext: Gettext = _english) -> str:
    """A stored reason for the reader: rendered from its code, else the stored text."""
    code = loads(stored)
    if code is None:
        return stored or ""
    return render(code, gettext)
