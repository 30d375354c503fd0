"""What to patch first: a finding's priority P1..P4, and the reason it was derived.

Two methods, chosen in the configuration (``priority.yaml`` next to this module is the
default shipped with the package):

**matrix** -- severity band × criticality tier gives a base priority, then modifiers move
it, in steps that add up before the result is kept within P1..P4:

* EPSS probability above a threshold: one step up;
* internet-facing asset: one step up;
* an applied workaround or compensating control: one step down;
* a development environment: one step down;
* known exploited (CISA KEV), applied last as a floor: at least P2, and P1 on tier 1-2.

Steps add up (rather than being applied one after the other with a clamp each time) so
the order of the modifiers never matters: a P1 internet-facing development box is
P1 - 1 + 1 = P1, whichever modifier is read first.

The default matrix (P1 = most urgent)::

               tier 1  tier 2  tier 3  tier 4
    Critical     P1      P1      P2      P3
    High         P1      P2      P3      P3
    Medium       P2      P3      P3      P4
    Low          P3      P4      P4      P4
    None         P4      P4      P4      P4
    Unknown      P2      P3      P3      P4

**ssvc** -- the CERT/CC SSVC *deployer* decision table ("Deployer Patch Application
Priority" 1.0.0, https://certcc.github.io/SSVC/howto/deployer_tree/, table
``ssvc/decision_tables/ssvc/deployer_dt.py`` of github.com/CERTCC/SSVC).  Its decision
points are Exploitation (none, PoC, active), System Exposure (small, controlled, open),
Automatable (no, yes) and Human Impact (low, medium, high, very high -- the combination of
Mission and Well-being impact); its outcomes are Defer, Scheduled, Out-of-Cycle and
Immediate, which become P4, P3, P2 and P1.  (Track / Track* / Attend / Act are the outcomes
of CISA's *coordinator* tree, a different table on different inputs.)  The inputs are
derived from what PatchPilot knows:

* Exploitation: KEV → active; else EPSS above ``ssvc.poc_epss_threshold`` → PoC; else none;
* System Exposure: the CMDB exposure (internet-facing → open, internal → controlled,
  isolated → small; unknown → ``ssvc.default_exposure``);
* Automatable: the CVSS band is one of ``ssvc.automatable_severities`` (Critical: in
  practice AV:N/AC:L/PR:N/UI:N, which is what "automatable" asks) -- a proxy;
* Human Impact: the criticality tier (1 → very high … 4 → low).

The whole table (E, EXP, A → outcome for Human Impact low, medium, high, very high; D
Defer, S Scheduled, O Out-of-Cycle, I Immediate)::

    E       EXP         A=no   A=yes
    none    small       DDSS   DSSS
    none    controlled  DSSS   SSSS
    none    open        DSSS   SSSO
    PoC     small       DSSS   SSSS
    PoC     controlled  DSSS   SSSO
    PoC     open        SSSO   SSOO
    active  small       SSOO   SOOO
    active  controlled  SSOO   OOOO
    active  open        SOOI   OOII

The function is pure: the same inputs always give the same priority and reason, and
``scoring.apply`` computes exactly the same in SQL for every open finding at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from patchpilot.errors import InvalidInput
from patchpilot.scoring import reasons

PRIORITIES = (1, 2, 3, 4)
TIERS = (1, 2, 3, 4)
# Severity bands from the least to the most severe ("Unknown" stands outside the order).
BAND_ORDER = ("None", "Low", "Medium", "High", "Critical")
BANDS = (*BAND_ORDER, "Unknown")
METHODS = ("matrix", "ssvc")

EXPLOITATION = ("none", "PoC", "active")
EXPOSURE = ("small", "controlled", "open")
AUTOMATABLE = ("no", "yes")
HUMAN_IMPACT = ("low", "medium", "high", "very high")
SSVC_OUTCOMES = {"D": (4, "Defer"), "S": (3, "Scheduled"), "O": (2, "Out-of-Cycle"),
                 "I": (1, "Immediate")}
# CERT/CC deployer table, transcribed row by row (see the module docstring): for each
# (Exploitation, System Exposure, Automatable) the outcome for Human Impact low, medium,
# high, very high.
_DEPLOYER_ROWS = {
    ("none", "small"): ("DDSS", "DSSS"),
    ("none", "controlled"): ("DSSS", "SSSS"),
    ("none", "open"): ("DSSS", "SSSO"),
    ("PoC", "small"): ("DSSS", "SSSS"),
    ("PoC", "controlled"): ("DSSS", "SSSO"),
    ("PoC", "open"): ("SSSO", "SSOO"),
    ("active", "small"): ("SSOO", "SOOO"),
    ("active", "controlled"): ("SSOO", "OOOO"),
    ("active", "open"): ("SOOI", "OOII"),
}
DEPLOYER_TABLE: dict[tuple[str, str, str, str], str] = {
    (e, x, a, h): SSVC_OUTCOMES[codes[ai][hi]][1]
    for (e, x), codes in _DEPLOYER_ROWS.items()
    for ai, a in enumerate(AUTOMATABLE)
    for hi, h in enumerate(HUMAN_IMPACT)
}
_OUTCOME_PRIORITY = {name: p for p, name in SSVC_OUTCOMES.values()}


class PriorityConfigError(InvalidInput):
    """A priority configuration that cannot be used (names the field and why)."""


@dataclass(frozen=True, slots=True)
class PriorityConfig:
    """How findings are prioritised, and their SLA (see ``priority.yaml``)."""

    method: str = "matrix"
    default_tier: int = 3
    matrix: Mapping[str, tuple[int, int, int, int]] = field(default_factory=dict)
    kev_floor: int = 2
    kev_top_tiers: tuple[int, ...] = (1, 2)
    epss_threshold: float = 0.1
    internet_facing: tuple[str, ...] = ("internet-facing",)
    compensating_control: bool = True
    development: tuple[str, ...] = ("development",)
    ssvc_poc_epss_threshold: float = 0.1
    ssvc_automatable_severities: tuple[str, ...] = ("Critical",)
    ssvc_exposure: Mapping[str, str] = field(default_factory=dict)
    ssvc_default_exposure: str = "controlled"
    ssvc_human_impact: Mapping[int, str] = field(default_factory=dict)
    sla_days: Mapping[int, int] = field(default_factory=dict)
    kev_due_date: bool = True

    def to_mapping(self) -> dict[str, Any]:
        """The configuration as the YAML document it was read from (normalised)."""
        return {
            "method": self.method, "default_tier": self.default_tier,
            "matrix": {band: list(row) for band, row in self.matrix.items()},
            "modifiers": {"kev_floor": self.kev_floor,
                          "kev_top_tiers": list(self.kev_top_tiers),
                          "epss_threshold": self.epss_threshold,
                          "internet_facing": list(self.internet_facing),
                          "compensating_control": self.compensating_control,
                          "development": list(self.development)},
            "ssvc": {"poc_epss_threshold": self.ssvc_poc_epss_threshold,
                     "automatable_severities": list(self.ssvc_automatable_severities),
                     "exposure": dict(self.ssvc_exposure),
                     "default_exposure": self.ssvc_default_exposure,
                     "human_impact": dict(self.ssvc_human_impact)},
            "sla_days": dict(self.sla_days), "kev_due_date": self.kev_due_date,
        }

    def to_yaml(self) -> str:
        """The configuration as YAML text."""
        return yaml.safe_dump(self.to_mapping(), sort_keys=False, allow_unicode=True,
                              default_flow_style=None)


def _int(value: Any, where: str, allowed: tuple[int, ...]) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)  # mapping keys come back as text from JSON
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise PriorityConfigError(f"{where}: {value!r} must be one of "
                                  f"{', '.join(map(str, allowed))}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PriorityConfigError(f"{where}: must be a list of strings")
    return tuple(v.lower() for v in value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise PriorityConfigError(f"{where}: {value!r} must be a number from 0 to 1")
    return float(value)


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, Mapping):
        raise PriorityConfigError(f"{name}: must be a mapping")
    return value


def _check_monotone(matrix: Mapping[str, tuple[int, ...]]) -> None:
    # Raising the severity or the criticality must never lower the priority; a matrix that
    # did would make "patch the important things first" depend on typing errors.
    for band, row in matrix.items():
        for t in range(3):
            if row[t] > row[t + 1]:
                raise PriorityConfigError(
                    f"matrix.{band}: tier {t + 1} (P{row[t]}) must not rank below tier "
                    f"{t + 2} (P{row[t + 1]})")
    for lower, higher in zip(BAND_ORDER, BAND_ORDER[1:], strict=False):
        for t in range(4):
            if matrix[higher][t] > matrix[lower][t]:
                raise PriorityConfigError(
                    f"matrix.{higher}: tier {t + 1} (P{matrix[higher][t]}) must not rank "
                    f"below {lower} (P{matrix[lower][t]})")


def config_from_mapping(data: Mapping[str, Any], *, base: PriorityConfig | None = None
                        ) -> PriorityConfig:
    """A validated configuration from a parsed YAML document.

    Sections and keys left out keep the value of ``base`` (the shipped default), so a
    file may change just the matrix or just the SLA.
    """
    if not isinstance(data, Mapping):
        raise PriorityConfigError("the priority configuration must be a YAML mapping")
    base = base or default_config()
    known = {"method", "default_tier", "matrix", "modifiers", "ssvc", "sla_days",
             "kev_due_date"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PriorityConfigError(f"{unknown[0]}: unknown setting (known: "
                                  f"{', '.join(sorted(known))})")
    method = data.get("method", base.method)
    if method not in METHODS:
        raise PriorityConfigError(f"method: {method!r} must be 'matrix' or 'ssvc'")
    default_tier = _int(data.get("default_tier", base.default_tier), "default_tier", TIERS)
    matrix = dict(base.matrix)
    for band, row in _section(data, "matrix").items():
        if band not in BANDS:
            raise PriorityConfigError(f"matrix.{band}: not a severity band "
                                      f"({', '.join(BANDS)})")
        if not isinstance(row, list) or len(row) != 4:
            raise PriorityConfigError(f"matrix.{band}: must list 4 priorities (tier 1..4)")
        matrix[band] = tuple(_int(p, f"matrix.{band}", PRIORITIES)
                             for p in row)  # type: ignore[assignment]
    missing = [b for b in BANDS if b not in matrix]
    if missing:
        raise PriorityConfigError(f"matrix.{missing[0]}: missing")
    _check_monotone(matrix)
    matrix = {band: matrix[band] for band in (*reversed(BAND_ORDER), "Unknown")}
    mods = _section(data, "modifiers")
    ssvc = _section(data, "ssvc")
    exposure = dict(base.ssvc_exposure)
    for key, value in _section(ssvc, "exposure").items():
        if value not in EXPOSURE:
            raise PriorityConfigError(f"ssvc.exposure.{key}: {value!r} must be one of "
                                      f"{', '.join(EXPOSURE)}")
        exposure[str(key).lower()] = value
    impact = dict(base.ssvc_human_impact)
    for key, value in _section(ssvc, "human_impact").items():
        tier = _int(key, "ssvc.human_impact", TIERS)
        if value not in HUMAN_IMPACT:
            raise PriorityConfigError(f"ssvc.human_impact.{key}: {value!r} must be one of "
                                      f"{', '.join(HUMAN_IMPACT)}")
        impact[tier] = value
    default_exposure = ssvc.get("default_exposure", base.ssvc_default_exposure)
    if default_exposure not in EXPOSURE:
        raise PriorityConfigError(f"ssvc.default_exposure: {default_exposure!r} must be one "
                                  f"of {', '.join(EXPOSURE)}")
    sla = dict(base.sla_days)
    for key, value in _section(data, "sla_days").items():
        p = _int(key, "sla_days", PRIORITIES)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PriorityConfigError(f"sla_days.{key}: {value!r} must be a whole number "
                                      "of days")
        sla[p] = value
    if sorted(sla) != list(PRIORITIES):
        raise PriorityConfigError("sla_days: needs a number of days for each of 1, 2, 3, 4")
    automatable = tuple(s.capitalize() for s in _strings(
        ssvc.get("automatable_severities", list(base.ssvc_automatable_severities)),
        "ssvc.automatable_severities"))
    return PriorityConfig(
        method=method, default_tier=default_tier, matrix=matrix,
        kev_floor=_int(mods.get("kev_floor", base.kev_floor), "modifiers.kev_floor",
                       PRIORITIES),
        kev_top_tiers=tuple(_int(t, "modifiers.kev_top_tiers", TIERS) for t in
                            mods.get("kev_top_tiers", list(base.kev_top_tiers)) or ()),
        epss_threshold=_number(mods.get("epss_threshold", base.epss_threshold),
                               "modifiers.epss_threshold"),
        internet_facing=_strings(mods.get("internet_facing", list(base.internet_facing)),
                                 "modifiers.internet_facing"),
        compensating_control=bool(mods.get("compensating_control",
                                           base.compensating_control)),
        development=_strings(mods.get("development", list(base.development)),
                             "modifiers.development"),
        ssvc_poc_epss_threshold=_number(
            ssvc.get("poc_epss_threshold", base.ssvc_poc_epss_threshold),
            "ssvc.poc_epss_threshold"),
        ssvc_automatable_severities=automatable,
        ssvc_exposure=exposure, ssvc_default_exposure=default_exposure,
        ssvc_human_impact=impact, sla_days=sla,
        kev_due_date=bool(data.get("kev_due_date", base.kev_due_date)))


def parse_config(text: str, source: str = "priority configuration") -> PriorityConfig:
    """A configuration from YAML text; PriorityConfigError names ``source`` when invalid."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PriorityConfigError(f"{source}: not valid YAML: {exc}") from exc
    try:
        return config_from_mapping(data or {})
    except PriorityConfigError as exc:
        raise PriorityConfigError(f"{source}: {exc}") from exc


