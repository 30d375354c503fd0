"""The severity bands of DESIGN.md, at every boundary, and which CVSS metric is shown.

| score      | CVSS v2 | CVSS v3.x / v4 |
|------------|---------|----------------|
| 9.0 – 10.0 | High    | Critical       |
| 7.0 – 8.9  | High    | High           |
| 4.0 – 6.9  | Medium  | Medium         |
| 0.1 – 3.9  | Low     | Low            |
| 0.0        | Low     | None           |
"""

from __future__ import annotations

import pytest

from patchpilot.knowledge.cvss import metric_from_vector, preferred_metric, severity_band
from patchpilot.models import CvssMetric

# score -> (v2 band, v3.x / v4 band): both ends of every row of the table.
TABLE = {
    0.0: ("Low", "None"),
    0.1: ("Low", "Low"),
    3.9: ("Low", "Low"),
    4.0: ("Medium", "Medium"),
    6.9: ("Medium", "Medium"),
    7.0: ("High", "High"),
    8.9: ("High", "High"),
    9.0: ("High", "Critical"),
    10.0: ("High", "Critical"),
}


@pytest.mark.parametrize("score", sorted(TABLE))
@pytest.mark.parametrize("version", ["2.0", "3.0", "3.1", "4.0"])
def test_band_at_every_boundary(version: str, score: float) -> None:
    v2, newer = TABLE[score]
    assert severity_band(version, score) == (v2 if version == "2.0" else newer)


@pytest.mark.parametrize(("vector", "version", "score", "band"), [
    # Real vectors: Heartbleed (v2), Log4Shell (v3.1), a v3.0 and a v4.0 one, and the
    # all-None v3.1 / v4.0 vectors whose score is 0.0.
    ("AV:N/AC:L/Au:N/C:P/I:N/A:N", "2.0", 5.0, "Medium"),
    ("AV:N/AC:L/Au:N/C:C/I:C/A:C", "2.0", 10.0, "High"),  # v2 has no Critical
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", "3.1", 10.0, "Critical"),
    ("CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", "3.0", 8.8, "High"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", "3.1", 0.0, "None"),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", 9.3,
     "Critical"),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", "4.0", 0.0, "None"),
    ("(AV:N/AC:L/Au:N/C:N/I:N/A:N)", "2.0", 0.0, "Low"),  # v2's 0.0 is Low, not None
])
def test_metric_from_vector(vector: str, version: str, score: float, band: str) -> None:
    assert metric_from_vector(vector, "nvd@nist.gov") == CvssMetric(
        version=version, vector=vector, score=score, severity=band, source="nvd@nist.gov")


@pytest.mark.parametrize("vector", ["", "   ", "CVSS:3.1/AV:X", "not a vector"])
def test_invalid_vectors_give_no_metric(vector: str) -> None:
    assert metric_from_vector(vector) is None


def _m(version: str, source: str) -> CvssMetric:
    return CvssMetric(version=version, vector="", score=5.0, severity="Medium", source=source)


@pytest.mark.parametrize(("metrics", "shown"), [
    # v3.1 before v3.0 before v4.0 before v2, whatever the order given.
    ([_m("2.0", "nvd@nist.gov"), _m("4.0", "x"), _m("3.0", "x"), _m("3.1", "y")], 3),
    ([_m("2.0", "nvd@nist.gov"), _m("4.0", "x"), _m("3.0", "y")], 2),
    ([_m("2.0", "nvd@nist.gov"), _m("4.0", "y")], 1),
    # Of one version, NVD's own first, else the first given.
    ([_m("3.1", "secalert@redhat.com"), _m("3.1", "nvd@nist.gov"), _m("3.1", "redhat")], 1),
    ([_m("3.1", "GitHub_M"), _m("3.1", "redhat")], 0),
])
def test_preferred_metric(metrics: list[CvssMetric], shown: int) -> None:
    assert preferred_metric(metrics) is metrics[shown]


def test_no_metric_preferred_from_none() -> None:
    assert preferred_metric([]) is None
