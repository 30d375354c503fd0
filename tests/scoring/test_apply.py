"""The set-based re-prioritisation agrees with the pure function on every combination."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select, update

from patchpilot.clock import aware
from patchpilot.db.tables import asset_context, assets, finding_priority, findings, kev
from patchpilot.scoring.apply import active_config, reprioritise, save_config
from patchpilot.scoring.priority import (
    BANDS,
    PriorityInputs,
    default_config,
    due_date,
    parse_config,
    prioritise,
)

SEEN = datetime(2022, 3, 8, 9, 30, 15, 123456, tzinfo=UTC)
# Every value each input can take that changes the outcome, and some that must not.
CONTEXTS = [None, *itertools.product(
    (1, 2, 3, 4, None), ("internet-facing", "internal", "isolated", None),
    ("production", "development", None), (None, "", "WAF rule 942100"))]
VULNS = list(itertools.product((*BANDS, "Important", None), (False, True),
                               (None, 0.05, 0.1, 0.5)))
KEV_DUE = "2022-03-21"


def populate(engine: Engine) -> dict[int, PriorityInputs]:
    """One asset per context, one finding per vulnerability input on each: finding → inputs."""
    expected: dict[int, PriorityInputs] = {}
    with engine.begin() as conn:
        conn.execute(insert(kev), [{"cve": f"CVE-2000-{i:04d}", "date_added": "2022-03-07",
                                    "due_date": KEV_DUE, "ransomware": False}
                                   for i, v in enumerate(VULNS) if v[1]])
        for n, ctx in enumerate(CONTEXTS):
            asset_id = conn.execute(insert(assets).values(
                name=f"host-{n}", first_seen=SEEN, last_seen=SEEN).returning(
                assets.c.id)).scalar_one()
            if ctx is not None:
                tier, exposure, env, control = ctx
                conn.execute(insert(asset_context).values(
                    asset_id=asset_id, criticality=tier, exposure=exposure, environment=env,
                    compensating_control=control, source="cmdb-import", updated_at=SEEN))
            rows = [{"asset_id": asset_id, "vuln_id": f"CVE-2000-{i:04d}", "ecosystem": "PyPI",
                     "package": "pkg", "state": "open", "severity": sev,
                     "known_exploited": kev_, "epss_score": epss, "first_seen": SEEN,
                     "last_seen": SEEN, "times_reopened": 0, "new_from_feed": False,
                     "data": "{}"} for i, (sev, kev_, epss) in enumerate(VULNS)]
            ids = conn.execute(insert(findings).returning(findings.c.id), rows).scalars().all()
            for fid, (sev, kev_, epss) in zip(ids, VULNS, strict=True):
                tier, exposure, env, control = ctx or (None, None, None, None)
                expected[int(fid)] = PriorityInputs(sev, kev_, epss, ctx is not None, tier,
                                                    exposure, env, control)
    return expected


def _stored(engine: Engine) -> dict[int, tuple[int, str, str, datetime | None]]:
    with engine.connect() as conn:
        return {r.finding_id: (r.priority, r.reason, r.method, aware(r.due_date))
                for r in conn.execute(select(finding_priority))}


@pytest.mark.parametrize("method", ["matrix", "ssvc"])
def test_sql_agrees_with_python_on_every_combination(engine: Engine, method: str) -> None:
    expected = populate(engine)
    config = dataclasses.replace(default_config(), method=method)
    with engine.begin() as conn:
        assert reprioritise(conn, config) == len(expected) == 181 * 64
    stored = _stored(engine)
    assert len(stored) == len(expected)
    for fid, inputs in expected.items():
        want = prioritise(inputs, config)
        kev_due = KEV_DUE if inputs.known_exploited else None
        assert stored[fid] == (want.priority, want.stored, method,
                               due_date(want.priority, SEEN, config, kev_due=kev_due)), inputs
    # Unchanged inputs: nothing is written again.
    with engine.begin() as conn:
        assert reprioritise(conn, config) == 0


def test_changing_the_matrix_reprioritises_open_findings_only(engine: Engine) -> None:
    expected = populate(engine)
    with engine.begin() as conn:
        reprioritise(conn)
        fixed_id = min(expected)
        conn.execute(update(findings).where(findings.c.id == fixed_id).values(
            state="fixed", fixed_at=SEEN + timedelta(days=1)))
    before = _stored(engine)
    stricter = parse_config("matrix:\n  Low: [1, 1, 1, 1]\n  Medium: [1, 1, 1, 1]\n"
                            "  High: [1, 1, 1, 1]\n  Critical: [1, 1, 1, 1]\n"
                            "  Unknown: [1, 1, 1, 1]\n  None: [1, 1, 1, 1]\n"
                            "sla_days: {1: 3}\n")
    with engine.begin() as conn:
        changed = save_config(conn, stricter, "sato")
        assert active_config(conn) == stricter
    after = _stored(engine)
    assert changed == sum(after[f] != before[f] for f in after) > 0
    assert after[fixed_id] == before[fixed_id]  # a fixed finding keeps its priority
    assert all(p == 1 for f, (p, *_) in after.items()
               if f != fixed_id and not expected[f].compensating_control
               and (expected[f].environment != "development"))


def test_one_asset(engine: Engine) -> None:
    expected = populate(engine)
    with engine.begin() as conn:
        asset = conn.execute(select(findings.c.asset_id).where(
            findings.c.id == min(expected))).scalar_one()
        assert reprioritise(conn, asset_id=asset) == len(VULNS)
