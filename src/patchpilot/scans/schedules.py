"""Pure time logic of scan schedules, maintenance windows and blackout periods.

A schedule is a cron expression (``croniter``) or an RFC 5545 RRULE (``dateutil.rrule``),
read in its own IANA time zone (``zoneinfo``): ``0 2 * * 6`` in Asia/Tokyo means 02:00
Saturday on Tokyo's wall clock, whatever the server's zone.  Expressions are iterated on
the *wall clock* (naive local times) and each occurrence is then placed on the time line,
which is what makes daylight-saving changes come out right:

* a wall time that does not exist (the spring-forward gap, 02:30 in Berlin on the last
  Sunday of March) is moved forward by the length of the gap (03:30 CEST) -- the job is
  late, never skipped;
* a wall time that exists twice (the autumn fall-back) fires once, at its first
  occurrence (``fold=0``), as cron on Linux does.

A maintenance window (scans only inside) or blackout period (never during) is either
recurring -- an RRULE giving each start plus an elapsed duration -- or one absolute
period.  ``is_allowed`` and ``next_allowed`` combine a group's windows and blackouts.
Every datetime going in must be timezone-aware; every datetime coming out is UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from dateutil.rrule import rrule, rrulestr

from patchpilot.errors import InvalidInput

CRON, RRULE = "cron", "rrule"
KINDS = (CRON, RRULE)
WINDOW, BLACKOUT = "window", "blackout"

# An RRULE without its own DTSTART is anchored here (a Monday at local midnight): a fixed
# anchor keeps INTERVAL>1 rules and defaulted BYMINUTE/BYSECOND (taken from DTSTART by
# RFC 5545) the same on every server and every restart.
RRULE_ANCHOR = datetime(2020, 1, 6)
# Wall-clock iteration starts this far before the moment asked about, so that an
# occurrence moved by a DST gap, or one in the repeated hour, is not missed.
_SLACK = timedelta(hours=3)
# How many candidate occurrences to try before declaring a rule never fires again.
_MAX_CANDIDATES = 10_000
# next_allowed looks this far ahead for a window before giving up.
DEFAULT_HORIZON = timedelta(days=400)

_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*$", re.I)


class ScheduleError(InvalidInput):
    """A schedule, window or time zone that cannot be used (says which field and why)."""


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ScheduleError when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"timezone: {name!r} is not an IANA time zone "
                            "(such as Asia/Tokyo or Europe/Berlin)") from exc


def parse_duration(text: str) -> timedelta:
    """``4h``, ``90m``, ``1h30m``, ``2d`` as a timedelta; ScheduleError otherwise."""
    found = _DURATION.match(text)
    if found is None or not any(found.groups()):
        raise ScheduleError(f"duration: {text!r} is not like 4h, 90m, 1h30m or 2d")
    days, hours, minutes = (int(g or 0) for g in found.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes)
    if duration <= timedelta(0):
        raise ScheduleError(f"duration: {text!r} must be longer than zero")
    return duration


def _require_aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment!r}")
    return moment


def _place(wall: datetime, tz: ZoneInfo) -> datetime:
    """A naive wall-clock time in ``tz`` as a UTC instant (fold=0: see the module doc)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _first_after(walls: Iterable[datetime], tz: ZoneInfo, after: datetime) -> datetime | None:
    """The first wall time of ``walls`` (ascending) that lands strictly after ``after``."""
    for count, wall in enumerate(walls):
        if count >= _MAX_CANDIDATES:
            break
        moment = _place(wall, tz)
        if moment > after:
            return moment
    return None


def _parse_rrule(expression: str) -> rrule:
    """The rule of an RRULE expression (``FREQ=…`` or with DTSTART/RRULE lines).

    A DTSTART in the text is read as a wall time of the schedule's zone (its own TZID is
    ignored: the schedule's ``timezone`` field is the one authority).
    """
    text = expression.strip()
    if not text:
        raise ScheduleError("expression: an empty RRULE")
    try:
        if "DTSTART" in text.upper():
            rule = rrulestr(text, ignoretz=True)
        else:
            body = text[6:] if text.upper().startswith("RRULE:") else text
            rule = rrulestr(body, dtstart=RRULE_ANCHOR)
    except (ValueError, TypeError) as exc:
        raise ScheduleError(f"expression: {expression!r} is not an RFC 5545 RRULE: {exc}"
                            ) from exc
    if not isinstance(rule, rrule):  # an RRULE set (several rules, EXDATE) is not supported
        raise ScheduleError(f"expression: {expression!r} must be one RRULE")
    return rule


def _rrule_walls(rule: rrule, start: datetime) -> Iterator[datetime]:
    # rrule yields naive datetimes when its DTSTART is naive, which ours always is.
    return rule.xafter(start, inc=True)  # type: ignore[no-any-return]


def _cron_walls(expression: str, start: datetime) -> Iterator[datetime]:
    it = croniter(expression, start)
    # croniter returns the first time strictly after start; step back a second to include it.
    it.set_current(start - timedelta(seconds=1))
    while True:
        yield it.get_next(datetime)


