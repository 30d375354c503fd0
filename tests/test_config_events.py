"""The settings of the noticed events (issue 15): the SLA warning period and the EPSS
thresholds, their defaults and the errors that name their variable."""

from __future__ import annotations

import pytest

from patchpilot.config import load_settings
from patchpilot.errors import ConfigError

HOME = {"PATCHPILOT_HOME": "/srv/pp"}


def test_defaults_and_values() -> None:
    settings = load_settings(HOME)
    assert (settings.sla_warning_days, settings.epss_thresholds) == (3, (0.1, 0.5, 0.9))
    given = load_settings({**HOME, "PATCHPILOT_SLA_WARNING_DAYS": "7",
                           "PATCHPILOT_EPSS_THRESHOLDS": " 0.9, 0.05,0.5,0.9"})
    # Sorted, each once.
    assert (given.sla_warning_days, given.epss_thresholds) == (7, (0.05, 0.5, 0.9))
    off = load_settings({**HOME, "PATCHPILOT_SLA_WARNING_DAYS": "0",
                         "PATCHPILOT_EPSS_THRESHOLDS": "OFF"})
    assert (off.sla_warning_days, off.epss_thresholds) == (0, ())


@pytest.mark.parametrize(("name", "value", "message"), [
    ("PATCHPILOT_SLA_WARNING_DAYS", "3d",
     "PATCHPILOT_SLA_WARNING_DAYS: '3d' is not a whole number of days (0 or more)"),
    ("PATCHPILOT_EPSS_THRESHOLDS", "0.1,high",
     "PATCHPILOT_EPSS_THRESHOLDS: 'high' is not an EPSS score above 0 and at most 1 "
     "(e.g. 0.1,0.5,0.9; off: none)"),
    ("PATCHPILOT_EPSS_THRESHOLDS", "0,0.5",
     "PATCHPILOT_EPSS_THRESHOLDS: '0' is not an EPSS score above 0 and at most 1 "
     "(e.g. 0.1,0.5,0.9; off: none)"),
    ("PATCHPILOT_EPSS_THRESHOLDS", "50",
     "PATCHPILOT_EPSS_THRESHOLDS: '50' is not an EPSS score above 0 and at most 1 "
     "(e.g. 0.1,0.5,0.9; off: none)"),
    ("PATCHPILOT_EPSS_THRESHOLDS", "nan",
     "PATCHPILOT_EPSS_THRESHOLDS: 'nan' is not an EPSS score above 0 and at most 1 "
     "(e.g. 0.1,0.5,0.9; off: none)"),
])
def test_a_bad_value_names_its_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**HOME, name: value})
    assert str(caught.value) == message
