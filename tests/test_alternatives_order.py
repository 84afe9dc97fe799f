"""A refused slot's `alternatives` are the nearest free slots, listed in time order (a voice
agent reads them out as a choice), over REST and in the phone agent's sentence."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import httpx
from hypothesis import given
from hypothesis import strategies as st

from app.agent import speech
from app.models.enums import WEEKDAYS
from app.services.scheduling.engine import ALTERNATIVES, availability, nearest_alternatives
from app.services.scheduling.schedule import Interval, Schedule, facts_by_day
from tests.factories import booking_payload, create_doctor, next_weekday

UTC = ZoneInfo("UTC")
DAY = dt.date(2026, 6, 2)  # a Tuesday
NOW = dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
SCHEDULE = Schedule.from_doctor_fields(WEEKDAYS[:5], {"start": "09:00", "end": "18:00"}, 5)


def _minutes(value: dt.time) -> int:
    return value.hour * 60 + value.minute


def _clock(minutes: int) -> dt.time:
    return dt.time(minutes // 60, minutes % 60)


def test_the_nearest_are_listed_in_time_order() -> None:
    # 17:50 wanted and taken: the nearest five are 17:45, 17:55, 17:40, 17:35 and 17:30.
    taken = Interval(DAY, dt.time(17, 50), dt.time(17, 55))
    days = availability(SCHEDULE, DAY, DAY, facts_by_day(busy=[taken]), NOW, UTC)
    picks = nearest_alternatives(days, DAY, dt.time(17, 50))
    assert [s.start.strftime("%H:%M") for _, s in picks] == [
        "17:30",
        "17:35",
        "17:40",
        "17:45",
        "17:55",
    ]


@given(
    wanted=st.integers(min_value=9 * 60, max_value=18 * 60 - 5).map(lambda m: m - m % 5),
    taken=st.lists(st.integers(min_value=0, max_value=107), max_size=60),
)
def test_any_refusal_offers_the_nearest_in_time_order(wanted: int, taken: list[int]) -> None:
    busy = [
        Interval(day, _clock(9 * 60 + n * 5), _clock(9 * 60 + n * 5 + 5))
        for n in taken
        for day in (DAY, DAY + dt.timedelta(1))
    ]
    days = availability(SCHEDULE, DAY, DAY + dt.timedelta(1), facts_by_day(busy=busy), NOW, UTC)
    picks = nearest_alternatives(days, DAY, _clock(wanted))
    keys = [(d, s.start) for d, s in picks]
    assert keys == sorted(keys)
    # Nearest: no free slot that day left out is closer than one offered that day.
    offered_that_day = [s for d, s in picks if d == DAY]
    free_that_day = list(days[0].slots)
    assert len(picks) == min(ALTERNATIVES, len(free_that_day) + len(days[1].slots))
    if offered_that_day:
        farthest = max(abs(_minutes(s.start) - wanted) for s in offered_that_day)
        left_out = [s for s in free_that_day if s not in offered_that_day]
        assert all(abs(_minutes(s.start) - wanted) >= farthest for s in left_out)


def test_the_agent_names_the_nearest_in_time_order() -> None:
    body = {
        "detail": "That slot is not available for booking (it is taken).",
        "alternatives": [
            {"date": "2026-12-01", "start_time": "17:40", "end_time": "17:45"},
            {"date": "2026-12-01", "start_time": "17:45", "end_time": "17:50"},
            {"date": "2026-12-02", "start_time": "09:00", "end_time": "09:05"},
        ],
    }
    assert speech.failure(body).endswith(
        "The nearest free slots are Tuesday 1 December at 17:40, 17:45 and "
        "Wednesday 2 December at 09:00."
    )


async def test_a_refused_booking_lists_its_alternatives_in_time_order(
    client: httpx.AsyncClient,
) -> None:
    doctor = await create_doctor(
        client, working_hours={"start": "09:00", "end": "18:00"}, slot_duration_minutes=5
    )
    day = next_weekday(2)
    first = await client.post(
        "/api/v1/appointments/", json=booking_payload(doctor["id"], day, "17:50")
    )
    assert first.status_code == 201, first.text
    again = await client.post(
        "/api/v1/appointments/", json=booking_payload(doctor["id"], day, "17:50")
    )
    assert again.status_code == 409
    assert again.json()["reason"] == "taken"
    starts = [(a["date"], a["start_time"]) for a in again.json()["alternatives"]]
    assert starts == [(day.isoformat(), t) for t in ("17:30", "17:35", "17:40", "17:45", "17:55")]
