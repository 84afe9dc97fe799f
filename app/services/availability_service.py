"""The availability engine: a pure function from a doctor's schedule to free slots.

No session and no clock in here: callers load what the engine needs and pass "now" in, so the
same code decides what availability offers and what booking accepts, and it can be
property-tested.

Times are wall-clock times in the clinic's zone. A slot whose start does not exist on the
clock (skipped by a spring-forward change) is never offered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

WEEKDAY_INDEX = {
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}

MAX_RANGE_DAYS = 62
ALTERNATIVES = 5
ALTERNATIVE_HORIZON_DAYS = 14


@dataclass(frozen=True, slots=True)
class Schedule:
    working_days: frozenset[int]
    start: dt.time
    end: dt.time
    slot_minutes: int
    is_active: bool

    @classmethod
    def from_doctor_fields(
        cls,
        working_days: Iterable[str],
        working_hours: dict[str, str],
        slot_minutes: int,
        is_active: bool,
    ) -> Schedule:
        return cls(
            working_days=frozenset(WEEKDAY_INDEX[d] for d in working_days),
            start=dt.time.fromisoformat(working_hours["start"]),
            end=dt.time.fromisoformat(working_hours["end"]),
            slot_minutes=slot_minutes,
            is_active=is_active,
        )


@dataclass(frozen=True, slots=True)
class Interval:
    """A leave (start/end None: the whole day) or an active appointment on one date."""

    date: dt.date
    start: dt.time | None = None
    end: dt.time | None = None


@dataclass(frozen=True, slots=True)
class SlotTime:
    start: dt.time
    end: dt.time


@dataclass(frozen=True, slots=True)
class Day:
    date: dt.date
    unavailable_reason: str | None
    slots: tuple[SlotTime, ...]


def _seconds(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _time(seconds: int) -> dt.time:
    return dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60)


def _has_clock_change(day: dt.date, tz: ZoneInfo) -> bool:
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    next_midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return midnight.utcoffset() != next_midnight.utcoffset()


def _exists_on_clock(day: dt.date, t: dt.time, tz: ZoneInfo) -> bool:
    wall = dt.datetime.combine(day, t, tzinfo=tz)
    back = wall.astimezone(dt.UTC).astimezone(tz)
    return back.replace(tzinfo=None) == wall.replace(tzinfo=None)


def grid(schedule: Schedule) -> list[tuple[int, int]]:
    """Every slot of a working day as (start, end) seconds since midnight."""
    step = schedule.slot_minutes * 60
    first, last = _seconds(schedule.start), _seconds(schedule.end)
    return [(s, s + step) for s in range(first, last - step + 1, step)]


def day_availability(
    schedule: Schedule,
    day: dt.date,
    leaves: Sequence[Interval],
    busy: Sequence[Interval],
    now: dt.datetime,
    tz: ZoneInfo,
) -> Day:
    """Free slots of one day; `leaves` and `busy` may hold other days, which are ignored."""
    today = now.astimezone(tz).date()
    if day < today:
        return Day(day, "past", ())
    if not schedule.is_active:
        return Day(day, "doctor_inactive", ())
    if day.weekday() not in schedule.working_days:
        return Day(day, "non_working_day", ())

    blocked: list[tuple[int, int]] = []
    for leave in leaves:
        if leave.date != day:
            continue
        if leave.start is None or leave.end is None:
            return Day(day, "leave", ())
        blocked.append((_seconds(leave.start), _seconds(leave.end)))
    for item in busy:
        if item.date == day and item.start is not None and item.end is not None:
            blocked.append((_seconds(item.start), _seconds(item.end)))

    check_clock = _has_clock_change(day, tz)
    slots: list[SlotTime] = []
    for start, end in grid(schedule):
        if any(start < b_end and b_start < end for b_start, b_end in blocked):
            continue
        start_time = _time(start)
        if check_clock and not _exists_on_clock(day, start_time, tz):
            continue
        if day == today and dt.datetime.combine(day, start_time, tzinfo=tz) <= now:
            continue
        slots.append(SlotTime(start_time, _time(end)))
    return Day(day, None, tuple(slots))


def date_range(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def availability(
    schedule: Schedule,
    start: dt.date,
    end: dt.date,
    leaves: Sequence[Interval],
    busy: Sequence[Interval],
    now: dt.datetime,
    tz: ZoneInfo,
) -> list[Day]:
    """Free slots of every day from `start` to `end`, both included."""
    leaves_by_day = _group(leaves)
    busy_by_day = _group(busy)
    return [
        day_availability(
            schedule, day, leaves_by_day.get(day, ()), busy_by_day.get(day, ()), now, tz
        )
        for day in date_range(start, end)
    ]


def find_slot(day: Day, start_time: dt.time) -> SlotTime | None:
    for slot in day.slots:
        if slot.start == start_time:
            return slot
    return None


def nearest_alternatives(
    days: Sequence[Day], wanted_date: dt.date, wanted_start: dt.time, limit: int = ALTERNATIVES
) -> list[tuple[dt.date, SlotTime]]:
    """Free slots closest to the wanted one: that day first (by distance), then later days."""
    wanted = _seconds(wanted_start)
    same_day: list[tuple[dt.date, SlotTime]] = []
    later: list[tuple[dt.date, SlotTime]] = []
    for day in days:
        if day.date == wanted_date:
            ordered = sorted(day.slots, key=lambda s: (abs(_seconds(s.start) - wanted), s.start))
            same_day.extend((day.date, slot) for slot in ordered)
        elif day.date > wanted_date:
            later.extend((day.date, slot) for slot in day.slots)
    return (same_day + later)[:limit]


def _group(items: Sequence[Interval]) -> dict[dt.date, list[Interval]]:
    grouped: dict[dt.date, list[Interval]] = {}
    for item in items:
        grouped.setdefault(item.date, []).append(item)
    return grouped
