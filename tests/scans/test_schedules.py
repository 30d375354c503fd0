"""Schedules and windows on the time line: cron and RRULE in time zones, across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from patchpilot.scans.schedules import (
    MaintenanceWindow,
    ScheduleError,
    is_allowed,
    next_allowed,
    next_run,
    parse_duration,
    validate_schedule,
    zone,
)

TOKYO = "Asia/Tokyo"
BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def runs(kind: str, expression: str, tz: str, after: datetime, n: int) -> list[datetime]:
    out: list[datetime] = []
    for _ in range(n):
        found = next_run(kind, expression, tz, after)
        assert found is not None
        out.append(found)
        after = found
    return out


# --- cron ----------------------------------------------------------------------------------

def test_cron_in_tokyo_ignores_europes_dst_change() -> None:
    # Saturday 02:00 JST is Friday 17:00 UTC, before and after Berlin springs forward
    # (2024-03-31): Japan keeps +09:00 all year.
    found = runs("cron", "0 2 * * 6", TOKYO, utc(2024, 3, 25), 3)
    assert found == [utc(2024, 3, 29, 17), utc(2024, 4, 5, 17), utc(2024, 4, 12, 17)]
    assert {f.astimezone(zone(TOKYO)).strftime("%a %H:%M") for f in found} == {"Sat 02:00"}


def test_cron_in_berlin_keeps_wall_time_across_spring_forward() -> None:
    found = runs("cron", "0 1 * * *", BERLIN, utc(2024, 3, 29, 12), 4)
    # 01:00 CET is 00:00 UTC; from 31 March 01:00 CEST is 23:00 UTC the day before.
    assert found == [utc(2024, 3, 30, 0), utc(2024, 3, 31, 0), utc(2024, 3, 31, 23),
                     utc(2024, 4, 1, 23)]


def test_cron_in_the_spring_forward_gap_runs_late_not_never() -> None:
    # 02:30 does not exist in Berlin on 2024-03-31: the run moves on by the gap (03:30).
    found = runs("cron", "30 2 * * *", BERLIN, utc(2024, 3, 30, 12), 2)
    assert found == [utc(2024, 3, 31, 1, 30), utc(2024, 4, 1, 0, 30)]
    assert found[0].astimezone(zone(BERLIN)).strftime("%H:%M %Z") == "03:30 CEST"


def test_cron_in_the_repeated_autumn_hour_runs_once() -> None:
    # 02:30 happens twice in Berlin on 2024-10-27; the schedule fires at the first only.
    found = runs("cron", "30 2 * * *", BERLIN, utc(2024, 10, 26, 12), 2)
    assert found == [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]


def test_next_run_is_strictly_after() -> None:
    assert next_run("cron", "0 2 * * 6", TOKYO, utc(2024, 3, 29, 17)) == utc(2024, 4, 5, 17)


# --- RRULE ---------------------------------------------------------------------------------

def test_rrule_weekly_in_tokyo() -> None:
    found = runs("rrule", "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0;BYSECOND=0", TOKYO,
                 utc(2024, 3, 25), 2)
    assert found == [utc(2024, 3, 29, 17), utc(2024, 4, 5, 17)]


def test_rrule_daily_in_berlin_across_both_dst_changes() -> None:
    rule = "RRULE:FREQ=DAILY;BYHOUR=3;BYMINUTE=15"
    spring = runs("rrule", rule, BERLIN, utc(2024, 3, 30, 12), 2)
    assert spring == [utc(2024, 3, 31, 1, 15), utc(2024, 4, 1, 1, 15)]
    autumn = runs("rrule", rule, BERLIN, utc(2024, 10, 26, 12), 2)
    assert autumn == [utc(2024, 10, 27, 2, 15), utc(2024, 10, 28, 2, 15)]


def test_rrule_with_its_own_dtstart_and_interval() -> None:
    # Every other Monday from 8 January 2024, 04:00 Berlin wall time.
    rule = "DTSTART:20240108T040000\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO"
    assert runs("rrule", rule, BERLIN, utc(2024, 1, 9), 2) == [utc(2024, 1, 22, 3),
                                                               utc(2024, 2, 5, 3)]


def test_rrule_that_ended_never_runs_again() -> None:
    rule = "DTSTART:20240101T000000\nRRULE:FREQ=DAILY;COUNT=2"
    assert next_run("rrule", rule, "UTC", utc(2024, 6, 1)) is None


@pytest.mark.parametrize(("kind", "expression", "tz", "field"), [
    ("cron", "61 * * * *", "UTC", "expression"),
    ("cron", "0 2 * * 6", "Mars/Olympus", "timezone"),
    ("rrule", "FREQ=SOMETIMES", "UTC", "expression"),
    ("weekly", "0 2 * * 6", "UTC", "kind"),
])
def test_bad_schedules_name_their_field(kind: str, expression: str, tz: str, field: str
                                        ) -> None:
    with pytest.raises(ScheduleError, match=f"^{field}:"):
        validate_schedule(kind, expression, tz)


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run("cron", "0 2 * * 6", TOKYO, datetime(2024, 1, 1))


# --- windows and blackouts -----------------------------------------------------------------

SATURDAY_NIGHT = MaintenanceWindow(TOKYO, rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=1",
                                   duration=timedelta(hours=4))
# The last day of every month, all day, Berlin time: month-end closing.
MONTH_END = MaintenanceWindow(BERLIN, rrule="FREQ=MONTHLY;BYMONTHDAY=-1",
                              duration=timedelta(days=1))


@pytest.mark.parametrize(("moment", "inside"), [
    (utc(2024, 6, 7, 15, 59, 59), False),  # Sat 00:59:59 JST
    (utc(2024, 6, 7, 16), True),  # Sat 01:00 JST, the start is inside
    (utc(2024, 6, 7, 19, 59, 59), True),  # Sat 04:59:59 JST
    (utc(2024, 6, 7, 20), False),  # Sat 05:00 JST, the end is outside
    (utc(2024, 6, 8, 16, 30), False),  # Sun 01:30 JST
])
def test_saturday_window_in_tokyo(moment: datetime, inside: bool) -> None:
    assert is_allowed(moment, [SATURDAY_NIGHT], []) is inside


def test_no_windows_means_any_time_but_blackouts() -> None:
    assert is_allowed(utc(2024, 6, 5, 3), [], []) is True
    # 30 June 2024 is the last day of the month: all of it (Berlin time) is blacked out.
    # Local midnight starting 30 June is 29 June 22:00 UTC (CEST, +02:00).
    assert is_allowed(utc(2024, 6, 29, 21, 59, 59), [], [MONTH_END]) is True
    assert is_allowed(utc(2024, 6, 29, 22), [], [MONTH_END]) is False
    assert is_allowed(utc(2024, 6, 30, 21, 59), [], [MONTH_END]) is False
    assert is_allowed(utc(2024, 6, 30, 22), [], [MONTH_END]) is True


def test_month_end_blackout_follows_month_lengths() -> None:
    starts = [s for s, _ in MONTH_END.periods(utc(2024, 1, 1), utc(2024, 4, 1))]
    # 31 Jan, 29 Feb (leap year), 31 Mar -- at local midnight (CET, +01:00).
    assert starts == [utc(2024, 1, 30, 23), utc(2024, 2, 28, 23), utc(2024, 3, 30, 23)]


def test_next_allowed_waits_for_the_next_window() -> None:
    # Wednesday 5 June 2024 -> Saturday 8 June 01:00 JST.
    assert next_allowed(utc(2024, 6, 5, 3), [SATURDAY_NIGHT], []) == utc(2024, 6, 7, 16)
    # Inside a window: now.
    assert next_allowed(utc(2024, 6, 7, 17), [SATURDAY_NIGHT], []) == utc(2024, 6, 7, 17)


def test_next_allowed_skips_a_window_that_is_blacked_out() -> None:
    # A blackout of all of Saturday 29 June (Tokyo): that week's window is lost, the scan
    # waits for Saturday 6 July 01:00 JST.
    blackout = MaintenanceWindow(TOKYO, starts_at=utc(2024, 6, 28, 15),
                                 ends_at=utc(2024, 6, 29, 15))
    assert next_allowed(utc(2024, 6, 27), [SATURDAY_NIGHT], [blackout]) == utc(2024, 7, 5, 16)


def test_next_allowed_resumes_in_the_middle_of_a_window() -> None:
    # A blackout covering the first two hours of the window: the scan starts at 03:00 JST.
    blackout = MaintenanceWindow(TOKYO, starts_at=utc(2024, 6, 7, 16),
                                 ends_at=utc(2024, 6, 7, 18))
    assert next_allowed(utc(2024, 6, 5), [SATURDAY_NIGHT], [blackout]) == utc(2024, 6, 7, 18)


def test_next_allowed_after_a_month_end_blackout() -> None:
    assert next_allowed(utc(2024, 6, 30, 12), [], [MONTH_END]) == utc(2024, 6, 30, 22)


def test_next_allowed_is_none_when_every_window_is_blacked_out() -> None:
    always = MaintenanceWindow("UTC", starts_at=utc(2000, 1, 1), ends_at=utc(2100, 1, 1))
    assert next_allowed(utc(2024, 6, 5), [SATURDAY_NIGHT], [always]) is None


def test_window_across_berlin_dst_lasts_its_duration() -> None:
    # A daily 02:00 window of 2 hours, on the night Berlin falls back: it starts at
    # 02:00 CEST (00:00 UTC) and lasts two elapsed hours.
    window = MaintenanceWindow(BERLIN, rrule="FREQ=DAILY;BYHOUR=2", duration=timedelta(hours=2))
    [(start, end)] = list(window.periods(utc(2024, 10, 27, 0), utc(2024, 10, 27, 1)))
    assert (start, end) == (utc(2024, 10, 27, 0), utc(2024, 10, 27, 2))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rrule": "FREQ=DAILY"}, "duration"),
    ({}, "a window needs"),
    ({"starts_at": utc(2024, 1, 2), "ends_at": utc(2024, 1, 1)}, "ends_at"),
    ({"rrule": "FREQ=DAILY", "duration": timedelta(hours=1), "starts_at": utc(2024, 1, 1),
      "ends_at": utc(2024, 1, 2)}, "not both"),
])
def test_bad_windows_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        MaintenanceWindow("UTC", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "expected"), [
    ("4h", timedelta(hours=4)), ("90m", timedelta(minutes=90)),
    ("1h30m", timedelta(minutes=90)), ("2d", timedelta(days=2)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "4", "4x", "0h", "h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ScheduleError, match="duration"):
        parse_duration(text)