def load_config(path: Path) -> PriorityConfig:
    """The configuration in a YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriorityConfigError(f"{path}: cannot be read: {exc}") from exc
    return parse_config(text, str(path))


_DEFAULT: list[PriorityConfig] = []


def default_config() -> PriorityConfig:
    """The configuration shipped with the package (``scoring/priority.yaml``)."""
    if not _DEFAULT:
        text = resources.files("patchpilot.scoring").joinpath("priority.yaml").read_text(
            encoding="utf-8")
        data = yaml.safe_load(text)
        # The shipped file is complete: it is read against an empty base.
        empty = PriorityConfig(matrix=dict.fromkeys(BANDS, (4, 4, 4, 4)),
                               sla_days={1: 0, 2: 0, 3: 0, 4: 0})
        _DEFAULT.append(config_from_mapping(data, base=empty))
    return _DEFAULT[0]


@dataclass(frozen=True, slots=True)
class PriorityInputs:
    """What a finding's priority is derived from: the vulnerability and its asset."""

    severity: str | None  # the finding's band ("Critical" …); anything else is "Unknown"
    known_exploited: bool = False
    epss: float | None = None
    has_context: bool = False  # the asset has an asset_context row (CMDB)
    criticality: int | None = None
    exposure: str | None = None
    environment: str | None = None
    compensating_control: str | None = None


