"""What the engine takes: a doctor's schedule (the week's windows, the slot length, the booking
rules) and what each date adds to it (leaves, active appointments, holds, an override, a
holiday). Plain values, read by `scheduling.queries` or built by hand in tests.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from app.models.enums import WEEKDAYS, hold_unexpired

WEEKDAY_INDEX = {name: index for index, name in enumerate(WEEKDAYS)}

Window = tuple[int, int]  # start and end of working time, seconds since midnight
Week = tuple[tuple[Window, ...], ...]  # seven days of windows, Monday first


@dataclass(frozen=True, slots=True)
class Rules:
    """The booking rules of one doctor (spec: "Booking rules")."""

    min_notice_minutes: int = 0
    horizon_days: int | None = None
    buffer_minutes: int = 0
    max_per_day: int | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    week: Week
    slot_minutes: int
    is_active: bool = True
    rules: Rules = Rules()

    @classmethod
    def from_doctor_fields(
        cls,
        working_days: Iterable[str],
        working_hours: Mapping[str, str],
        slot_minutes: int,
        is_active: bool = True,
        rules: Rules = Rules(),
    ) -> Schedule:
        """The request's way: one window, the same on every working day."""
        window = (
            seconds(dt.time.fromisoformat(working_hours["start"])),
            seconds(dt.time.fromisoformat(working_hours["end"])),
        )
        days = {WEEKDAY_INDEX[d] for d in working_days}
        week = tuple((window,) if index in days else () for index in range(7))
        return cls(week, slot_minutes, is_active, rules)

    @classmethod
    def from_weekly_hours(
        cls,
        weekly_hours: Mapping[str, Sequence[Mapping[str, str]]],
        slot_minutes: int,
        is_active: bool = True,
        rules: Rules = Rules(),
    ) -> Schedule:
        week = tuple(parse_windows(weekly_hours.get(name, ())) for name in WEEKDAYS)
        return cls(week, slot_minutes, is_active, rules)


def parse_windows(windows: Iterable[Mapping[str, str]]) -> tuple[Window, ...]:
    """`[{"start": "09:00", "end": "13:00"}, ...]` as sorted (start, end) seconds."""
    return tuple(
        sorted(
            (seconds(dt.time.fromisoformat(w["start"])), seconds(dt.time.fromisoformat(w["end"])))
            for w in windows
        )
    )


# A leave (start/end None: the whole day) or an active appointment on one date. The engine takes
# plain tuples: a 30-day read has hundreds of them, and the driver's arrays zip into tuples at C
# speed (see BENCHMARKS.md). `Interval` is the same shape with names, for building one by hand.
Span = tuple[dt.date, dt.time | None, dt.time | None]


# An active hold on one date: its start, end and the instant it stops counting. Facts carry the
# holds unexpired when read; the engine counts those still unexpired at its `now`, so what was
# read stays exact until the version changes, however much later it is used.
HeldSpan = tuple[dt.date, dt.time, dt.time, dt.datetime]


class Interval(NamedTuple):
    date: dt.date
    start: dt.time | None = None
    end: dt.time | None = None


@dataclass(frozen=True, slots=True)
class DayFacts:
    """What one date adds to the week: leaves, active appointments, an override, a holiday,
    active holds."""

    leaves: Sequence[Span] = ()
    busy: Sequence[Span] = ()
    windows: tuple[Window, ...] | None = None  # a date override replaces the week's windows
    holiday: bool = False
    holds: Sequence[HeldSpan] = ()

    def holding(self, now: dt.datetime) -> Sequence[HeldSpan]:
        """The holds that still count at `now` (`enums.hold_unexpired`)."""
        if not self.holds:
            return ()
        return [hold for hold in self.holds if hold_unexpired(hold[3], now)]


NO_FACTS = DayFacts()


def seconds(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def facts_by_day(
    leaves: Iterable[Span] = (),
    busy: Iterable[Span] = (),
    overrides: Mapping[dt.date, tuple[Window, ...]] | None = None,
    holidays: Collection[dt.date] = (),
    holds: Iterable[HeldSpan] = (),
) -> dict[dt.date, DayFacts]:
    """Spans of any dates, overrides, holidays and holds, gathered into one `DayFacts` per
    date."""
    day_leaves: defaultdict[dt.date, list[Span]] = defaultdict(list)
    day_busy: defaultdict[dt.date, list[Span]] = defaultdict(list)
    day_holds: defaultdict[dt.date, list[HeldSpan]] = defaultdict(list)
    for item in leaves:
        day_leaves[item[0]].append(item)
    for item in busy:
        day_busy[item[0]].append(item)
    for hold in holds:
        day_holds[hold[0]].append(hold)
    overrides = overrides or {}
    dates = set(day_leaves) | set(day_busy) | set(overrides) | set(holidays) | set(day_holds)
    return {
        day: DayFacts(
            tuple(day_leaves.get(day, ())),
            tuple(day_busy.get(day, ())),
            overrides.get(day),
            day in holidays,
            tuple(day_holds.get(day, ())),
        )
        for day in dates
    }
