"""The availability engine as it was before weekly hours, overrides, visit types and rules.

Kept verbatim as a reference: a doctor created the request's way (one window on each working
day, the slot length as the visit length, no rules) must get exactly what this engine offered
(tests/test_engine_matches_legacy.py).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple
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


# A leave (start/end None: the whole day) or an active appointment on one date. The engine takes
# plain tuples: a 30-day read has hundreds of them, and the driver's arrays zip into tuples at C
# speed (see BENCHMARKS.md). `Interval` is the same shape with names, for building one by hand.
Span = tuple[dt.date, dt.time | None, dt.time | None]


class Interval(NamedTuple):
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


@lru_cache(maxsize=8192)
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
    return [(start, end) for start, end, _ in _cells(schedule)]


@lru_cache(maxsize=4096)
def _cells(schedule: Schedule) -> tuple[tuple[int, int, SlotTime], ...]:
    # Computed once per schedule: the slot objects are immutable and shared by every day.
    step = schedule.slot_minutes * 60
    first, last = _seconds(schedule.start), _seconds(schedule.end)
    return tuple(
        (s, s + step, SlotTime(_time(s), _time(s + step)))
        for s in range(first, last - step + 1, step)
    )


@lru_cache(maxsize=4096)
def _exact_cells(schedule: Schedule) -> dict[tuple[dt.time, dt.time], int]:
    # Most bookings sit exactly on a grid cell: one dict lookup finds it (see day_availability).
    return {(slot.start, slot.end): index for index, (_, _, slot) in enumerate(_cells(schedule))}


def day_availability(
    schedule: Schedule,
    day: dt.date,
    leaves: Sequence[Span],
    busy: Sequence[Span],
    now: dt.datetime,
    tz: ZoneInfo,
) -> Day:
    """Free slots of one day; `leaves` and `busy` may hold other days, which are ignored."""
    return _day(schedule, _cells(schedule), _exact_cells(schedule), day, leaves, busy, now, tz)


def _day(
    schedule: Schedule,
    cells: tuple[tuple[int, int, SlotTime], ...],
    exact: dict[tuple[dt.time, dt.time], int],
    day: dt.date,
    leaves: Sequence[Span],
    busy: Sequence[Span],
    now: dt.datetime,
    tz: ZoneInfo,
) -> Day:
    # The grid (`cells`, `exact`) comes from the caller: a range looks it up once, not daily.
    local_now = now.astimezone(tz)
    today = local_now.date()
    if day < today:
        return Day(day, "past", ())
    if not schedule.is_active:
        return Day(day, "doctor_inactive", ())
    if day.weekday() not in schedule.working_days:
        return Day(day, "non_working_day", ())
    if any(on == day and (start is None or end is None) for on, start, end in leaves):
        return Day(day, "leave", ())
    if not cells:
        return Day(day, None, ())

    # Mark the grid cells each leave or appointment overlaps: O(cells + intervals).
    first, step, count = cells[0][0], schedule.slot_minutes * 60, len(cells)
    taken = bytearray(count)
    for on, start_t, end_t in (*leaves, *busy):
        if on != day or start_t is None or end_t is None:
            continue
        index = exact.get((start_t, end_t))
        if index is not None:
            taken[index] = 1
            continue
        # Off the grid (a leave, or a booking made before the grid changed). Inlined second
        # arithmetic: this loop runs for every booking in the range.
        low = (start_t.hour * 3600 + start_t.minute * 60 + start_t.second - first) // step
        high = -(-(end_t.hour * 3600 + end_t.minute * 60 + end_t.second - first) // step) - 1
        for index in range(low if low > 0 else 0, (high if high < count else count - 1) + 1):
            taken[index] = 1

    clock_change = _has_clock_change(day, tz)
    is_today = day == today
    if not clock_change and not is_today:  # the usual day: every untaken cell is offered
        return Day(
            day, None, tuple(slot for (_, _, slot), t in zip(cells, taken, strict=True) if not t)
        )
    now_seconds = (
        local_now.hour * 3600
        + local_now.minute * 60
        + local_now.second
        + local_now.microsecond / 1e6
    )
    slots: list[SlotTime] = []
    for index, (start, _, slot) in enumerate(cells):
        if taken[index]:
            continue
        if clock_change and not _exists_on_clock(day, slot.start, tz):
            continue
        if is_today:
            if clock_change:
                if dt.datetime.combine(day, slot.start, tzinfo=tz) <= now:
                    continue
            elif start <= now_seconds:
                continue
        slots.append(slot)
    return Day(day, None, tuple(slots))


def date_range(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def availability(
    schedule: Schedule,
    start: dt.date,
    end: dt.date,
    leaves: Sequence[Span],
    busy: Sequence[Span],
    now: dt.datetime,
    tz: ZoneInfo,
) -> list[Day]:
    """Free slots of every day from `start` to `end`, both included."""
    return availability_by_day(
        schedule, start, end, group_by_day(leaves), group_by_day(busy), now, tz
    )


def availability_by_day(
    schedule: Schedule,
    start: dt.date,
    end: dt.date,
    leaves_by_day: Mapping[dt.date, Sequence[Span]],
    busy_by_day: Mapping[dt.date, Sequence[Span]],
    now: dt.datetime,
    tz: ZoneInfo,
) -> list[Day]:
    """`availability`, with leaves and bookings already grouped by day."""
    cells, exact = _cells(schedule), _exact_cells(schedule)
    return [
        _day(
            schedule,
            cells,
            exact,
            day,
            leaves_by_day.get(day, ()),
            busy_by_day.get(day, ()),
            now,
            tz,
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


def group_by_day(items: Sequence[Span]) -> dict[dt.date, list[Span]]:
    grouped: defaultdict[dt.date, list[Span]] = defaultdict(list)
    for item in items:
        grouped[item[0]].append(item)
    return grouped
