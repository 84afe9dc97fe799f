"""Property tests of the pure availability engine (app/services/scheduling/engine.py).

The reference model below is written from SPEC.md ("Resources", "Schedules", "Booking rules"),
brute force and in aware datetimes, so it shares no shortcut with the engine."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from app.models.enums import SLOT_REASONS, WEEKDAYS
from app.services.scheduling.engine import availability, nearest_alternatives
from app.services.scheduling.refusal import refusal
from app.services.scheduling.schedule import (
    NO_FACTS,
    DayFacts,
    HeldSpan,
    Interval,
    Rules,
    Schedule,
    Span,
    Window,
    facts_by_day,
)

# Each zone's clock changes in 2026 (Lord Howe's are half an hour); requests start 0-3 days
# before one, so most ranges cross it.
CHANGES = {
    "UTC": ("03-29", "06-10"),
    "Asia/Kolkata": ("03-08", "10-25"),
    "Europe/London": ("03-29", "10-25"),
    "America/New_York": ("03-08", "11-01"),
    "Australia/Lord_Howe": ("04-05", "10-04"),
}
Row = tuple[dt.date, str | None, tuple[tuple[dt.time, dt.time], ...]]


def secs(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def clock(seconds: int) -> dt.time:
    return dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60)


@st.composite
def day_windows(draw: st.DrawFn) -> tuple[Window, ...]:
    """0-3 sorted windows on a 5-minute grid, each off the grid of the others, may touch."""
    count = draw(st.sampled_from((1, 2, 3, 0, 1, 2)))
    points = sorted(draw(st.lists(st.integers(0, 287), min_size=2 * count, max_size=2 * count)))
    pairs = zip(points[::2], points[1::2], strict=True)
    return tuple((a * 300, b * 300) for a, b in pairs if a < b)


rarely = st.sampled_from((False,) * 9 + (True,))


@st.composite
def span_times(draw: st.DrawFn, longest: int) -> tuple[dt.time, dt.time]:
    """Start and end of a part-day leave or an appointment: anywhere (to the second: the API
    takes HH:MM:SS), often on the 5-minute grid."""
    start, length = draw(st.integers(0, 1438)), draw(st.integers(1, longest))
    if draw(st.booleans()):
        start, length = start - start % 5, max(5, length - length % 5)
    return nudge(draw, 60 * start, 60 * min(start + length, 1439))


def nudge(draw: st.DrawFn, start: int, end: int) -> tuple[dt.time, dt.time]:
    """Seconds as clock times, sometimes one second off: just into the slot before or after."""
    if draw(rarely):
        start, end = start + draw(st.sampled_from((-1, 1))), end + draw(st.sampled_from((-1, 1)))
    return clock(max(start, 0)), clock(max(end, start + 1))


@st.composite
def day_facts(
    draw: st.DrawFn, day: dt.date, schedule: Schedule, visit: int | None, now: dt.datetime
) -> DayFacts:
    leaves: list[Span] = [Interval(day, *t) for t in draw(st.lists(span_times(240), max_size=2))]
    if draw(rarely):
        leaves.append(Interval(day))
    windows = draw(st.none() | st.none() | day_windows())
    step, week = schedule.slot_minutes, schedule.week[day.weekday()]
    starts = ref_starts(week if windows is None else windows, step, visit or step)
    busy: list[Span] = []
    for _ in range(draw(st.integers(0, 6))):
        on_grid = draw(st.booleans())
        if starts and on_grid:  # booked on the grid, as this visit or as a plain slot
            start = draw(st.sampled_from(starts))
            end = start + 60 * draw(st.sampled_from((visit or step, step)))
            busy.append(Interval(day, *nudge(draw, start, min(end, 86340))))
        else:
            busy.append(Interval(day, *draw(span_times(180))))
    # Holds: on the grid or not, some expired by `now` (they must count for nothing).
    holds: list[HeldSpan] = []
    for _ in range(draw(st.integers(0, 3))):
        if starts and draw(st.booleans()):
            start = draw(st.sampled_from(starts))
            times = nudge(draw, start, min(start + 60 * (visit or step), 86340))
        else:
            times = draw(span_times(120))
        expires = now + dt.timedelta(seconds=draw(st.integers(-600, 600)))
        holds.append((day, *times, expires))
    return DayFacts(tuple(leaves), tuple(busy), windows, draw(rarely), tuple(holds))


schedules = st.builds(
    Schedule,
    week=st.tuples(*[day_windows()] * 7),
    slot_minutes=st.integers(5, 120),
    is_active=st.sampled_from((True, True, True, True, False)),
    rules=st.builds(
        Rules,
        min_notice_minutes=st.just(0) | st.integers(0, 3000),
        horizon_days=st.none() | st.integers(1, 40),
        buffer_minutes=st.just(0) | st.integers(0, 60),
        max_per_day=st.none() | st.none() | st.integers(1, 6),
    ),
)


@dataclass(frozen=True)
class Case:
    schedule: Schedule
    start: dt.date
    end: dt.date
    facts: dict[dt.date, DayFacts]
    now: dt.datetime
    tz: ZoneInfo
    visit: int | None

    def on(self, day: dt.date) -> DayFacts:
        return self.facts.get(day, NO_FACTS)

    def windows(self, day: dt.date) -> tuple[Window, ...]:
        override = self.on(day).windows
        return override if override is not None else self.schedule.week[day.weekday()]

    def grid(self, day: dt.date) -> tuple[int, ...]:
        visit = self.visit or self.schedule.slot_minutes
        return ref_starts(self.windows(day), self.schedule.slot_minutes, visit)

    def run(self) -> list[Row]:
        note(repr(self))  # this hypothesis prints a failing example's arguments empty
        args = (self.schedule, self.start, self.end, self.facts, self.now, self.tz, self.visit)
        return [
            (d.date, d.unavailable_reason, tuple((s.start, s.end) for s in d.slots))
            for d in availability(*args)
        ]


@st.composite
def cases(draw: st.DrawFn, days: int = 10, now_days: tuple[int, int] = (-5, 14)) -> Case:
    zone = draw(st.sampled_from(sorted(CHANGES)))
    change = dt.date.fromisoformat(f"2026-{draw(st.sampled_from(CHANGES[zone]))}")
    start = change - dt.timedelta(days=draw(st.integers(0, 3)))
    end = start + dt.timedelta(days=draw(st.integers(0, days - 1)))
    dates = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    schedule, visit = draw(schedules), draw(st.none() | st.integers(5, 180))
    minutes = draw(st.integers(now_days[0] * 1440, now_days[1] * 1440))
    seconds = 60 * minutes + draw(st.sampled_from((0, 0, 0, 30)))
    now = dt.datetime.combine(start, dt.time(), dt.UTC) + dt.timedelta(seconds=seconds)
    on = [d for d in dates if draw(st.sampled_from((True, True, False)))]
    facts = {d: draw(day_facts(d, schedule, visit, now)) for d in on}
    return Case(schedule, start, end, facts, now, ZoneInfo(zone), visit)


# ---- the reference model -------------------------------------------------------------------


def at(day: dt.date, t: dt.time, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, t, tzinfo=tz)


def exists(day: dt.date, t: dt.time, tz: ZoneInfo) -> bool:
    back = at(day, t, tz).astimezone(dt.UTC).astimezone(tz)
    return (back.date(), back.time()) == (day, t)


@lru_cache(maxsize=4096)
def ref_starts(windows: tuple[Window, ...], slot: int, visit: int) -> tuple[int, ...]:
    """Slot starts (seconds): from each window's start, one slot length apart, while they fit."""
    starts: list[int] = []
    for first, last in windows:
        start = first
        while start + visit * 60 <= last:
            starts.append(start)
            start += slot * 60
    return tuple(starts)


