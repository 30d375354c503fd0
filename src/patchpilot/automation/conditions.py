"""Evaluating playbook conditions over many events, fast and exactly as celpy would.

celpy interprets a condition in about 0.1-0.3 ms, and building the CEL activation of a
context costs as much again: 100,000 events against 50 playbooks would take twenty
minutes.  Three things bring it to about a second, each exact:

1. **Results by the fields read.**  A condition is a pure function of the context fields
   it names (:func:`condition_paths`); its results are kept by their values
   (``finding.severity``, ``asset.criticality``, …).  An estate has far fewer distinct
   combinations than events, so most events are answered by one dictionary look-up on a
   flat view of the event (:func:`flat`, built once per event, not per playbook).
2. **Clauses apart.**  A top-level ``a && b && c`` (or ``||``) is split into its clauses,
   each kept by its own fields, and combined as CEL does -- commutatively, an error
   absorbed by ``false`` in ``&&`` and by ``true`` in ``||`` (celpy's ``logical_and`` /
   ``logical_or``) -- so ``asset.name.endsWith("7") && finding.severity == "High"`` costs
   the distinct host names plus the distinct severities, not their product.
3. **Plain comparisons in Python.**  A clause that is a field compared with a literal
   (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``startsWith``, ``endsWith``,
   ``contains``, or a boolean field alone) is computed directly when the field's value has
   the literal's very type (a string with a string, an int with an int, …): there Python
   and CEL agree.  Any other value (a null, an int against a double) goes to celpy, which
   decides, errors included.

A result is True or False, or None when the condition failed or gave a non-boolean (CEL's
"no such overload" on a null): never a match, and counted.
"""

from __future__ import annotations

import operator
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from threading import Lock
from typing import Any

import celpy
import orjson

from patchpilot.automation.playbook import ROOTS, compile_condition

# A field a condition names: (root, field), or (root, None) for the whole root (a root
# indexed as a map, or named bare).
Path = tuple[str, str | None]
Result = bool | None
_MISS = object()  # the fast path cannot tell: ask celpy
_MEMO_MAX = 200_000


def _root_of(member: Any) -> str | None:
    # member -> primary -> ident -> token: a bare root such as ``finding``.
    if getattr(member, "data", None) != "member" or len(member.children) != 1:
        return None
    primary = member.children[0]
    if getattr(primary, "data", None) != "primary" or len(primary.children) != 1:
        return None
    ident = primary.children[0]
    if getattr(ident, "data", None) != "ident":
        return None
    name = str(ident.children[0])
    return name if name in ROOTS else None


def _paths_of(tree: Any) -> tuple[Path, ...]:
    fields: set[Path] = set()
    selected: set[int] = set()
    for node in tree.iter_subtrees():
        if node.data == "member_dot":
            root = _root_of(node.children[0])
            if root is not None:
                fields.add((root, str(node.children[1])))
                selected.add(id(node.children[0].children[0].children[0]))
    for node in tree.iter_subtrees():
        if (node.data == "ident" and id(node) not in selected
                and str(node.children[0]) in ROOTS):
            fields.add((str(node.children[0]), None))
    whole = {root for root, name in fields if name is None}
    return tuple(sorted((p for p in fields if p[0] not in whole or p[1] is None),
                        key=lambda p: (p[0], p[1] or "")))


def condition_paths(expression: str) -> tuple[Path, ...]:
    """The context fields a CEL expression can read, sorted: ``root.field`` where it
    selects a field of a root, the whole root wherever a root is used otherwise.  Never
    fewer than it reads (a macro variable that shadows a root counts as the whole root),
    so a result kept by their values is exact."""
    return _paths_of(celpy.Environment().compile(expression))


def key_of(path: Path) -> str:
    """The key of a field in :func:`flat`: ``finding.severity``, or ``finding``."""
    return path[0] if path[1] is None else f"{path[0]}.{path[1]}"


