"""The pure priority function: the shipped matrix, SSVC, and properties over every input."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchpilot.scoring.priority import (
    BAND_ORDER,
    BANDS,
    DEPLOYER_TABLE,
    PriorityConfigError,
    PriorityInputs,
    default_config,
    due_date,
    parse_config,
    prioritise,
)

CONFIG = default_config()
SSVC = dataclasses.replace(CONFIG, method="ssvc")

inputs = st.builds(
    PriorityInputs,
    severity=st.sampled_from([*BANDS, None, "Important"]),
    known_exploited=st.booleans(),
    epss=st.one_of(st.none(), st.floats(0, 1)),
    has_context=st.booleans(),
    criticality=st.one_of(st.none(), st.sampled_from([1, 2, 3, 4, 7])),
    exposure=st.sampled_from([None, "internet-facing", "Internet-Facing", "internal",
                              "isolated"]),
    environment=st.sampled_from([None, "production", "staging", "development"]),
    compensating_control=st.sampled_from([None, "", "WAF rule 942100"]),
)


def test_the_same_vulnerability_is_p1_on_a_dmz_server_and_p4_on_a_dev_box() -> None:
    # CVE-2022-26485 (firefox, ALSA-2022:0818): Critical with a public exploit.
    dmz = PriorityInputs("Critical", epss=0.02, has_context=True, criticality=1,
                         exposure="internet-facing", environment="production")
    dev = PriorityInputs("Critical", epss=0.02, has_context=True, criticality=4,
                         exposure="isolated", environment="development")
    assert prioritise(dmz).reason == "P1: Critical × tier 1; internet-facing"
    assert prioritise(dev).reason == "P4: Critical × tier 4; development"


def test_walkthrough_reason() -> None:
    found = prioritise(PriorityInputs("Critical", known_exploited=True, has_context=True,
                                      criticality=1, exposure="internet-facing"))
    assert (found.priority, found.reason, found.method) == (
        1, "P1: Critical × tier 1; known exploited; internet-facing", "matrix")


def test_unknown_asset_takes_the_default_tier_and_says_so() -> None:
    found = prioritise(PriorityInputs("High"))
    assert found.reason == "P3: High × tier 3 (unknown asset)"
    found = prioritise(PriorityInputs("High", has_context=True, criticality=None))
    assert found.reason == "P3: High × tier 3 (tier unknown)"


def test_modifiers_add_up() -> None:
    base = PriorityInputs("Medium", has_context=True, criticality=3, environment="production")
    assert prioritise(base).priority == 3
    assert prioritise(dataclasses.replace(base, epss=0.5, exposure="internet-facing")
                      ).priority == 1
    assert prioritise(dataclasses.replace(base, compensating_control="no SMB from outside")
                      ).reason == "P4: Medium × tier 3; compensating control"
    # EPSS exactly at the threshold is not above it.
    assert prioritise(dataclasses.replace(base, epss=0.1)).priority == 3


def test_kev_floor() -> None:
    low = PriorityInputs("Low", True, has_context=True, environment="development",
                         compensating_control="x")
    assert prioritise(dataclasses.replace(low, criticality=4)).priority == 2
    assert prioritise(dataclasses.replace(low, criticality=2)).priority == 1


def test_sla_due_dates_and_the_kev_date() -> None:
    seen = datetime(2022, 3, 8, 9, 30, tzinfo=UTC)
    assert [due_date(p, seen).date().isoformat() for p in (1, 2, 3, 4)] == [
        "2022-03-15", "2022-04-07", "2022-06-06", "2022-09-04"]
    # CVE-2022-26485 entered KEV on 2022-03-07 with due date 2022-03-21: earlier than P2's.
    assert due_date(2, seen, kev_due="2022-03-21") == datetime(2022, 3, 22, tzinfo=UTC)
    assert due_date(1, seen, kev_due="2022-03-21") == datetime(2022, 3, 15, 9, 30, tzinfo=UTC)
    off = dataclasses.replace(CONFIG, kev_due_date=False)
    assert due_date(2, seen, off, kev_due="2022-03-21").date().isoformat() == "2022-04-07"


def test_config_is_validated() -> None:
    with pytest.raises(PriorityConfigError, match="matrix.Critical: tier 1"):
        parse_config("matrix:\n  Critical: [2, 1, 1, 1]\n")
    with pytest.raises(PriorityConfigError, match="matrix.High: tier 1 .* below Medium"):
        parse_config("matrix:\n  High: [3, 3, 3, 4]\n")
    with pytest.raises(PriorityConfigError, match="method"):
        parse_config("method: cvss\n")
    with pytest.raises(PriorityConfigError, match="sla_days.1"):
        parse_config("sla_days: {1: -3}\n")
    changed = parse_config("sla_days: {1: 3}\nmatrix:\n  Low: [2, 3, 4, 4]\n")
    assert changed.sla_days == {1: 3, 2: 30, 3: 90, 4: 180}
    assert changed.matrix["Low"] == (2, 3, 4, 4)
    assert parse_config(changed.to_yaml()) == changed


def test_ssvc_deployer_table_rows() -> None:
    assert len(DEPLOYER_TABLE) == 72
    # Rows of CERT/CC's table (deployer_dt.py): first, last, and a few in between.
    assert DEPLOYER_TABLE[("none", "small", "no", "low")] == "Defer"
    assert DEPLOYER_TABLE[("none", "open", "yes", "very high")] == "Out-of-Cycle"
    assert DEPLOYER_TABLE[("PoC", "open", "no", "low")] == "Scheduled"
    assert DEPLOYER_TABLE[("active", "open", "no", "very high")] == "Immediate"
    assert DEPLOYER_TABLE[("active", "open", "yes", "high")] == "Immediate"
    assert DEPLOYER_TABLE[("active", "small", "no", "low")] == "Scheduled"
    found = prioritise(PriorityInputs("Critical", True, has_context=True, criticality=1,
                                      exposure="internet-facing"), SSVC)
    assert found.reason == ("P1: SSVC Immediate (exploitation active, exposure open, "
                            "automatable yes, human impact very high)")


@given(inputs, st.sampled_from([CONFIG, SSVC]))
def test_deterministic(given_inputs: PriorityInputs, config) -> None:  # type: ignore[no-untyped-def]
    first = prioritise(given_inputs, config)
    assert first == prioritise(dataclasses.replace(given_inputs), config)
    assert first.reason.startswith(f"P{first.priority}: ")
    assert first.priority in (1, 2, 3, 4)


def _rank(band: str | None) -> int:
    return BAND_ORDER.index(band) if band in BAND_ORDER else -1


@given(inputs, st.sampled_from(BAND_ORDER), st.sampled_from([1, 2, 3, 4]),
       st.sampled_from([CONFIG, SSVC]))
def test_raising_severity_or_criticality_never_lowers(  # type: ignore[no-untyped-def]
        given_inputs: PriorityInputs, band: str, tier: int, config) -> None:
    base = dataclasses.replace(given_inputs, has_context=True, criticality=tier, severity=band)
    p = prioritise(base, config).priority
    for higher in BAND_ORDER[BAND_ORDER.index(band):]:
        assert prioritise(dataclasses.replace(base, severity=higher), config).priority <= p
    for more_critical in range(1, tier + 1):
        assert prioritise(dataclasses.replace(base, criticality=more_critical),
                          config).priority <= p


@given(inputs)
def test_kev_floor_holds_whatever_else(given_inputs: PriorityInputs) -> None:
    found = prioritise(dataclasses.replace(given_inputs, known_exploited=True))
    assert found.priority <= 2
    if given_inputs.has_context and given_inputs.criticality in (1, 2):
        assert found.priority == 1
    assert "; known exploited" in found.reason
    # Known exploited never ranks below the same finding not known exploited.
    assert found.priority <= prioritise(dataclasses.replace(given_inputs,
                                                            known_exploited=False)).priority


# The shipped matrix, every cell, as the module docstring and priority.yaml print it.  The
# properties above hold for any monotone matrix, so without this table a changed cell
# (Medium × tier 2 → P2, say) would pass every other test.
SHIPPED_MATRIX = {
    "Critical": (1, 1, 2, 3),
    "High": (1, 2, 3, 3),
    "Medium": (2, 3, 3, 4),
    "Low": (3, 4, 4, 4),
    "None": (4, 4, 4, 4),
    "Unknown": (2, 3, 3, 4),
}


@pytest.mark.parametrize("band", sorted(SHIPPED_MATRIX))
@pytest.mark.parametrize("tier", [1, 2, 3, 4])
def test_every_cell_of_the_shipped_matrix(band: str, tier: int) -> None:
    # An internal production server with no exploit evidence: no modifier applies, so the
    # priority is the cell itself and the reason names it.
    severity = None if band == "Unknown" else band
    found = prioritise(PriorityInputs(severity, epss=0.0, has_context=True, criticality=tier,
                                      exposure="internal", environment="production"))
    want = SHIPPED_MATRIX[band][tier - 1]
    assert (found.priority, found.reason) == (want, f"P{want}: {band} × tier {tier}")