def bounds(span: Span) -> tuple[int, int] | None:
    _, start, end = span
    return None if start is None or end is None else (secs(start), secs(end))


def ref_reasons(c: Case, day: dt.date, t: dt.time | None) -> list[str]:
    """Every reason (spec order) that applies to the day (t None) or to the slot starting at t."""
    rules, facts = c.schedule.rules, c.on(day)
    today = c.now.astimezone(c.tz).date()
    ahead = (day - today).days
    visit = c.visit or c.schedule.slot_minutes
    holding = [(secs(h[1]), secs(h[2])) for h in facts.holds if h[3] > c.now]
    taken = len(facts.busy) + len(holding)
    limit = rules.max_per_day is not None and taken >= rules.max_per_day
    low = secs(t) if t is not None else 0
    high, buffer = low + visit * 60, rules.buffer_minutes * 60
    leaves = [bounds(leave) for leave in facts.leaves]
    appointments = [b for b in map(bounds, facts.busy) if b is not None]
    checks = [
        ("past", day < today or (t is not None and at(day, t, c.tz) <= c.now)),
        ("doctor_inactive", not c.schedule.is_active),
        ("beyond_horizon", rules.horizon_days is not None and ahead > rules.horizon_days),
        ("holiday", facts.holiday),
        ("non_working_day", not c.windows(day)),
        ("leave", None in leaves),
        ("daily_limit", limit),
    ]
    if t is not None:
        notice = c.now + dt.timedelta(minutes=rules.min_notice_minutes)
        part_leave = any(b[0] < high and low < b[1] for b in leaves if b is not None)
        checks[5:] = [
            ("leave", None in leaves or part_leave),
            ("outside_hours", low not in c.grid(day) or not exists(day, t, c.tz)),
            ("too_soon", at(day, t, c.tz) <= notice),
            ("daily_limit", limit),
            ("held", any(s - buffer < high and low < e + buffer for s, e in holding)),
            ("taken", any(s - buffer < high and low < e + buffer for s, e in appointments)),
        ]
    return [name for name, applies in checks if applies]