def _frozen(value: Any) -> Any:
    # A hashable stand-in of a JSON value: a list of strings becomes a tuple (``in`` works
    # the same), any other list or map -- an event's detail -- its canonical JSON, which
    # tells 1, 1.0 and true apart.  (Scalars stand for themselves; the keys results are
    # kept by carry their types beside them: 1 == 1.0 == True in Python, not in CEL.)
    if isinstance(value, list) and all(v.__class__ is str for v in value):
        return tuple(value)
    if isinstance(value, list | dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return value


def typed_key(values: dict[str, Any], keys: Sequence[str]) -> tuple[Any, ...]:
    """The key a result is kept by: the values of ``keys`` and then their types."""
    found = [values[k] for k in keys]
    return (*found, *map(type, found))


def flat(context: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The hashable values of ``keys`` (of :func:`key_of`) in one event's context."""
    out: dict[str, Any] = {}
    for key in keys:
        root, _, name = key.partition(".")
        value = context[root][name] if name else context[root]
        out[key] = _frozen(value) if value.__class__ in (list, dict) else value
    return out


@dataclass(frozen=True, slots=True)
class Table:
    """Many events' contexts, and the fields conditions read as columns of hashable
    values (a list per field, a row per event): built once per batch, read by every
    playbook's condition with C-level ``map`` and ``zip`` instead of a loop per event."""

    contexts: list[dict[str, Any]]
    rows: dict[int, int]  # event id -> row
    columns: dict[str, list[Any]]

    @classmethod
    def of(cls, context: dict[int, dict[str, Any]], keys: Iterable[str]) -> Table:
        """The table of ``context`` (contexts by event id) with the fields ``keys``."""
        contexts = list(context.values())
        columns: dict[str, list[Any]] = {}
        for key in keys:
            root, _, name = key.partition(".")
            column = ([c[root][name] for c in contexts] if name
                      else [c[root] for c in contexts])
            # (Most values are scalars: freeze only lists and maps.)
            columns[key] = [_frozen(v) if v.__class__ in (list, dict) else v
                            for v in column]
        return cls(contexts, {event_id: i for i, event_id in enumerate(context)}, columns)

    def values(self, row: int, keys: Iterable[str]) -> dict[str, Any]:
        """One row's values of ``keys`` (a :func:`flat` view)."""
        return {key: self.columns[key][row] for key in keys}


# --- the fast path: a field compared with a literal, by a regular expression over the
# clause's text (the clause is already known to be one relation; the whole text must
# match, so nothing else hides in it).
_FIELD = r"(event|finding|asset)\.([A-Za-z_][A-Za-z0-9_]*)"
_LIT = r'(?:"[^"\\\n]*"|-?\d+\.\d+|-?\d+|true|false)'
_LITERAL = f"({_LIT})"
_COMPARE = re.compile(rf"^\s*{_FIELD}\s*(==|!=|<=|>=|<|>)\s*{_LITERAL}\s*$")
_COMPARED = re.compile(rf"^\s*{_LITERAL}\s*(==|!=|<=|>=|<|>)\s*{_FIELD}\s*$")
_MEMBER = re.compile(rf"^\s*{_LITERAL}\s+in\s+{_FIELD}\s*$")
_AMONG = re.compile(rf"^\s*{_FIELD}\s+in\s+\[\s*({_LIT}(?:\s*,\s*{_LIT})*)\s*,?\s*\]\s*$")
_METHOD = re.compile(rf"^\s*{_FIELD}\.(startsWith|endsWith|contains)\(\s*{_LITERAL}\s*\)\s*$")
_ALONE = re.compile(rf"^\s*{_FIELD}\s*$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_METHODS: dict[str, Callable[[str, str], bool]] = {
    "startsWith": str.startswith, "endsWith": str.endswith,
    "contains": operator.contains}


def _literal(text: str) -> Any:
    """The Python value of a CEL literal, as celpy reads it (str, int, float, bool)."""
    env = celpy.Environment()
    value = env.program(env.compile(text)).evaluate({})
    if isinstance(value, celpy.celtypes.BoolType):
        return bool(value)
    for kind in (str, float, int):
        if isinstance(value, kind):
            return kind(value)
    raise ValueError(text)


def fast_path(text: str) -> Callable[[dict[str, Any]], Any] | None:
    """A Python function of :func:`flat` computing the clause ``text`` where the field's
    value has the literal's type, :data:`_MISS` elsewhere; None when the clause is not
    of a shape it knows."""
    found = _COMPARE.match(text)
    flipped = _COMPARED.match(text) if found is None else None
    if found or flipped:
        if found:
            root, name, op, raw = found.groups()
        else:
            raw, op, root, name = flipped.groups()  # type: ignore[union-attr]
            op = _FLIPPED[op]
        return _compare(f"{root}.{name}", op, _literal(raw))
    found = _MEMBER.match(text)
    if found:
        raw, root, name = found.groups()
        return _member(f"{root}.{name}", _literal(raw))
    found = _AMONG.match(text)
    if found:
        root, name, items = found.group(1), found.group(2), found.group(3)
        return _among(f"{root}.{name}", [_literal(m.group(0))
                                          for m in re.finditer(_LIT, items)])
    found = _METHOD.match(text)
    if found:
        root, name, method, raw = found.groups()
        return _method(f"{root}.{name}", method, _literal(raw))
    found = _ALONE.match(text)
    if found:
        return _alone(f"{found.group(1)}.{found.group(2)}")
    return None


def _compare(key: str, op: str, literal: Any) -> Callable[[dict[str, Any]], Any]:
    compare, kind = _OPS[op], type(literal)
    if kind is bool and op not in ("==", "!="):
        return lambda values: _MISS

    def run(values: dict[str, Any]) -> Any:
        value = values[key]
        return compare(value, literal) if type(value) is kind else _MISS
    return run


def _member(key: str, literal: Any) -> Callable[[dict[str, Any]], Any]:
    kind = type(literal)

    def run(values: dict[str, Any]) -> Any:
        value = values[key]
        if type(value) is tuple and all(type(v) is kind for v in value):
            return literal in value
        return _MISS
    return run


def _among(key: str, literals: list[Any]) -> Callable[[dict[str, Any]], Any]:
    kinds = {type(v) for v in literals}
    if len(kinds) != 1:
        return lambda values: _MISS
    kind, among = kinds.pop(), frozenset(literals)

    def run(values: dict[str, Any]) -> Any:
        value = values[key]
        return value in among if type(value) is kind else _MISS
    return run


def _method(key: str, method: str, literal: Any) -> Callable[[dict[str, Any]], Any]:
    call = _METHODS[method]
    if type(literal) is not str:
        return lambda values: _MISS

    def run(values: dict[str, Any]) -> Any:
        value = values[key]
        return call(value, literal) if type(value) is str else _MISS
    return run


def _alone(key: str) -> Callable[[dict[str, Any]], Any]:
    def run(values: dict[str, Any]) -> Any:
        value = values[key]
        return value if type(value) is bool else _MISS
    return run


# --- clauses ---------------------------------------------------------------------------


class Clause:
    """One relation of a condition: its fast path when it has one, else celpy, its
    results kept by the values of the fields it reads."""

    def __init__(self, text: str) -> None:
        self.paths = _paths_of(celpy.Environment().compile(text))
        self.keys = tuple(key_of(p) for p in self.paths)
        # Compiled as a playbook's condition is (its CEL functions: null equality).
        self.program = compile_condition(text)
        self.fast = fast_path(text)
        self.memo: dict[Any, Result] = {}

    def test(self, values: dict[str, Any], context: dict[str, Any]) -> Result:
        """The clause's result on one event (``values``: its :func:`flat`)."""
        if self.fast is not None:
            hit = self.fast(values)
            if hit is not _MISS:
                return bool(hit)
        key = typed_key(values, self.keys)
        try:
            return self.memo[key]
        except KeyError:
            pass
        result = evaluate(self.program, self.paths, context)
        if len(self.memo) >= _MEMO_MAX:
            self.memo.clear()
        self.memo[key] = result
        return result


def evaluate(program: Any, paths: tuple[Path, ...], context: dict[str, Any]) -> Result:
    """celpy's answer on one context, with an activation of only ``paths`` (building the
    whole context's CEL values costs more than most evaluations)."""
    shown: dict[str, Any] = {}
    for root, name in paths:
        if name is None:
            shown[root] = context[root]
        else:
            shown.setdefault(root, {})[name] = context[root][name]
    try:
        hit = program.evaluate({k: celpy.json_to_cel(v) for k, v in shown.items()})
    except celpy.CELEvalError:
        return None
    if not isinstance(hit, bool | celpy.celtypes.BoolType):
        return None
    return bool(hit)


class _Both:
    """``left && right`` as CEL combines them: false wins, then an error, then true."""

    def __init__(self, left: Any, right: Any) -> None:
        self.left, self.right = left, right

    def test(self, values: dict[str, Any], context: dict[str, Any]) -> Result:
        a = self.left.test(values, context)
        if a is False:
            return False
        b = self.right.test(values, context)
        if b is False:
            return False
        return None if a is None or b is None else True


class _Either:
    """``left || right`` as CEL combines them: true wins, then an error, then false."""

    def __init__(self, left: Any, right: Any) -> None:
        self.left, self.right = left, right

    def test(self, values: dict[str, Any], context: dict[str, Any]) -> Result:
        a = self.left.test(values, context)
        if a is True:
            return True
        b = self.right.test(values, context)
        if b is True:
            return True
        return None if a is None or b is None else False


def _split(node: Any, text: str) -> Any:
    # expr -> conditionalor ("||") -> conditionaland ("&&") -> relation; a ternary (an
    # expr of three children) or anything in parentheses stays one clause.
    if node.data == "expr" and len(node.children) == 1:
        return _split(node.children[0], text)
    if node.data == "conditionalor" and len(node.children) == 2:
        return _Either(_split(node.children[0], text), _split(node.children[1], text))
    if node.data == "conditionaland" and len(node.children) == 2:
        return _Both(_split(node.children[0], text), _split(node.children[1], text))
    if node.data in ("conditionalor", "conditionaland") and len(node.children) == 1:
        return _split(node.children[0], text)
    return Clause(text[node.meta.start_pos:node.meta.end_pos])


class Condition:
    """A playbook condition: ``test(values, context)`` -> True, False or None (failed).

    The whole condition's results are kept by the values of every field it reads; a new
    combination is worked out clause by clause."""

    def __init__(self, expression: str) -> None:
        tree = celpy.Environment().compile(expression)
        self.paths = _paths_of(tree)
        self.keys = tuple(key_of(p) for p in self.paths)
        self.clauses = _split(tree, expression)
        self.memo: dict[Any, Result] = {}

    def test(self, values: dict[str, Any], context: dict[str, Any]) -> Result:
        """The condition's result on one event (``values``: its :func:`flat`)."""
        key = typed_key(values, self.keys)
        hit = self.memo.get(key, _MISS)
        if hit is _MISS:
            if len(self.memo) >= _MEMO_MAX:
                self.memo.clear()  # bounded: an estate of ever-new values starts over
            hit = self.memo[key] = self.clauses.test(values, context)
        return hit  # type: ignore[return-value]

    def test_many(self, table: Table, rows: Sequence[int]) -> list[Result]:
        """The results on the events at ``rows`` of ``table``.  The keys are zipped from
        the columns and looked up by ``map`` (C loops); only new combinations are worked
        out, clause by clause."""
        if self.keys:
            found = [list(map(table.columns[k].__getitem__, rows)) for k in self.keys]
            # (The values, then their types: as typed_key.)
            keys = list(zip(*found, *(map(type, f) for f in found), strict=True))
        else:
            keys = [()] * len(rows)
        hits = list(map(self.memo.get, keys, repeat(_MISS)))
        for i in [i for i, hit in enumerate(hits) if hit is _MISS]:
            hits[i] = self.test(table.values(rows[i], self.keys), table.contexts[rows[i]])
        return hits  # type: ignore[return-value]


# Conditions by their text: their results are kept from batch to batch and shared by
# playbooks of the same condition.  Bounded, oldest out.
_CONDITIONS: OrderedDict[str, Condition] = OrderedDict()
_CONDITIONS_MAX = 500
_LOCK = Lock()


def condition(expression: str) -> Condition:
    """The :class:`Condition` of a (valid) CEL expression."""
    with _LOCK:
        found = _CONDITIONS.get(expression)
        if found is not None:
            _CONDITIONS.move_to_end(expression)
            return found
    made = Condition(expression)
    with _LOCK:
        _CONDITIONS[expression] = made
        while len(_CONDITIONS) > _CONDITIONS_MAX:
            _CONDITIONS.popitem(last=False)
    return made


def forget_conditions() -> None:
    """Drop every kept condition and its results (a benchmark measuring a cold start)."""
    with _LOCK:
        _CONDITIONS.clear()
