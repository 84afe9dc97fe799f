"""A doctor created the request's way gets exactly what the engine before schedules offered.

The engine (app/services/scheduling/engine.py) against tests/legacy_engine.py, kept verbatim:
one window on each working day, the slot length as the visit, default rules, no overrides and
no holidays. The legacy reasons (past, doctor_inactive, non_working_day, leave) are a subset
of the new ones; for such a doctor the answers must be identical."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from app.models.enums import WEEKDAYS
from app.services.scheduling import engine
from app.services.scheduling.schedule import Schedule, facts_by_day
from tests import legacy_engine as legacy

# Each zone's clock changes in 2026 (Lord Howe's are half an hour); requests start 0-3 days
# before one, so most ranges cross it.
CHANGES = {
    "UTC": ("03-29", "06-10"),
    "Asia/Kolkata": ("03-08", "10-25"),
    "Europe/London": ("03-29", "10-25"),
    "America/New_York": ("03-08", "11-01"),
    "Australia/Lord_Howe": ("04-05", "10-04"),
}
Span = tuple[dt.date, dt.time | None, dt.time | None]
Row = tuple[dt.date, str | None, list[tuple[dt.time, dt.time]]]


def clock(minutes: int) -> dt.time:
    return dt.time(minutes // 60, minutes % 60)


def seconds(n: int) -> dt.time:
    return dt.time(n // 3600, n // 60 % 60, n % 60)


def hhmm(minutes: int) -> str:
    return clock(minutes).isoformat("minutes")


class Doctor:
    """The request's doctor fields."""

    def __init__(self, days: list[str], start: int, end: int, slot: int, active: bool) -> None:
        self.days, self.start, self.end, self.slot, self.active = days, start, end, slot, active
        self.hours = {"start": hhmm(start), "end": hhmm(end)}

    def __repr__(self) -> str:
        return f"Doctor({self.days}, {self.hours}, slot={self.slot}, active={self.active})"

    def cells(self) -> list[tuple[int, int]]:
        """The legacy grid in minutes: where most of the doctor's bookings sit."""
        return [(s, s + self.slot) for s in range(self.start, self.end - self.slot + 1, self.slot)]


@st.composite
def doctors(draw: st.DrawFn) -> Doctor:
    days = [day for day in WEEKDAYS if draw(st.sampled_from((True, True, False)))]
    start = draw(st.integers(0, 1438) | st.integers(0, 180))  # often across a clock change
    end = draw(st.integers(start + 1, 1439))
    slot = draw(st.sampled_from((15, 20, 30, 45, 60)) | st.integers(5, 480))
    if draw(st.booleans()) and start + slot <= 1439:  # the last slot ends with the window
        end = start + slot * max(1, (end - start) // slot)
    return Doctor(days, start, end, slot, draw(st.sampled_from((True,) * 5 + (False,))))


@st.composite
def spans(draw: st.DrawFn, doctor: Doctor, dates: list[dt.date], whole_day: bool) -> Span:
    """A leave (maybe for the whole day) or an active appointment: on a slot of the grid, or
    anywhere in the day and of any length (booked under an older grid, or a part-day leave)."""
    day = draw(st.sampled_from(dates))
    if whole_day and draw(st.sampled_from((False, False, False, True))):
        return (day, None, None)
    cells, on_grid = doctor.cells(), draw(st.booleans())
    if cells and on_grid:
        start, end = draw(st.sampled_from(cells))
    else:
        start = draw(st.integers(0, 1438))
        start -= start % 5 if draw(st.booleans()) else 0
        end = draw(st.integers(start + 1, min(start + 480, 1439)))
    low, high = 60 * start, 60 * end
    if draw(st.sampled_from((False,) * 4 + (True,))):  # a second off (the API takes HH:MM:SS)
        low, high = low + draw(st.sampled_from((-1, 1))), high + draw(st.sampled_from((-1, 1)))
    return (day, seconds(max(low, 0)), seconds(max(high, low + 1)))


def rows(days: list[engine.Day] | list[legacy.Day]) -> list[Row]:
    return [(d.date, d.unavailable_reason, [(s.start, s.end) for s in d.slots]) for d in days]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_request_style_doctors_get_what_the_legacy_engine_offered(data: st.DataObject) -> None:
    doctor = data.draw(doctors(), label="doctor")
    zone = data.draw(st.sampled_from(sorted(CHANGES)), label="zone")
    change = dt.date.fromisoformat(f"2026-{data.draw(st.sampled_from(CHANGES[zone]))}")
    start = change - dt.timedelta(days=data.draw(st.integers(0, 3)))
    end = start + dt.timedelta(days=data.draw(st.integers(0, 13)))
    dates = engine.date_range(start - dt.timedelta(days=1), end + dt.timedelta(days=1))
    leaves = data.draw(st.lists(spans(doctor, dates, whole_day=True), max_size=6), label="leaves")
    busy = data.draw(st.lists(spans(doctor, dates, whole_day=False), max_size=25), label="busy")
    tz, cells, aligned = ZoneInfo(zone), doctor.cells(), data.draw(st.booleans())
    if cells and aligned:  # now exactly at a slot's start, in clinic time
        today = data.draw(st.sampled_from(dates))
        wall = dt.datetime.combine(today, clock(data.draw(st.sampled_from(cells))[0]), tz)
        now = wall.astimezone(dt.UTC)
    else:
        minutes = data.draw(st.integers(-5 * 1440, 16 * 1440))
        offset = 60 * minutes + data.draw(st.sampled_from((0, 0, 0, 30)))
        now = dt.datetime.combine(start, dt.time(), dt.UTC) + dt.timedelta(seconds=offset)

    old = legacy.Schedule.from_doctor_fields(doctor.days, doctor.hours, doctor.slot, doctor.active)
    expected = rows(legacy.availability(old, start, end, leaves, busy, now, tz))
    facts = facts_by_day(leaves, busy)
    new = Schedule.from_doctor_fields(doctor.days, doctor.hours, doctor.slot, doctor.active)
    assert rows(engine.availability(new, start, end, facts, now, tz)) == expected
    # The same doctor sent as weekly hours (one window on each working day) is the same doctor.
    week = {day: [doctor.hours] for day in doctor.days}
    same = Schedule.from_weekly_hours(week, doctor.slot, doctor.active)
    assert same == new
    assert rows(engine.availability(same, start, end, facts, now, tz)) == expected
