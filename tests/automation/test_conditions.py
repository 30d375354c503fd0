"""The fast condition evaluation gives celpy's answers: results kept by the fields read,
clauses split at ``&&`` / ``||``, plain comparisons in Python -- checked against celpy on
the whole context for generated events (nulls, ints against doubles, lists, details)."""

from __future__ import annotations

from typing import Any

import celpy
from hypothesis import given, settings
from hypothesis import strategies as st

from patchpilot.automation.conditions import (
    Condition,
    Table,
    condition_paths,
    fast_path,
    flat,
)
from patchpilot.automation.context import activation
from patchpilot.automation.playbook import compile_condition

CONDITIONS = [
    'finding.severity == "Critical" && asset.criticality <= 2',
    'finding.severity == "Critical" && asset.criticality == 1 '
    '&& asset.exposure == "internet-facing"',
    "finding.known_exploited && asset.exposure == \"internet-facing\"",
    "finding.epss_score >= 0.5 && finding.severity == \"Critical\"",
    '"site-1" in asset.groups && finding.severity in ["Critical", "High"]',
    "finding.priority == 1 || finding.priority <= 2",
    "finding.cvss_score >= 9.5 && asset.criticality == 1",
    "finding.cvss_score >= 9 || asset.criticality == 1.0",  # int vs double: celpy errors
    'finding.vuln_id.startsWith("CVE-2024-1")',
    '"pci" in asset.tags && finding.priority == 1 && finding.known_exploited',
    'asset.name.endsWith("7") && finding.severity == "High"',
    '!(finding.severity == "Low") && (asset.owner == null || asset.owner.contains("@"))',
    "finding.severity == asset.environment",
    'asset.tags.exists(t, t == "web") ? finding.priority == 1 : false',
    "event.detail.new > 10",
    "has(event.detail.new) && event.detail.new > 1",
    'event.kind == "new" && 3 < finding.priority',
    "true == finding.known_exploited",
    "finding.priority",  # not a boolean: never a match
    "size(asset.groups) > 1 || finding.epss_score > 0.9",
    "finding.priority != null && finding.priority <= 2",
    "asset.owner == null || finding.cvss_score == 9.7",
]

maybe = st.one_of
texts = st.sampled_from(["Critical", "High", "Low", "production", "a@b", "host-17", None])
numbers = maybe(st.none(), st.integers(-2, 5), st.sampled_from([0.0, 0.5, 9.0, 9.7, 1.0]))
names = st.lists(st.sampled_from(["site-1", "site-2", "pci", "web"]), max_size=3)
details = maybe(st.none(), st.fixed_dictionaries({}, optional={
    "new": maybe(st.integers(0, 20), st.just(1.0), st.just(True))}))


@st.composite
def contexts(draw: Any) -> dict[str, Any]:
    return {
        "event": {"id": 1, "kind": draw(st.sampled_from(["new", "fixed"])),
                  "at": "2026-03-02T23:00:00+00:00", "producer": "matcher",
                  "detail": draw(details)},
        "finding": {"id": 2, "vuln_id": draw(st.sampled_from(
                        ["CVE-2024-1", "CVE-2024-17", "CVE-2023-1", None])),
                    "severity": draw(texts), "cvss_score": draw(numbers),
                    "known_exploited": draw(maybe(st.booleans(), st.none())),
                    "epss_score": draw(numbers), "state": "open", "package": "p",
                    "ecosystem": "PyPI", "priority": draw(numbers)},
        "asset": {"id": 3, "name": draw(texts), "criticality": draw(numbers),
                  "exposure": draw(st.sampled_from(["internet-facing", "internal", None])),
                  "environment": draw(texts), "owner": draw(texts), "groups": draw(names),
                  "tags": draw(names)},
    }


def celpy_answer(expression: str, context: dict[str, Any]) -> bool | None:
    # The whole condition, compiled as a playbook's is, on the whole context.
    try:
        hit = compile_condition(expression).evaluate(activation(context))
    except celpy.CELEvalError:
        return None
    return bool(hit) if isinstance(hit, bool | celpy.celtypes.BoolType) else None


@settings(max_examples=80, deadline=None)
@given(st.lists(contexts(), min_size=1, max_size=12))
def test_every_condition_answers_as_celpy(events: list[dict[str, Any]]) -> None:
    for expression in CONDITIONS:
        compiled = Condition(expression)
        expected = [celpy_answer(expression, c) for c in events]
        one_by_one = [compiled.test(flat(c, compiled.keys), c) for c in events]
        table = Table.of(dict(enumerate(events)), compiled.keys)
        assert one_by_one == expected, expression
        assert compiled.test_many(table, list(range(len(events)))) == expected, expression


def test_the_fields_a_condition_reads() -> None:
    assert condition_paths('finding.severity == "High" && "dmz" in asset.groups') == (
        ("asset", "groups"), ("finding", "severity"))
    # A root used other than by a field: the whole root.
    assert condition_paths('finding["severity"] == "High" && finding.priority == 1') == (
        ("finding", None),)
    assert condition_paths("event.detail.new > 10") == (("event", "detail"),)
    assert condition_paths("true") == ()


def test_the_shapes_of_the_fast_path() -> None:
    values = {"finding.severity": "High", "finding.priority": None,
              "asset.tags": ("web",), "finding.cvss_score": 9.5}
    assert fast_path('finding.severity == "High"')(values) is True  # type: ignore[misc]
    assert fast_path('"High" != finding.severity')(values) is False  # type: ignore[misc]
    assert fast_path('"web" in asset.tags')(values) is True  # type: ignore[misc]
    assert fast_path('finding.severity in ["Low", "High"]')(values) is True  # type: ignore[misc]
    assert fast_path("finding.cvss_score > 9.0")(values) is True  # type: ignore[misc]
    # A null, or an int against a double, is left to celpy.
    assert fast_path("finding.priority == 1")(values) is not True  # type: ignore[misc]
    assert fast_path("finding.cvss_score > 9")(values) not in (True, False)  # type: ignore[misc]
    assert fast_path("finding.priority == 1 ? true : false") is None
    assert fast_path('finding.severity == r"High"') is None
