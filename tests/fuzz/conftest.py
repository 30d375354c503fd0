"""Shared pieces of the fuzz tests: the real seed files and the mutations applied to them.

Every parser is fed (a) random bytes and (b) real inputs from ``../shared/data`` mutated
the way files really break -- bit rot, a truncated download, bytes inserted or lost, a
JSON document of another shape than the parser expects.  The only exception allowed out
of a parser is its module's own error type; anything else is a crash the fuzz reports with
its minimal input.

The budget is fixed and the search derandomized (``FUZZ``), so a run is bounded and the
same on every machine; a failure found once is found again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Bounded and deterministic: no example database (a failure found on one machine must not
# change what another runs), a fixed seed, no deadline (a loaded CI machine is slow).
# PATCHPILOT_FUZZ_EXAMPLES raises the budget for a deeper search by hand; `make test` runs
# the fixed default.
EXAMPLES = int(os.environ.get("PATCHPILOT_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

# A seed bigger than this is cut down (its JSON lists to a few items, its text to its first
# lines): mutating megabytes costs time and finds nothing a small real file does not.
MAX_SEED = 48 * 1024


def _shrink_json(value: Any, keep: int = 3) -> Any:
    """``value`` with every list cut to its first ``keep`` items (still real data)."""
    if isinstance(value, list):
        return [_shrink_json(v, keep) for v in value[:keep]]
    if isinstance(value, dict):
        return {k: _shrink_json(v, keep) for k, v in value.items()}
    return value


def seed_bytes(path: Path) -> bytes:
    """The real file at ``path``, cut down to at most about ``MAX_SEED`` bytes."""
    data = path.read_bytes()
    if len(data) <= MAX_SEED:
        return data
    try:
        return orjson.dumps(_shrink_json(orjson.loads(data)), option=orjson.OPT_INDENT_2)
    except orjson.JSONDecodeError:
        pass
    lines = data[:MAX_SEED].splitlines(keepends=True)
    return b"".join(lines[:-1] or lines)  # drop the last, cut line


def load_seeds(root: Path, patterns: tuple[str, ...]) -> list[tuple[str, bytes]]:
    """(file name, bytes) of every real file matching ``patterns`` under ``root``."""
    found: list[tuple[str, bytes]] = []
    for pattern in patterns:
        found.extend((p.name, seed_bytes(p)) for p in sorted(root.glob(pattern)) if p.is_file())
    return found


# -------------------------------------------------------------------------------- mutations

# Values of every JSON type, including the awkward ones (huge numbers, deep nesting).
_ODD_VALUES: list[Any] = [None, True, False, 0, -1, 2**64, 1.5e308, -0.0, "", "x", "\x00",
                          "9" * 40, [], [None], {}, {"": None}, [[[]]], "../../etc/passwd"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) to a value inside a decoded JSON document."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out.extend(_paths(child, (*prefix, i)))
    return out


def _replace_at(doc: Any, path: tuple[Any, ...], change: Callable[[Any], Any]) -> Any:
    """``doc`` with the value at ``path`` replaced by ``change(value)``."""
    if not path:
        return change(doc)
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: _replace_at(doc[head], rest, change)}
    copy = list(doc)
    copy[head] = _replace_at(doc[head], rest, change)
    return copy


def _drop_at(doc: Any, path: tuple[Any, ...]) -> Any:
    """``doc`` without the key or list item at ``path`` (the root itself is kept)."""
    if not path:
        return doc
    parent, last = path[:-1], path[-1]

    def drop(container: Any) -> Any:
        if isinstance(container, dict):
            return {k: v for k, v in container.items() if k != last}
        return [v for i, v in enumerate(container) if i != last]

    return _replace_at(doc, parent, drop)


@st.composite
def json_mutation(draw: st.DrawFn, doc: Any) -> bytes:
    """A structural mutation of a decoded JSON document, encoded again."""
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        how = draw(st.sampled_from(["retype", "drop", "nest", "listify", "stringify"]))
        if how == "retype":  # a value replaced by one of another type
            odd = draw(st.sampled_from(_ODD_VALUES))
            doc = _replace_at(doc, path, lambda _v, odd=odd: odd)
        elif how == "drop":  # a key (or list item) missing
            doc = _drop_at(doc, path)
        elif how == "nest":  # one level deeper than expected
            doc = _replace_at(doc, path, lambda v: {"value": v})
        elif how == "listify":
            doc = _replace_at(doc, path, lambda v: [v, v])
        else:  # a number or object where a string was expected, or the reverse
            doc = _replace_at(doc, path, lambda v: json.dumps(v) if not isinstance(v, str)
                              else {"text": v})
    return json.dumps(doc).encode()


@st.composite
def byte_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few byte-level faults: flips, truncation, insertion, deletion."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "duplicate"]))
        at = draw(st.integers(0, len(out))) if out else 0
        if how == "flip" and out:
            i = min(at, len(out) - 1)
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif how == "truncate":
            del out[at:]
        elif how == "insert":
            out[at:at] = draw(st.sampled_from([
                b"\x00", b"\xff\xfe", b"\n", b'"', b"{", b"]", b"\t", b"=", b"@", b":",
                b"\r\n", "\u00e9".encode(), b"<!ENTITY", b"\x1f\x8b", b"PK\x03\x04",
            ]) | st.binary(max_size=8))
        elif how == "delete":
            del out[at:at + draw(st.integers(1, 64))]
        elif how == "duplicate":
            out[at:at] = out[max(0, at - 64):at]
    return bytes(out)


def mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """The ways a real file ``data`` is mutated: bytes always, structure when it is JSON."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return byte_mutation(data)
    return st.one_of(byte_mutation(data), json_mutation(doc))


def random_input() -> st.SearchStrategy[bytes]:
    """Random input: raw bytes, or text (as UTF-8) which gets further into text parsers."""
    return st.one_of(st.binary(max_size=512), st.text(max_size=256).map(str.encode))