@dataclass(frozen=True, slots=True)
class Priority:
    """A priority with the reason it was derived, as a code with its values
    (:mod:`patchpilot.scoring.reasons`)."""

    priority: int
    code: Mapping[str, Any]
    method: str

    @property
    def label(self) -> str:
        """``P1`` … ``P4``."""
        return f"P{self.priority}"

    @property
    def reason(self) -> str:
        """The reason in English ("P1: Critical × tier 1; internet-facing")."""
        return reasons.render(self.code)

    @property
    def stored(self) -> str:
        """The reason as ``finding_priority.reason`` holds it (compact JSON)."""
        return reasons.dumps(self.code)


def band_of(severity: str | None) -> str:
    """The matrix row of a finding's severity (anything unrecognised is "Unknown")."""
    return severity if severity in BAND_ORDER else "Unknown"


def tier_of(inputs: PriorityInputs, config: PriorityConfig) -> tuple[int, bool, bool]:
    """The tier used, whether the asset is known (has CMDB context) and whether its tier
    is (else the tier is the configured default)."""
    if not inputs.has_context:
        return config.default_tier, False, False
    if inputs.criticality in TIERS:
        return int(inputs.criticality), True, True  # type: ignore[arg-type]
    return config.default_tier, True, False


def _lowered(value: str | None) -> str:
    return (value or "").lower()


