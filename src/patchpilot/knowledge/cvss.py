"""CVSS scores computed from vectors, and the severity bands of DESIGN.md.

Scores are never taken on trust from a feed: the vector is what the record publishes, and
the score is computed from it with the ``cvss`` library (FIRST's formulas for v2, v3.x
and v4).  The band follows exactly this table:

=========== ======== ==============
score       CVSS v2  CVSS v3.x / v4
=========== ======== ==============
9.0 – 10.0  High     Critical
7.0 – 8.9   High     High
4.0 – 6.9   Medium   Medium
0.1 – 3.9   Low      Low
0.0         Low      None
=========== ======== ==============
"""

from __future__ import annotations

from functools import lru_cache

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from patchpilot.models import CvssMetric

SEVERITY_ORDER = {"Critical": 4, "High": 3, "Medium": 2, "Low": 1, "None": 0, "Unknown": -1}


def severity_band(version: str, score: float) -> str:
    """The severity band of a score under one CVSS version (table above)."""
    if version.startswith("2"):
        if score >= 7.0:
            return "High"
        if score >= 4.0:
            return "Medium"
        return "Low"
    if score >= 9.0:
        return "Critical"
    if score >= 7.0:
        return "High"
    if score >= 4.0:
        return "Medium"
    if score >= 0.1:
        return "Low"
    return "None"


def vector_version(vector: str) -> str:
    """The CVSS version a vector is written in (v2 vectors carry no prefix)."""
    if vector.startswith("CVSS:4.0/"):
        return "4.0"
    if vector.startswith("CVSS:3.1/"):
        return "3.1"
    if vector.startswith("CVSS:3.0/"):
        return "3.0"
    return "2.0"


@lru_cache(maxsize=65536)
def _score(vector: str) -> tuple[str, float] | None:
    version = vector_version(vector)
    try:
        if version == "4.0":
            return version, float(CVSS4(vector).base_score)
        if version.startswith("3"):
            return version, float(CVSS3(vector).scores()[0])
        # v2 vectors are sometimes published wrapped in parentheses or with a prefix.
        bare = vector.strip("()")
        bare = bare[len("CVSS:2.0/"):] if bare.startswith("CVSS:2.0/") else bare
        return version, float(CVSS2(bare).scores()[0])
    except (CVSSError, ValueError, KeyError, IndexError, TypeError):
        return None


def metric_from_vector(vector: str, source: str = "") -> CvssMetric | None:
    """A CvssMetric computed from a vector, or None when the vector is not valid CVSS."""
    vector = (vector or "").strip()
    if not vector:
        return None
    scored = _score(vector)
    if scored is None:
        return None
    version, score = scored
    return CvssMetric(version=version, vector=vector, score=score,
                      severity=severity_band(version, score), source=source)


# Which metric stands for a vulnerability when a record carries several: v3.x is what
# NVD, KEV and most scanners rank by today; v4 next (few records carry it yet), v2 last.
_VERSION_PREFERENCE = {"3.1": 0, "3.0": 1, "4.0": 2, "2.0": 3}


def preferred_metric(metrics: tuple[CvssMetric, ...] | list[CvssMetric]) -> CvssMetric | None:
    """The metric to show and rank by: the newest v3.x, then v4, then v2; NVD's first."""
    if not metrics:
        return None
    return min(metrics, key=lambda m: (_VERSION_PREFERENCE.get(m.version, 9),
                                       0 if m.source.startswith("nvd") else 1))