def reference(c: Case) -> list[Row]:
    rows: list[Row] = []
    day = c.start
    while day <= c.end:
        reasons = ref_reasons(c, day, None)
        slots: list[tuple[dt.time, dt.time]] = []
        visit = (c.visit or c.schedule.slot_minutes) * 60
        for start in () if reasons else c.grid(day):
            if not ref_reasons(c, day, clock(start)):
                slots.append((clock(start), clock(start + visit)))
        rows.append((day, reasons[0] if reasons else None, tuple(slots)))
        day += dt.timedelta(days=1)
    return rows


# ---- properties ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(cases())
def test_offered_equals_the_reference_model(c: Case) -> None:
    assert c.run() == reference(c)


def candidates(c: Case, day: dt.date, offered: set[dt.time]) -> list[dt.time]:
    grid = {clock(s) for s in c.grid(day)}
    return sorted({clock(60 * m) for m in range(0, 1440, 5)} | offered | grid)


@settings(max_examples=200, deadline=None)
@given(cases(days=5))
def test_offered_iff_bookable(c: Case) -> None:
    for day, _, slots in c.run():
        offered = {start for start, _ in slots}
        for t in candidates(c, day, offered):
            reason = refusal(c.schedule, day, t, c.on(day), c.now, c.tz, c.visit)
            assert (reason is None) == (t in offered), (day, t, reason)
            assert reason is None or reason in SLOT_REASONS


@settings(max_examples=200, deadline=None)
@given(cases(days=3))
def test_refusal_reports_the_first_reason_that_applies(c: Case) -> None:
    for day, _, slots in c.run():
        for t in candidates(c, day, {start for start, _ in slots}):
            expected = next(iter(ref_reasons(c, day, t)), None)
            assert refusal(c.schedule, day, t, c.on(day), c.now, c.tz, c.visit) == expected