def _matrix(inputs: PriorityInputs, config: PriorityConfig) -> Priority:
    band = band_of(inputs.severity)
    tier, asset_known, tier_known = tier_of(inputs, config)
    steps = 0
    adjustments: list[dict[str, Any]] = []
    kev = inputs.known_exploited
    if kev:
        adjustments.append({"code": reasons.KEV})
    if inputs.epss is not None and inputs.epss > config.epss_threshold:
        steps -= 1
        adjustments.append({"code": reasons.EPSS, "threshold": config.epss_threshold})
    if _lowered(inputs.exposure) in config.internet_facing:
        steps -= 1
        adjustments.append({"code": reasons.INTERNET_FACING})
    if config.compensating_control and (inputs.compensating_control or "").strip():
        steps += 1
        adjustments.append({"code": reasons.COMPENSATING_CONTROL})
    if _lowered(inputs.environment) in config.development:
        steps += 1
        adjustments.append({"code": reasons.DEVELOPMENT})
    p = min(4, max(1, config.matrix[band][tier - 1] + steps))
    if kev:
        p = 1 if tier in config.kev_top_tiers else min(p, config.kev_floor)
    return Priority(p, reasons.matrix_code(p, band, tier, asset_known, tier_known,
                                           adjustments), "matrix")


def ssvc_decision_points(inputs: PriorityInputs, config: PriorityConfig
                         ) -> tuple[str, str, str, str]:
    """(Exploitation, System Exposure, Automatable, Human Impact) of a finding."""
    if inputs.known_exploited:
        exploitation = "active"
    elif inputs.epss is not None and inputs.epss > config.ssvc_poc_epss_threshold:
        exploitation = "PoC"
    else:
        exploitation = "none"
    exposure = config.ssvc_exposure.get(_lowered(inputs.exposure),
                                        config.ssvc_default_exposure)
    automatable = "yes" if band_of(inputs.severity) in config.ssvc_automatable_severities \
        else "no"
    tier, _, _ = tier_of(inputs, config)
    return exploitation, exposure, automatable, config.ssvc_human_impact[tier]


