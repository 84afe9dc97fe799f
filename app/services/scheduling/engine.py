"""The availability engine: a pure function from a doctor's schedule (`scheduling.schedule`) to
free slots.

No session and no clock in here: callers load what the engine needs and pass "now" in, so the
same code decides what availability offers and what booking accepts (`scheduling.refusal`
names why a slot is not offered, from the same checks), and it can be property-tested.

A day's slots lie on the grid that starts at each working window's start, in steps of the
doctor's slot length; each lasts the visit's length and ends within its window. The week's
windows can be replaced for one date (an override); holidays, leaves, the booking rules and
the doctor's active appointments take slots away. Times are wall-clock times in the clinic's
zone; a slot whose start does not exist on the clock (a spring-forward gap) is never offered.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

from app.models.enums import DayReason
from app.services.scheduling.schedule import (
    NO_FACTS,
    DayFacts,
    HeldSpan,
    Rules,
    Schedule,
    Span,
    Window,
    seconds,
)

MAX_RANGE_DAYS = 62
ALTERNATIVES = 5
ALTERNATIVE_HORIZON_DAYS = 14


@dataclass(frozen=True, slots=True)
class SlotTime:
    start: dt.time
    end: dt.time


@dataclass(frozen=True, slots=True)
class Day:
    date: dt.date
    unavailable_reason: DayReason | None
    slots: tuple[SlotTime, ...]


def _time(secs: int) -> dt.time:
    return dt.time(secs // 3600, secs // 60 % 60, secs % 60)


@lru_cache(maxsize=8192)
def has_clock_change(day: dt.date, tz: ZoneInfo) -> bool:
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    next_midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return midnight.utcoffset() != next_midnight.utcoffset()


def _exists_on_clock(day: dt.date, t: dt.time, tz: ZoneInfo) -> bool:
    wall = dt.datetime.combine(day, t, tzinfo=tz)
    back = wall.astimezone(dt.UTC).astimezone(tz)
    return back.replace(tzinfo=None) == wall.replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class Grid:
    """Slots of one length: every slot of a day with some windows (`grid`), or the one slot a
    refusal asks about (`Grid.asked`). Their starts and their ends both ascend, so the slots
    an interval touches are one run, found by bisection."""

    starts: tuple[int, ...]  # seconds since midnight
    ends: tuple[int, ...]  # (the slot asked about may end past midnight)
    times: tuple[dt.time, ...]  # the starts as clock times
    slots: tuple[SlotTime, ...] = ()  # the slots a day offers from (none for `asked`)
    index: Mapping[int, int] = field(default_factory=dict)  # start -> position
    # (start, end) -> position: most bookings sit exactly on a slot, found by one lookup.
    exact: Mapping[tuple[dt.time, dt.time], int] = field(default_factory=dict)

    @classmethod
    def asked(cls, start: dt.time, length: int) -> Grid:
        """The slot `length` seconds long that starts at `start`, on the day's grid or not."""
        low = seconds(start)
        return cls((low,), (low + length,), (start,))

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
        times=tuple(slot.start for slot in slots),
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


# ---- the checks ----------------------------------------------------------------------------
# Each takes slots away. A day's check takes the whole day and names why; a slot's check marks,
# in `taken` (a byte per slot of `cells`), the slots it takes. `day_availability` offers the
# slots no check takes; `scheduling.refusal` runs the same checks on the one slot asked for,
# in the spec's order, and names the first that takes it.


def closed_reason(
    schedule: Schedule, day: dt.date, facts: DayFacts, today: dt.date
) -> tuple[DayReason | None, tuple[Window, ...]]:
    """Why the whole day offers nothing (the day's reasons up to `leave`, in order), or None;
    and the day's windows."""
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
    return None, windows


def at_daily_limit(rules: Rules, facts: DayFacts, holds: Sequence[HeldSpan]) -> bool:
    """Whether the day's active appointments and counting holds fill the doctor's day."""
    return rules.max_per_day is not None and len(facts.busy) + len(holds) >= rules.max_per_day


def mark_leaves(taken: bytearray, cells: Grid, leaves: Iterable[Span]) -> None:
    """The slots a part-day leave touches (a whole-day leave closes the day)."""
    for _, start_t, end_t in leaves:
        if start_t is not None and end_t is not None:
            for i in cells.touching(seconds(start_t), seconds(end_t)):
                taken[i] = 1