@settings(max_examples=250, deadline=None)
@given(cases(days=1, now_days=(-3, 1)), st.data())
def test_greedy_booking_keeps_the_buffer_and_the_daily_limit(c: Case, data: st.DataObject) -> None:
    note(repr(c))
    day, rules, facts = c.start, c.schedule.rules, c.on(c.start)
    first_free, booked = data.draw(st.booleans()), 0
    for _ in range(len(c.grid(day)) + 1):  # each booking takes at least its own slot away
        (offered,) = availability(c.schedule, day, day, {day: facts}, c.now, c.tz, c.visit)
        if not offered.slots:
            break
        slot = offered.slots[0] if first_free else data.draw(st.sampled_from(offered.slots))
        assert refusal(c.schedule, day, slot.start, facts, c.now, c.tz, c.visit) is None
        facts = replace(facts, busy=(*facts.busy, Interval(day, slot.start, slot.end)))
        booked += 1
        again = refusal(c.schedule, day, slot.start, facts, c.now, c.tz, c.visit)
        assert again in ("daily_limit", "taken")
    else:
        pytest.fail("booking never ran out of slots")
    # Active holds count as appointments: the new bookings keep their distance from them too.
    holding = [(secs(h[1]), secs(h[2])) for h in facts.holds if h[3] > c.now]
    spans = holding + [b for b in map(bounds, facts.busy) if b is not None]
    gap = rules.buffer_minutes * 60
    new = len(spans) - booked
    for i in range(new, len(spans)):
        for j, other in enumerate(spans):
            if j != i:
                assert spans[i][1] + gap <= other[0] or other[1] + gap <= spans[i][0]
        for leave in filter(None, map(bounds, facts.leaves)):
            assert spans[i][1] <= leave[0] or leave[1] <= spans[i][0]
    if rules.max_per_day is not None and booked:
        assert len(facts.busy) + len(holding) <= rules.max_per_day


@settings(max_examples=200, deadline=None)
@given(cases())
def test_the_notice_takes_slots_away_but_never_gives_a_reason(c: Case) -> None:
    rules = c.schedule.rules
    free = replace(c, schedule=replace(c.schedule, rules=replace(rules, min_notice_minutes=0)))
    earliest = c.now + dt.timedelta(minutes=rules.min_notice_minutes)
    for (day, reason, slots), (_, reason0, slots0) in zip(c.run(), free.run(), strict=True):
        assert reason == reason0
        assert slots == tuple(s for s in slots0 if at(day, s[0], c.tz) > earliest)


# ---- examples ------------------------------------------------------------------------------

UTC = ZoneInfo("UTC")
NOW = dt.datetime(2026, 6, 9, 8, 0, tzinfo=UTC)  # a Tuesday
WED, FRI, SAT = dt.date(2026, 6, 10), dt.date(2026, 6, 12), dt.date(2026, 6, 13)
WORKWEEK = Schedule.from_doctor_fields(WEEKDAYS[:5], {"start": "09:00", "end": "17:00"}, 30)


def busy(day: dt.date, start: str, end: str) -> Interval:
    return Interval(day, dt.time.fromisoformat(start), dt.time.fromisoformat(end))


class Example(NamedTuple):
    day: dt.date
    start: str
    slot_reason: str | None  # what `refusal` says at `start`
    day_reason: str | None  # what `availability` says of the day
    facts: DayFacts = NO_FACTS
    active: bool = True
    rules: Rules = Rules()


def case(name: str, *args: Any, **rules: int) -> Any:
    return pytest.param(Example(*args)._replace(rules=Rules(**rules)), id=name)


TEN = DayFacts(busy=(busy(WED, "10:00", "10:30"),))
LEAVE_TEN, HOLIDAY = replace(TEN, leaves=(Interval(WED),)), DayFacts(holiday=True)
PART_LEAVE = DayFacts((busy(WED, "10:00", "11:00"),))
OFF, LIMIT, INACTIVE = "non_working_day", "daily_limit", "doctor_inactive"
HORIZON, SOON = "beyond_horizon", 26 * 60  # notice until Wednesday 10:00
REASON_CASES = [
    case("holiday, off day", SAT, "10:00", "holiday", "holiday", HOLIDAY),
    case("past first", dt.date(2026, 6, 8), "10:00", "past", "past", HOLIDAY, False),
    case("inactive, horizon", FRI, "10:00", INACTIVE, INACTIVE, NO_FACTS, False, horizon_days=1),
    case("horizon, holiday", FRI, "10:00", HORIZON, HORIZON, HOLIDAY, horizon_days=1),
    case("off day, leave", SAT, "10:00", OFF, OFF, DayFacts((Interval(SAT),))),
    case("closing override", WED, "10:00", OFF, OFF, DayFacts(windows=())),
    case("leave, limit", WED, "11:00", "leave", "leave", LEAVE_TEN, max_per_day=1),
    case("part leave, off grid", WED, "10:10", "leave", None, PART_LEAVE),
    case("off grid, too soon", WED, "10:10", "outside_hours", None, min_notice_minutes=SOON),
    case("too soon, taken", WED, "10:00", "too_soon", None, TEN, min_notice_minutes=SOON),
    case("soon, cap", WED, "09:30", "too_soon", LIMIT, TEN, min_notice_minutes=SOON, max_per_day=1),
    case("limit, taken", WED, "10:00", LIMIT, LIMIT, TEN, max_per_day=1),
    case("inside the buffer", WED, "10:30", "taken", None, TEN, buffer_minutes=15),
    case("clear of the buffer", WED, "11:00", None, None, TEN, buffer_minutes=15),
]  # fmt: skip


