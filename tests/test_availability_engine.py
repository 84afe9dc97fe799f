"""Property tests of the pure availability engine."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.scheduling.engine import (
    Interval,
    Schedule,
    availability,
    day_availability,
    grid,
    nearest_alternatives,
)

ZONES = ["UTC", "America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe"]
BASE = dt.date(2026, 3, 1)  # spans the March and April clock changes of several zones


def _time(minutes: int) -> dt.time:
    return dt.time(minutes // 60, minutes % 60)


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    start = draw(st.integers(0, 22 * 60))
    end = draw(st.integers(start + 1, 23 * 60 + 59))
    return Schedule(
        working_days=frozenset(draw(st.sets(st.integers(0, 6), min_size=1))),
        start=_time(start),
        end=_time(end),
        slot_minutes=draw(st.integers(5, 480)),
        is_active=draw(st.booleans()),
    )


@st.composite
def intervals(draw: st.DrawFn, whole_day_allowed: bool) -> Interval:
    day = BASE + dt.timedelta(days=draw(st.integers(0, 45)))
    if whole_day_allowed and draw(st.booleans()):
        return Interval(day)
    start = draw(st.integers(0, 23 * 60 + 58))
    end = draw(st.integers(start + 1, 23 * 60 + 59))
    return Interval(day, _time(start), _time(end))


nows = st.datetimes(min_value=dt.datetime(2026, 2, 25), max_value=dt.datetime(2026, 4, 20)).map(
    lambda d: d.replace(tzinfo=dt.UTC)
)


def _secs(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _exists(day: dt.date, t: dt.time, tz: ZoneInfo) -> bool:
    wall = dt.datetime.combine(day, t, tzinfo=tz)
    return wall.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) == wall.replace(tzinfo=None)


@settings(max_examples=300, deadline=None)
@given(
    schedule=schedules(),
    leaves=st.lists(intervals(whole_day_allowed=True), max_size=8),
    busy=st.lists(intervals(whole_day_allowed=False), max_size=30),
    now=nows,
    zone=st.sampled_from(ZONES),
    span=st.integers(0, 40),
)
def test_offered_slots_are_exactly_the_bookable_ones(
    schedule: Schedule,
    leaves: list[Interval],
    busy: list[Interval],
    now: dt.datetime,
    zone: str,
    span: int,
) -> None:
    tz = ZoneInfo(zone)
    days = availability(schedule, BASE, BASE + dt.timedelta(days=span), leaves, busy, now, tz)
    assert [d.date for d in days] == [BASE + dt.timedelta(days=i) for i in range(span + 1)]
    today = now.astimezone(tz).date()
    for day in days:
        whole_leave = any(lv.date == day.date and lv.start is None for lv in leaves)
        blocked = [
            (_secs(i.start), _secs(i.end))
            for i in [*leaves, *busy]
            if i.date == day.date and i.start is not None and i.end is not None
        ]
        expected = []
        usable = (
            day.date >= today
            and schedule.is_active
            and day.date.weekday() in schedule.working_days
            and not whole_leave
        )
        if usable:
            for start, end in grid(schedule):
                start_t = dt.time(start // 3600, start // 60 % 60)
                if any(start < b_end and b_start < end for b_start, b_end in blocked):
                    continue
                if not _exists(day.date, start_t, tz):
                    continue
                if dt.datetime.combine(day.date, start_t, tzinfo=tz) <= now:
                    continue
                expected.append(start_t)
        assert [s.start for s in day.slots] == expected
        for slot in day.slots:
            assert schedule.start <= slot.start < slot.end <= schedule.end
            assert (_secs(slot.start) - _secs(schedule.start)) % (schedule.slot_minutes * 60) == 0
            assert _secs(slot.end) - _secs(slot.start) == schedule.slot_minutes * 60
        if day.unavailable_reason is not None:
            assert day.slots == ()
        if day.date < today:
            assert day.unavailable_reason == "past"
        elif not schedule.is_active:
            assert day.unavailable_reason == "doctor_inactive"
        elif day.date.weekday() not in schedule.working_days:
            assert day.unavailable_reason == "non_working_day"
        elif whole_leave:
            assert day.unavailable_reason == "leave"
        else:
            assert day.unavailable_reason is None


def _weekday_schedule(start: str = "09:00", end: str = "17:00", minutes: int = 30) -> Schedule:
    return Schedule(
        frozenset(range(7)), dt.time.fromisoformat(start), dt.time.fromisoformat(end), minutes, True
    )


def test_spring_forward_day_skips_the_missing_hour() -> None:
    tz = ZoneInfo("America/New_York")
    day = dt.date(2026, 3, 8)  # 02:00 -> 03:00
    now = dt.datetime(2026, 3, 1, tzinfo=tz)
    offered = day_availability(_weekday_schedule("01:00", "04:00"), day, [], [], now, tz)
    assert [s.start.isoformat("minutes") for s in offered.slots] == [
        "01:00",
        "01:30",
        "03:00",
        "03:30",
    ]


def test_fall_back_day_keeps_the_wall_clock_grid() -> None:
    tz = ZoneInfo("America/New_York")
    day = dt.date(2026, 11, 1)  # 02:00 -> 01:00
    now = dt.datetime(2026, 10, 1, tzinfo=tz)
    offered = day_availability(_weekday_schedule("00:00", "03:00", 60), day, [], [], now, tz)
    assert [s.start.isoformat("minutes") for s in offered.slots] == ["00:00", "01:00", "02:00"]


def test_today_offers_only_future_slots_in_clinic_time() -> None:
    tz = ZoneInfo("Asia/Kolkata")
    now = dt.datetime(2026, 6, 1, 10, 15, tzinfo=tz).astimezone(dt.UTC)
    offered = day_availability(_weekday_schedule(), dt.date(2026, 6, 1), [], [], now, tz)
    assert offered.slots[0].start == dt.time(10, 30)


def test_alternatives_prefer_the_same_day_by_distance() -> None:
    tz = ZoneInfo("UTC")
    now = dt.datetime(2026, 6, 1, tzinfo=tz)
    day = dt.date(2026, 6, 2)
    busy = [Interval(day, dt.time(9), dt.time(12))]
    days = availability(
        _weekday_schedule("09:00", "13:00", 60), day, day + dt.timedelta(1), [], busy, now, tz
    )
    picks = nearest_alternatives(days, day, dt.time(10))
    assert [(d.isoformat(), s.start.isoformat("minutes")) for d, s in picks] == [
        ("2026-06-02", "12:00"),
        ("2026-06-03", "09:00"),
        ("2026-06-03", "10:00"),
        ("2026-06-03", "11:00"),
        ("2026-06-03", "12:00"),
    ]
