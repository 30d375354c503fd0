"""The playbook document: YAML, validated into a :class:`Playbook`.

A playbook is::

    name: critical-on-tier1          # letters, digits, ``-``, ``_``, ``.``
    description: …                   # optional
    enabled: true                    # optional, default true
    trigger:
      events: [new, reopened]        # kinds of findings.events.KINDS, and/or
      schedule: {cron: "0 8 * * 1-5", timezone: Asia/Tokyo}
    condition: 'finding.severity == "Critical" && asset.criticality == 1'   # CEL, optional
    actions:
      - type: email                  # a row of actions.registry.ACTIONS
        with: {to: ["{{ asset.owner }}"], lang: ja}

Every refusal is a :class:`PlaybookError` naming the field (``actions[1].with.url``) and,
for YAML syntax, the line; a condition that does not compile names its line and column in
the expression.  The condition is compiled by ``cel-python`` (celpy) here, once, and the
compiled program travels with the playbook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import celpy
import celpy.evaluation
import yaml

from patchpilot.automation.actions.registry import action_named, action_names
from patchpilot.automation.context import ASSET_FIELDS, FINDING_FIELDS
from patchpilot.errors import InvalidInput
from patchpilot.findings.events import KINDS, SCHEDULED
from patchpilot.scans.schedules import CRON, ScheduleError, validate_schedule

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_KEYS = {"name", "description", "enabled", "trigger", "condition", "actions"}
# The event kinds a trigger lists (``scheduled`` comes from the trigger's own schedule).
TRIGGER_KINDS = tuple(k for k in KINDS if k != SCHEDULED)


class PlaybookError(InvalidInput):
    """A playbook that cannot be stored: the message names the field (and line)."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron schedule read in an IANA time zone."""

    cron: str
    timezone: str


@dataclass(frozen=True, slots=True)
class ActionStep:
    """One action of a playbook: its registered type and its ``with`` settings."""

    type: str
    with_: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Playbook:
    """A validated playbook document (``program``: the compiled condition, or None)."""

    name: str
    description: str
    enabled: bool
    events: tuple[str, ...]
    schedule: Schedule | None
    condition: str | None
    actions: tuple[ActionStep, ...]
    program: Any = field(default=None, compare=False, repr=False)


def compile_condition(expression: str) -> Any:
    """The celpy program of a CEL expression; PlaybookError with its line and column in
    the expression when it does not compile or names what the context lacks."""
    env = celpy.Environment()
    try:
        tree = env.compile(expression)
    except celpy.CELParseError as exc:
        where = (f" at line {exc.line}, column {exc.column}"
                 if getattr(exc, "line", None) else "")
        shown = str(exc.args[0]).rstrip() if exc.args else str(exc)
        raise PlaybookError(f"condition: does not compile{where}:\n{shown}",
                            field="condition") from exc
    _check_names(tree)
    return env.program(tree, functions={"_==_": _equal, "_!=_": _not_equal})


# CEL's equality is heterogeneous: ``1 == null`` is false, ``finding.priority != null`` is
# true when a priority is set.  cel-python raises "no such overload" for a number or a
# map compared with null, which made the natural guard fail on every event.
def _equal(left: Any, right: Any) -> Any:
    if left is None or right is None:
        return celpy.celtypes.BoolType(left is None and right is None)
    return celpy.evaluation.base_functions["_==_"](left, right)


def _not_equal(left: Any, right: Any) -> Any:
    if left is None or right is None:
        return celpy.celtypes.BoolType(not (left is None and right is None))
    return celpy.evaluation.base_functions["_!=_"](left, right)


# The roots of the context (automation/context.py) and their fields; ``event.detail`` is a
# map of any keys.  A misspelt name would otherwise fail on every event, silently.
ROOTS = {"event": ("id", "kind", "at", "producer", "detail"),
         "finding": FINDING_FIELDS, "asset": ASSET_FIELDS}
_MACROS = {"all", "exists", "exists_one", "map", "filter"}
_TYPE_NAMES = {"int", "uint", "double", "bool", "string", "bytes", "list", "map",
               "null_type", "type", "duration", "timestamp"}


def _tokens(node: Any) -> list[Any]:
    return [t for sub in node.iter_subtrees() if sub.data == "ident" for t in sub.children]


def _check_names(tree: Any) -> None:
    bound: set[str] = set()
    for node in tree.iter_subtrees():
        if (node.data == "member_dot_arg" and str(node.children[1]) in _MACROS
                and len(node.children) > 2 and node.children[2].children):
            bound.update(str(t) for t in _tokens(node.children[2].children[0])[:1])
    for node in tree.iter_subtrees():
        if node.data == "ident":
            token = node.children[0]
            name = str(token)
            if name not in ROOTS and name not in bound and name not in _TYPE_NAMES:
                raise PlaybookError(
                    f"condition: unknown name {name!r} at line {token.line}, column "
                    f"{token.column} (the context has {', '.join(ROOTS)})", field="condition")
        elif node.data == "member_dot":
            inner, field_token = node.children[0], node.children[1]
            root = _root_name(inner)
            if root in ROOTS and str(field_token) not in ROOTS[root]:
                raise PlaybookError(
                    f"condition: {root} has no field {str(field_token)!r} (line "
                    f"{field_token.line}, column {field_token.column}; its fields: "
                    f"{', '.join(ROOTS[root])})", field="condition")