@pytest.mark.parametrize("ex", REASON_CASES)
def test_the_first_reason_in_spec_order_is_reported(ex: Example) -> None:
    schedule = replace(WORKWEEK, is_active=ex.active, rules=ex.rules)
    start = dt.time.fromisoformat(ex.start)
    assert refusal(schedule, ex.day, start, ex.facts, NOW, UTC) == ex.slot_reason
    (offered,) = availability(schedule, ex.day, ex.day, {ex.day: ex.facts}, NOW, UTC)
    assert offered.unavailable_reason == ex.day_reason


def test_a_day_inside_the_notice_has_no_reason() -> None:
    schedule = replace(WORKWEEK, rules=Rules(min_notice_minutes=3000))  # until Thursday 10:00
    days = availability(schedule, NOW.date(), FRI, {}, NOW, UTC)
    assert [len(d.slots) for d in days] == [0, 0, 13, 16]
    assert {d.unavailable_reason for d in days} == {None}


CLOCK_EXAMPLES = {  # zone, date, window, slot minutes, clinic now | the slots offered
    "spring forward skips 02:00-03:00":
        "America/New_York 2026-03-08 01:00-04:00 30 2026-03-01T00:00 | 01:00 01:30 03:00 03:30",
    "fall back keeps the wall-clock grid":
        "America/New_York 2026-11-01 00:00-03:00 60 2026-10-01T00:00 | 00:00 01:00 02:00",
    "today offers only future slots":
        "Asia/Kolkata 2026-06-01 09:00-11:30 30 2026-06-01T10:15 | 10:30 11:00",
}  # fmt: skip


@pytest.mark.parametrize("example", CLOCK_EXAMPLES.values(), ids=CLOCK_EXAMPLES)
def test_examples_in_clinic_time(example: str) -> None:
    given_, expected = example.split(" | ")
    zone, day, hours, minutes, now = given_.split()
    tz, date, (start, end) = ZoneInfo(zone), dt.date.fromisoformat(day), hours.split("-")
    schedule = Schedule.from_doctor_fields(WEEKDAYS, {"start": start, "end": end}, int(minutes))
    clinic_now = dt.datetime.fromisoformat(now).replace(tzinfo=tz).astimezone(dt.UTC)
    (offered,) = availability(schedule, date, date, {}, clinic_now, tz)
    assert [s.start.isoformat("minutes") for s in offered.slots] == expected.split()


def test_alternatives_prefer_the_same_day_by_distance() -> None:
    day = dt.date(2026, 6, 2)
    facts = facts_by_day(busy=[busy(day, "09:00", "12:00")])
    schedule = Schedule.from_doctor_fields(WEEKDAYS, {"start": "09:00", "end": "13:00"}, 60)
    days = availability(schedule, day, day + dt.timedelta(1), facts, NOW.replace(day=1), UTC)
    picks = nearest_alternatives(days, day, dt.time(10))
    got = [f"{d.isoformat()} {s.start.isoformat('minutes')}" for d, s in picks]
    assert got == ["2026-06-02 12:00", *(f"2026-06-03 {h:02}:00" for h in (9, 10, 11, 12))]