def mark_busy(
    taken: bytearray, cells: Grid, busy: Iterable[Span], buffer: int, apart: bool
) -> None:
    """The slots an active appointment, widened by the buffer, touches. `apart`: the slots do
    not overlap (the visit is one grid step), so without a buffer an appointment exactly on a
    slot touches that slot alone."""
    exact = cells.exact if apart and not buffer else {}
    for _, start_t, end_t in busy:
        if start_t is None or end_t is None:
            continue
        index = exact.get((start_t, end_t))
        if index is not None:
            taken[index] = 1
        else:
            for i in cells.touching(seconds(start_t) - buffer, seconds(end_t) + buffer):
                taken[i] = 1


def mark_held(taken: bytearray, cells: Grid, holds: Iterable[HeldSpan], buffer: int) -> None:
    """The slots a counting hold (`DayFacts.holding`), widened by the buffer, touches."""
    for _, start_t, end_t, _ in holds:
        for i in cells.touching(seconds(start_t) - buffer, seconds(end_t) + buffer):
            taken[i] = 1


def mark_off_clock(taken: bytearray, cells: Grid, day: dt.date, tz: ZoneInfo) -> None:
    """The slots whose start does not exist on the clock that day (a spring-forward gap).
    Only a day with a clock change (`has_clock_change`) has any: callers ask that first."""
    for index, start in enumerate(cells.times):
        if not taken[index] and not _exists_on_clock(day, start, tz):
            taken[index] = 1


def mark_inside_notice(
    taken: bytearray, cells: Grid, day: dt.date, moment: Moment, tz: ZoneInfo
) -> None:
    """The slots that start no later than `moment.earliest`: every slot of a day before the
    date it falls on, and none of a day after it."""
    if day != moment.earliest_date:
        if day < moment.earliest_date:
            for index in range(len(taken)):
                taken[index] = 1
        return
    if has_clock_change(day, tz):
        for index, start in enumerate(cells.times):
            if dt.datetime.combine(day, start, tzinfo=tz) <= moment.earliest:
                taken[index] = 1
    else:  # one offset all day: wall times compare as instants, and the starts ascend
        for index in range(bisect_right(cells.starts, moment.earliest_seconds)):
            taken[index] = 1


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
    reason, windows = closed_reason(schedule, day, facts, moment.today)
    if reason is None and at_daily_limit(schedule.rules, facts, holds):
        reason = "daily_limit"
    if reason is not None:
        return Day(day, reason, ())
    if day < moment.earliest_date:  # `mark_inside_notice` would take every slot: no reason
        return Day(day, None, ())
    visit = visit_minutes or schedule.slot_minutes
    cells = grid(windows, schedule.slot_minutes, visit)
    if not cells.slots:
        return Day(day, None, ())
    # The checks that take slots are skipped when they have nothing to take.
    taken = bytearray(len(cells.slots))
    if facts.leaves:
        mark_leaves(taken, cells, facts.leaves)
    buffer = schedule.rules.buffer_minutes * 60
    if facts.busy:
        mark_busy(taken, cells, facts.busy, buffer, visit == schedule.slot_minutes)
    if holds:
        mark_held(taken, cells, holds, buffer)
    if has_clock_change(day, tz):
        mark_off_clock(taken, cells, day, tz)
    if day == moment.earliest_date:  # (from a later day the notice takes nothing)
        mark_inside_notice(taken, cells, day, moment, tz)
    return Day(day, None, tuple(s for s, t in zip(cells.slots, taken, strict=True) if not t))


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
    """The `limit` free slots closest to the wanted one (that day's first, by distance, then
    later days'), listed in time order: a caller reads them out as a choice, and 17:45, 17:55,
    17:40 would confuse."""
    wanted = seconds(wanted_start)
    same_day: list[tuple[dt.date, SlotTime]] = []
    later: list[tuple[dt.date, SlotTime]] = []
    for day in days:
        if day.date == wanted_date:
            ordered = sorted(day.slots, key=lambda s: (abs(seconds(s.start) - wanted), s.start))
            same_day.extend((day.date, slot) for slot in ordered)
        elif day.date > wanted_date:
            later.extend((day.date, slot) for slot in day.slots)
    nearest = (same_day + later)[:limit]
    return sorted(nearest, key=lambda found: (found[0], found[1].start))