def _root_name(member: Any) -> str | None:
    # member -> primary -> ident -> token: a bare root such as ``finding``.
    if getattr(member, "data", None) != "member" or len(member.children) != 1:
        return None
    primary = member.children[0]
    if getattr(primary, "data", None) != "primary" or len(primary.children) != 1:
        return None
    ident = primary.children[0]
    if getattr(ident, "data", None) != "ident":
        return None
    return str(ident.children[0])


def parse_playbook(text: str, *, source: str = "playbook") -> Playbook:
    """Parse and validate a playbook's YAML (``source``: its file name for messages)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlaybookError(f"{where}: not valid YAML: {problem}") from exc
    if not isinstance(doc, dict):
        raise PlaybookError(f"{source}: a playbook is a mapping (name, trigger, actions)")
    return validate_document(doc)


def _fail(name: str, message: str) -> PlaybookError:
    return PlaybookError(f"{name}: {message}", field=name)


def validate_document(doc: dict[str, Any]) -> Playbook:
    """A :class:`Playbook` from a decoded document; PlaybookError naming the field."""
    unknown = sorted(map(str, set(doc) - _KEYS))
    if unknown:
        raise _fail(unknown[0], f"unknown field (fields: {', '.join(sorted(_KEYS))})")
    name = doc.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise _fail("name", "required: letters, digits, '-', '_' or '.', at most 200")
    description = doc.get("description") or ""
    if not isinstance(description, str):
        raise _fail("description", "must be text")
    enabled = doc.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _fail("enabled", "must be true or false")
    events, schedule = _trigger(doc.get("trigger"))
    condition = doc.get("condition")
    program = None
    if condition is not None:
        if not isinstance(condition, str) or not condition.strip():
            raise _fail("condition", "must be a CEL expression (text)")
        program = compile_condition(condition)
    steps = doc.get("actions")
    if not isinstance(steps, list) or not steps:
        raise _fail("actions", "required: a list of at least one action")
    actions = tuple(_action(i, step) for i, step in enumerate(steps))
    return Playbook(name, description, enabled, events, schedule, condition, actions, program)


def _trigger(trigger: Any) -> tuple[tuple[str, ...], Schedule | None]:
    if not isinstance(trigger, dict):
        raise _fail("trigger", "required: a mapping with events and/or schedule")
    unknown = sorted(map(str, set(trigger) - {"events", "schedule"}))
    if unknown:
        raise _fail(f"trigger.{unknown[0]}", "unknown field (fields: events, schedule)")
    events = trigger.get("events", [])
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list):
        raise _fail("trigger.events", "must be a list of event kinds")
    for i, kind in enumerate(events):
        if kind not in TRIGGER_KINDS:
            raise _fail(f"trigger.events[{i}]",
                        f"unknown event kind {kind!r} (one of {', '.join(TRIGGER_KINDS)})")
    schedule = None
    raw = trigger.get("schedule")
    if raw is not None:
        if not isinstance(raw, dict) or not isinstance(raw.get("cron"), str):
            raise _fail("trigger.schedule", "must be {cron: \"…\", timezone: …}")
        unknown = sorted(map(str, set(raw) - {"cron", "timezone"}))
        if unknown:
            raise _fail(f"trigger.schedule.{unknown[0]}",
                        "unknown field (fields: cron, timezone)")
        tz = raw.get("timezone", "UTC")
        try:
            validate_schedule(CRON, raw["cron"], str(tz))
        except ScheduleError as exc:
            raise _fail("trigger.schedule", str(exc)) from exc
        schedule = Schedule(raw["cron"], str(tz))
    if not events and schedule is None:
        raise _fail("trigger", "give events, a schedule or both")
    return tuple(dict.fromkeys(events)), schedule


def _action(index: int, step: Any) -> ActionStep:
    where = f"actions[{index}]"
    if not isinstance(step, dict):
        raise _fail(where, "must be a mapping {type: …, with: {…}}")
    unknown = sorted(map(str, set(step) - {"type", "with"}))
    if unknown:
        raise _fail(f"{where}.{unknown[0]}", "unknown field (fields: type, with)")
    kind = step.get("type")
    action = action_named(kind) if isinstance(kind, str) else None
    if action is None:
        raise _fail(f"{where}.type",
                    f"unknown action {kind!r} (one of {', '.join(action_names())})")
    settings = step.get("with") or {}
    if not isinstance(settings, dict):
        raise _fail(f"{where}.with", "must be a mapping")
    odd = [k for k in settings if not isinstance(k, str)]
    if odd:
        raise _fail(f"{where}.with", f"setting names are text, not {odd[0]!r}")
    problem = action.validate(settings)
    if problem is not None:
        key, message = problem
        raise _fail(f"{where}.with.{key}" if key else f"{where}.with", message)
    return ActionStep(kind, dict(settings))  # type: ignore[arg-type]
