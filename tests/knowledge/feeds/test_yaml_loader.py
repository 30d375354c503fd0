"""The feeds' fast YAML loader gives exactly PyYAML's answer, value or error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from patchpilot.knowledge.feeds._common import yaml_loader

_BASE = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
_NOT_TEXT = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}


def _keep(tag: str) -> bool:
    return tag not in _NOT_TEXT


def _pyyaml(data: bytes) -> Any:
    """PyYAML's own load with the same resolvers."""
    resolvers = {first: [(tag, rx) for tag, rx in entries if _keep(tag)]
                 for first, entries in _BASE.yaml_implicit_resolvers.items()}
    loader = type("Reference", (_BASE,), {"yaml_implicit_resolvers": resolvers})
    return yaml.load(data, Loader=loader)  # a SafeLoader subclass: safe


def _outcome(load: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "value", load(data)
    except Exception as exc:  # noqa: BLE001 - the very exception is what is compared
        return type(exc).__name__, str(exc)


def _typed(value: Any) -> Any:
    """``value`` with every scalar's type beside it (True == 1, but not here)."""
    if isinstance(value, dict):
        return [(_typed(k), _typed(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


DOCUMENTS = [
    b"",
    b"id: PYSEC-1\nversions:\n- 1.10\n- 2.0\nmodified: 2023-11-07T20:24:23Z\ncount: 12\n",
    b"a: yes\nb: No\nc: on\nd: OFF\ne: ~\nf: null\ng:\nh: 'true'\ni: \"null\"\nj: ''\n",
    b"x: &a [1, 2]\ny: *a\n",
    b"base: &b {k: v}\nd:\n  <<: *b\n  z: 1\n",
    b"a: !!int 5\nb: !!str 6\nc: !!float 1\n",
    b"a: !!binary aGk=\n",
    b"!!set {a, b}\n",
    b"? [a]\n: b\n",
    b"a: !!bool maybe\n",
    b"a: [\n",
    b"---\na: 1\n---\nb: 2\n",
    b"a: !!python/object:os.system x\n",
    b"a: =\n",
    b"a: 1\na: 2\n",
    b"- !!null ''\n- !!map {a: 1}\n- [1, [2, [3]]]\n",
    "name: caf\u00e9\n".encode(),
    b"\xff\xfe\x00",
]


@pytest.mark.parametrize("data", DOCUMENTS)
def test_same_value_or_error_as_pyyaml(data: bytes) -> None:
    mine, theirs = _outcome(yaml_loader(_keep), data), _outcome(_pyyaml, data)
    assert mine[0] == theirs[0]
    if mine[0] == "value":
        assert _typed(mine[1]) == _typed(theirs[1])
    else:
        assert mine[1] == theirs[1]


def test_versions_and_times_stay_text() -> None:
    record = yaml_loader(_keep)(DOCUMENTS[1])
    assert record == {"id": "PYSEC-1", "versions": ["1.10", "2.0"],
                      "modified": "2023-11-07T20:24:23Z", "count": "12"}


def test_an_alias_is_the_same_object_even_inside_itself() -> None:
    load = yaml_loader(_keep)
    shared = load(b"x: &a [1, 2]\ny: *a\n")
    assert shared["x"] is shared["y"]
    nested = load(b"x: &a\n  - *a\n")
    assert nested["x"][0] is nested["x"]


def test_every_real_yaml_file_loads_as_pyyaml_loads_it(shared_data: Path) -> None:
    files = sorted((shared_data / "osv").rglob("*.yaml"))[:300]
    assert files
    load = yaml_loader(_keep)
    for path in files:
        data = path.read_bytes()
        assert _typed(load(data)) == _typed(_pyyaml(data)), path
