"""The availability engine: a pure function from a doctor's schedule to free slots.

No session and no clock in here: callers load what the engine needs and pass "now" in, so the
same code decides what availability offers and what booking accepts (`refusal` names why a
slot is not offered), and it can be property-tested.

A day's slots lie on the grid that starts at each working window's start, in steps of the
doctor's slot length; each lasts the visit's length and ends within its window. The week's
windows can be replaced for one date (an override); holidays, leaves, the booking rules and
the doctor's active appointments take slots away. Times are wall-clock times in the clinic's
zone; a slot whose start does not exist on the clock (a spring-forward gap) is never offered.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from app.models.enums import WEEKDAYS, DayReason, SlotReason, hold_unexpired

WEEKDAY_INDEX = {name: index for index, name in enumerate(WEEKDAYS)}

MAX_RANGE_DAYS = 62
ALTERNATIVES = 5
ALTERNATIVE_HORIZON_DAYS = 14

# Read out by the phone agent: "That slot is not available for booking (<sentence>)."
REASON_SENTENCES: dict[SlotReason, str] = {
    "past": "it has already started",
    "doctor_inactive": "the doctor is not taking appointments",
    "beyond_horizon": "it is further ahead than the doctor takes bookings",
    "holiday": "the clinic is closed that day",
    "non_working_day": "the doctor does not work that day",
    "leave": "the doctor is on leave then",
    "outside_hours": "it is not one of the doctor's slot times that day",
    "too_soon": "it is inside the doctor's minimum notice",
    "daily_limit": "the doctor's day is fully booked",
    "held": "it is being held for another caller",
    "taken": "it is taken, or too close to another appointment",
}

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


@dataclass(frozen=True, slots=True)
class SlotTime:
    start: dt.time
    end: dt.time


@dataclass(frozen=True, slots=True)
class Day:
    date: dt.date
    unavailable_reason: DayReason | None
    slots: tuple[SlotTime, ...]


def seconds(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _time(secs: int) -> dt.time:
    return dt.time(secs // 3600, secs // 60 % 60, secs % 60)


@lru_cache(maxsize=8192)
def _has_clock_change(day: dt.date, tz: ZoneInfo) -> bool:
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    next_midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return midnight.utcoffset() != next_midnight.utcoffset()


def _exists_on_clock(day: dt.date, t: dt.time, tz: ZoneInfo) -> bool:
    wall = dt.datetime.combine(day, t, tzinfo=tz)
    back = wall.astimezone(dt.UTC).astimezone(tz)
    return back.replace(tzinfo=None) == wall.replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class Grid:
    """Every slot of a day with these windows. All slots have one length, so both their
    starts and their ends ascend: the slots an interval touches are one run, found by bisection."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    slots: tuple[SlotTime, ...]
    index: Mapping[int, int] = field(default_factory=dict)  # start -> position
    # (start, end) -> position: most bookings sit exactly on a slot, found by one lookup.
    exact: Mapping[tuple[dt.time, dt.time], int] = field(default_factory=dict)

    def touching(self, low: int, high: int) -> range:
        """Positions of the slots that overlap [low, high)."""
        return range(bisect_right(self.ends, low), bisect_left(self.starts, high))


@lru_cache(maxsize=4096)
def grid(windows: tuple[Window, ...], step_minutes: int, visit_minutes: int) -> Grid:
    # Computed once per shape: the slot objects are immutable and shared by every day.
    step, length = step_minutes * 60, visit_minutes * 60
    cells = [
        (start, start + length)
        for first, last in windows
        for start in range(first, last - length + 1, step)
    ]
    slots = tuple(SlotTime(_time(s), _time(e)) for s, e in cells)
    return Grid(
        starts=tuple(s for s, _ in cells),
        ends=tuple(e for _, e in cells),
        slots=slots,
        index={s: i for i, (s, _) in enumerate(cells)},
        exact={(slot.start, slot.end): i for i, slot in enumerate(slots)},
    )


@dataclass(frozen=True, slots=True)
class Moment:
    """ "Now" as the engine needs it, worked out once per request: the clinic's date and the
    earliest instant a slot may start (now plus the minimum notice), also as wall time."""

    now: dt.datetime
    today: dt.date
    earliest: dt.datetime
    earliest_date: dt.date
    earliest_seconds: float

    @classmethod
    def of(cls, now: dt.datetime, tz: ZoneInfo, notice_minutes: int = 0) -> Moment:
        earliest = now + dt.timedelta(minutes=notice_minutes)
        local = earliest.astimezone(tz)
        wall = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        return cls(now, now.astimezone(tz).date(), earliest, local.date(), wall)


def _day_reason(
    schedule: Schedule, day: dt.date, facts: DayFacts, today: dt.date, taken: int
) -> tuple[DayReason | None, tuple[Window, ...]]:
    """The reason the whole day offers nothing (or None), and the day's windows. `taken`:
    the day's active appointments and holds, for the daily limit."""
    rules = schedule.rules
    if day < today:
        return "past", ()
    if not schedule.is_active:
        return "doctor_inactive", ()
    if rules.horizon_days is not None and (day - today).days > rules.horizon_days:
        return "beyond_horizon", ()
    if facts.holiday:
        return "holiday", ()
    windows = facts.windows if facts.windows is not None else schedule.week[day.weekday()]
    if not windows:
        return "non_working_day", ()
    if any(start is None for _, start, _ in facts.leaves):
        return "leave", ()
    if rules.max_per_day is not None and taken >= rules.max_per_day:
        return "daily_limit", ()
    return None, windows