def _ssvc(inputs: PriorityInputs, config: PriorityConfig) -> Priority:
    points = ssvc_decision_points(inputs, config)
    outcome = DEPLOYER_TABLE[points]
    p = _OUTCOME_PRIORITY[outcome]
    _, asset_known, tier_known = tier_of(inputs, config)
    return Priority(p, reasons.ssvc_code(p, outcome, points, asset_known, tier_known), "ssvc")


def prioritise(inputs: PriorityInputs, config: PriorityConfig | None = None) -> Priority:
    """The priority of one finding and the reason, by the configured method."""
    config = config or default_config()
    return _ssvc(inputs, config) if config.method == "ssvc" else _matrix(inputs, config)


def kev_deadline(kev_due: str | date | None) -> datetime | None:
    """The end of a KEV due date (midnight UTC after it): "by that date" includes it."""
    if kev_due is None or kev_due == "":
        return None
    day = kev_due if isinstance(kev_due, date) else date.fromisoformat(str(kev_due)[:10])
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def due_date(priority: int, detected_at: datetime, config: PriorityConfig | None = None, *,
             kev_due: str | date | None = None) -> datetime:
    """When a finding must be fixed: detection + the SLA of its priority, or the KEV due
    date when that is earlier (and ``kev_due_date`` is on)."""
    config = config or default_config()
    detected = detected_at if detected_at.tzinfo else detected_at.replace(tzinfo=UTC)
    due = detected + timedelta(days=config.sla_days[priority])
    deadline = kev_deadline(kev_due) if config.kev_due_date else None
    return min(due, deadline) if deadline is not None else due