def validate_schedule(kind: str, expression: str, timezone: str) -> None:
    """Raise ScheduleError, naming the field, when a schedule cannot be used."""
    if kind not in KINDS:
        raise ScheduleError(f"kind: {kind!r} is neither 'cron' nor 'rrule'")
    zone(timezone)
    if kind == CRON:
        if not croniter.is_valid(expression):
            raise ScheduleError(f"expression: {expression!r} is not a cron expression "
                                "(five fields: minute hour day month weekday)")
    else:
        _parse_rrule(expression)


def next_run(kind: str, expression: str, timezone: str, after: datetime) -> datetime | None:
    """The first run of a schedule strictly after ``after`` (UTC), None if it never runs."""
    _require_aware(after, "after")
    validate_schedule(kind, expression, timezone)
    tz = zone(timezone)
    start = after.astimezone(tz).replace(tzinfo=None) - _SLACK
    walls = (_cron_walls(expression, start) if kind == CRON
             else _rrule_walls(_parse_rrule(expression), start))
    return _first_after(walls, tz, after.astimezone(UTC))


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A recurring period (RRULE start + elapsed duration) or one absolute period.

    Used both for windows (scans only inside) and for blackouts (never during); which one
    it is depends on the list it is passed in.  Periods are half-open: [start, end).
    """

    timezone: str = "UTC"
    rrule: str | None = None
    duration: timedelta | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def __post_init__(self) -> None:
        zone(self.timezone)
        if self.rrule is not None:
            _parse_rrule(self.rrule)
            if self.duration is None or self.duration <= timedelta(0):
                raise ScheduleError("duration: a recurring window needs a positive duration")
            if self.starts_at is not None or self.ends_at is not None:
                raise ScheduleError("a window is either recurring (rrule) or absolute "
                                    "(starts_at/ends_at), not both")
        elif self.starts_at is None or self.ends_at is None:
            raise ScheduleError("a window needs an rrule with a duration, or starts_at "
                                "and ends_at")
        else:
            _require_aware(self.starts_at, "starts_at")
            _require_aware(self.ends_at, "ends_at")
            if self.ends_at <= self.starts_at:
                raise ScheduleError("ends_at: must be after starts_at")

    def periods(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The periods (UTC, ascending by start) that overlap [start, end)."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        if self.rrule is None:
            assert self.starts_at is not None and self.ends_at is not None
            begin, finish = self.starts_at.astimezone(UTC), self.ends_at.astimezone(UTC)
            if begin < end and finish > start:
                yield begin, finish
            return
        assert self.duration is not None
        tz = zone(self.timezone)
        # An occurrence that began up to one duration before ``start`` may still be open.
        first = (start - self.duration).astimezone(tz).replace(tzinfo=None) - _SLACK
        for count, wall in enumerate(_rrule_walls(_parse_rrule(self.rrule), first)):
            begin = _place(wall, tz)
            if begin >= end or count >= _MAX_CANDIDATES:
                return
            finish = begin + self.duration
            if finish > start:
                yield begin, finish

    def containing(self, moment: datetime) -> tuple[datetime, datetime] | None:
        """The period that contains ``moment``, or None."""
        for begin, finish in self.periods(moment, moment + timedelta(microseconds=1)):
            if begin <= moment < finish:
                return begin, finish
        return None

    def next_start(self, after: datetime, horizon: timedelta = DEFAULT_HORIZON
                   ) -> datetime | None:
        """The first period start at or after ``after`` (within ``horizon``), or None."""
        for begin, _ in self.periods(after, after + horizon):
            if begin >= after:
                return begin
        return None


def is_allowed(moment: datetime, windows: Sequence[MaintenanceWindow],
               blackouts: Sequence[MaintenanceWindow]) -> bool:
    """Whether a scan may run at ``moment``: inside a window (if any) and no blackout."""
    _require_aware(moment, "moment")
    if any(b.containing(moment) for b in blackouts):
        return False
    return not windows or any(w.containing(moment) for w in windows)


def next_allowed(moment: datetime, windows: Sequence[MaintenanceWindow],
                 blackouts: Sequence[MaintenanceWindow],
                 horizon: timedelta = DEFAULT_HORIZON) -> datetime | None:
    """The first instant at or after ``moment`` when a scan may run (UTC), or None.

    None means no allowed instant within ``horizon`` (every window is blacked out, or
    the windows never recur).
    """
    _require_aware(moment, "moment")
    limit = moment + horizon
    current = moment.astimezone(UTC)
    # Each step moves forward to a blackout's end or a window's start, so the loop ends;
    # the cap only guards against pathological inputs (thousands of abutting periods).
    for _ in range(10_000):
        if current > limit:
            return None
        blocking = [p for b in blackouts if (p := b.containing(current)) is not None]
        if blocking:
            current = max(finish for _, finish in blocking)
            continue
        if not windows or any(w.containing(current) for w in windows):
            return current
        starts = [s for w in windows if (s := w.next_start(current, limit - current))]
        if not starts:
            return None
        current = min(starts)
    return None