def day_availability(
    schedule: Schedule,
    day: dt.date,
    facts: DayFacts,
    moment: Moment,
    tz: ZoneInfo,
    visit_minutes: int | None = None,
) -> Day:
    """Free slots of one day. `facts` holds that day's leaves and bookings only; `moment`
    must carry this doctor's notice (`Moment.of(now, tz, rules.min_notice_minutes)`)."""
    holds = facts.holding(moment.now)
    reason, windows = _day_reason(schedule, day, facts, moment.today, len(facts.busy) + len(holds))
    if reason is not None:
        return Day(day, reason, ())
    if day < moment.earliest_date:  # all of it inside the notice: nothing, but no reason
        return Day(day, None, ())
    visit = visit_minutes or schedule.slot_minutes
    cells = grid(windows, schedule.slot_minutes, visit)
    if not cells.slots:
        return Day(day, None, ())

    # Mark the slots each part-day leave or appointment (widened by the buffer) touches.
    taken = bytearray(len(cells.slots))
    for _, start_t, end_t in facts.leaves:
        if start_t is not None and end_t is not None:
            for i in cells.touching(seconds(start_t), seconds(end_t)):
                taken[i] = 1
    buffer = schedule.rules.buffer_minutes * 60
    # A booking exactly on a slot touches only that slot when slots do not overlap (the visit
    # is one grid step) and no buffer widens it.
    exact = cells.exact if not buffer and visit == schedule.slot_minutes else {}
    for _, start_t, end_t in facts.busy:
        if start_t is None or end_t is None:
            continue
        index = exact.get((start_t, end_t))
        if index is not None:
            taken[index] = 1
        else:
            for i in cells.touching(seconds(start_t) - buffer, seconds(end_t) + buffer):
                taken[i] = 1
    for _, start_t, end_t, _ in holds:
        for i in cells.touching(seconds(start_t) - buffer, seconds(end_t) + buffer):
            taken[i] = 1

    clock_change = _has_clock_change(day, tz)
    cut = day == moment.earliest_date
    if not clock_change and not cut:  # the usual day: every untaken slot is offered
        return Day(day, None, tuple(s for s, t in zip(cells.slots, taken, strict=True) if not t))
    slots: list[SlotTime] = []
    for index, slot in enumerate(cells.slots):
        if taken[index]:
            continue
        if clock_change:
            if not _exists_on_clock(day, slot.start, tz):
                continue
            if cut and dt.datetime.combine(day, slot.start, tzinfo=tz) <= moment.earliest:
                continue
        elif cells.starts[index] <= moment.earliest_seconds:
            continue
        slots.append(slot)
    return Day(day, None, tuple(slots))


def refusal(
    schedule: Schedule,
    day: dt.date,
    start: dt.time,
    facts: DayFacts,
    now: dt.datetime,
    tz: ZoneInfo,
    visit_minutes: int | None = None,
) -> SlotReason | None:
    """Why the slot starting at `start` is not offered, the first of `SLOT_REASONS` that
    applies; None when `day_availability` offers it."""
    starts_at = dt.datetime.combine(day, start, tzinfo=tz)
    today = now.astimezone(tz).date()
    if day < today or starts_at <= now:
        return "past"
    # Leaves and the daily limit come later in the slot's order than in the day's.
    day_only = DayFacts(windows=facts.windows, holiday=facts.holiday)
    reason, windows = _day_reason(schedule, day, day_only, today, 0)
    if reason is not None:
        return reason
    length = (visit_minutes or schedule.slot_minutes) * 60
    low = seconds(start)
    high = low + length
    for _, leave_start, leave_end in facts.leaves:
        if leave_start is None or leave_end is None:
            return "leave"
        if seconds(leave_start) < high and low < seconds(leave_end):
            return "leave"
    cells = grid(windows, schedule.slot_minutes, visit_minutes or schedule.slot_minutes)
    if low not in cells.index or not _exists_on_clock(day, start, tz):
        return "outside_hours"
    rules = schedule.rules
    if starts_at <= now + dt.timedelta(minutes=rules.min_notice_minutes):
        return "too_soon"
    holds = facts.holding(now)
    if rules.max_per_day is not None and len(facts.busy) + len(holds) >= rules.max_per_day:
        return "daily_limit"
    buffer = rules.buffer_minutes * 60

    def near(start_t: dt.time | None, end_t: dt.time | None) -> bool:
        return (
            start_t is not None
            and end_t is not None
            and seconds(start_t) - buffer < high
            and low < seconds(end_t) + buffer
        )

    if any(near(start_t, end_t) for _, start_t, end_t, _ in holds):
        return "held"
    if any(near(start_t, end_t) for _, start_t, end_t in facts.busy):
        return "taken"
    return None


def date_range(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def availability(
    schedule: Schedule,
    start: dt.date,
    end: dt.date,
    facts: Mapping[dt.date, DayFacts],
    now: dt.datetime,
    tz: ZoneInfo,
    visit_minutes: int | None = None,
) -> list[Day]:
    """Free slots of every day from `start` to `end`, both included."""
    moment = Moment.of(now, tz, schedule.rules.min_notice_minutes)
    return [
        day_availability(schedule, day, facts.get(day, NO_FACTS), moment, tz, visit_minutes)
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
    wanted = seconds(wanted_start)
    same_day: list[tuple[dt.date, SlotTime]] = []
    later: list[tuple[dt.date, SlotTime]] = []
    for day in days:
        if day.date == wanted_date:
            ordered = sorted(day.slots, key=lambda s: (abs(seconds(s.start) - wanted), s.start))
            same_day.extend((day.date, slot) for slot in ordered)
        elif day.date > wanted_date:
            later.extend((day.date, slot) for slot in day.slots)
    return (same_day + later)[:limit]


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
