"""Remembered doctor-days never make availability stale, whoever changes the data.

Every read of an app that remembers days is compared with the same read of an app that
remembers nothing, after each kind of change, including changes written straight to the
database by another client.

Rollback mode: both apps run on the test's connection, so they read the same data, and the
"other client" is SQL sent on that connection, past both apps and their caches.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import client_for, make_settings, started_app
from tests.factories import book, create_doctor, next_weekday


@pytest.fixture
async def fresh(connection: AsyncConnection, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on the same database (the same transaction) that remembers no day."""
    app, lifespan = await started_app(
        make_settings(availability_cache_days=0), database_url, connection
    )
    async with client_for(app) as client:
        yield client
    await lifespan.__aexit__(None, None, None)


async def test_remembered_days_follow_every_change(
    client: httpx.AsyncClient, fresh: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    first = next_weekday(0)
    window = {
        "start_date": first.isoformat(),
        "end_date": (first + dt.timedelta(days=6)).isoformat(),
    }
    url = f"/api/v1/appointments/availability/{doctor['id']}"

    # The cross-doctor search remembers the days it reads too: its first day, and the next
    # days it needs for 100 slots.
    search = {"doctor_id": doctor["id"], "start_date": first.isoformat(), "limit": 100}

    async def same_as_fresh() -> dict[str, Any]:
        remembered = await client.get(url, params=window)
        computed = await fresh.get(url, params=window)
        assert remembered.status_code == computed.status_code == 200
        assert remembered.json() == computed.json()
        found = await client.get("/api/v1/appointments/availability", params=search)
        expected = await fresh.get("/api/v1/appointments/availability", params=search)
        assert found.status_code == expected.status_code == 200
        assert found.json() == expected.json()
        body: dict[str, Any] = remembered.json()
        return body

    async def sql(statement: str, **params: Any) -> None:
        await connection.execute(text(statement), params)

    booked = (await book(client, doctor["id"], first, "10:00")).json()
    patient_id = booked["patient_id"]
    changes: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("book", lambda: book(client, doctor["id"], first, "11:00")),
        (
            "reschedule",
            lambda: client.put(
                f"/api/v1/appointments/{booked['id']}/reschedule",
                json={"date": (first + dt.timedelta(days=1)).isoformat(), "start_time": "09:00"},
            ),
        ),
        ("cancel", lambda: client.delete(f"/api/v1/appointments/{booked['id']}")),
        (
            "leave",
            lambda: client.post(
                f"/api/v1/doctors/{doctor['id']}/leaves",
                json={"date": (first + dt.timedelta(days=2)).isoformat()},
            ),
        ),
        (
            "slot length",
            lambda: client.patch(
                f"/api/v1/doctors/{doctor['id']}", json={"slot_duration_minutes": 20}
            ),
        ),
        (
            "another client inserts a booking",
            lambda: sql(
                "INSERT INTO appointments (id, doctor_id, patient_id, date, start_time, end_time, "
                "status, source, calendar_sync_status) VALUES (:id, :doctor, :patient, :day, "
                "'14:00', '14:20', 'BOOKED', 'ADMIN', 'disabled')",
                id=uuid.uuid4(),
                doctor=doctor["id"],
                patient=patient_id,
                day=first + dt.timedelta(days=3),
            ),
        ),
        (
            "another client deletes a leave",
            lambda: sql("DELETE FROM doctor_leaves WHERE doctor_id = :doctor", doctor=doctor["id"]),
        ),
        (
            "an override closes a day",
            lambda: client.put(
                f"/api/v1/doctors/{doctor['id']}/overrides/{first + dt.timedelta(days=4)}",
                json={"windows": []},
            ),
        ),
        (
            "the override goes",
            lambda: client.delete(
                f"/api/v1/doctors/{doctor['id']}/overrides/{first + dt.timedelta(days=4)}"
            ),
        ),
        (
            "a clinic holiday",
            lambda: client.put(
                f"/api/v1/clinic/holidays/{first + dt.timedelta(days=1)}", json={"name": "Fest"}
            ),
        ),
        (
            "another client removes the holiday",
            lambda: sql(
                "DELETE FROM clinic_holidays WHERE date = :day", day=first + dt.timedelta(1)
            ),
        ),
        (
            "a lunch break",
            lambda: client.patch(
                f"/api/v1/doctors/{doctor['id']}",
                json={
                    "weekly_hours": {
                        day: [
                            {"start": "09:00", "end": "12:00"},
                            {"start": "13:00", "end": "17:00"},
                        ]
                        for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
                    }
                },
            ),
        ),
        (
            "a buffer",
            lambda: client.patch(f"/api/v1/doctors/{doctor['id']}", json={"buffer_minutes": 20}),
        ),
        (
            "a daily limit",
            lambda: client.patch(
                f"/api/v1/doctors/{doctor['id']}", json={"max_appointments_per_day": 1}
            ),
        ),
        (
            "a horizon",
            lambda: client.patch(
                f"/api/v1/doctors/{doctor['id']}", json={"booking_horizon_days": 8}
            ),
        ),
    ]
    before = await same_as_fresh()
    for name, change in changes:
        await same_as_fresh()  # remembered now
        response = await change()
        if isinstance(response, httpx.Response):
            assert response.status_code < 300, (name, response.text)
        after = await same_as_fresh()
        assert after != before, f"{name} changed nothing visible"
        before = after


async def test_remembered_answers_follow_a_visit_types_length(
    client: httpx.AsyncClient, fresh: httpx.AsyncClient
) -> None:
    visit_type = (
        await client.post("/api/v1/visit-types/", json={"name": "Long", "duration_minutes": 60})
    ).json()
    doctor = await create_doctor(client, visit_type_ids=[visit_type["id"]])
    day = next_weekday(2)
    url = f"/api/v1/appointments/availability/{doctor['id']}"
    params = {"date": day.isoformat(), "visit_type_id": visit_type["id"]}

    async def ends() -> list[str]:
        remembered = (await client.get(url, params=params)).json()
        assert remembered == (await fresh.get(url, params=params)).json()
        return [slot["end_time"] for slot in remembered["days"][0]["slots"]]

    assert (await ends())[0] == "10:00"
    patched = await client.patch(
        f"/api/v1/visit-types/{visit_type['id']}", json={"duration_minutes": 90}
    )
    assert patched.status_code == 200
    assert (await ends())[0] == "10:30"


def test_remembered_answers_are_bounded_by_the_days_they_cover() -> None:
    from app.services.scheduling.day_cache import ANSWER_DAYS_PER_DAY, DayCache

    now = dt.datetime(2030, 1, 1, 9, tzinfo=dt.UTC)
    cache = DayCache(2)  # room for 2 * ANSWER_DAYS_PER_DAY days of answers
    budget = 2 * ANSWER_DAYS_PER_DAY
    cache.remember_answer("a", "answer a", budget - 1)
    cache.remember_answer("b", "answer b", 1)
    assert cache.answer("a", now) == "answer a" and cache.answer("b", now) == "answer b"
    cache.remember_answer("c", "answer c", 2)  # over budget: the least recently used goes
    assert cache.answer("a", now) is None
    assert cache.answer("b", now) == "answer b" and cache.answer("c", now) == "answer c"
    cache.remember_answer("huge", "too big", budget + 1)
    assert cache.answer("huge", now) is None
    assert DayCache(0).answer("a", now) is None


def test_an_answer_that_holds_a_hold_is_forgotten_when_the_hold_expires() -> None:
    from app.services.scheduling.day_cache import DayCache

    now = dt.datetime(2030, 1, 1, 9, tzinfo=dt.UTC)
    expiry = now + dt.timedelta(minutes=5)
    cache = DayCache(4)
    cache.remember_answer("held", "without the held slot", 1, until=expiry)
    assert cache.answer("held", now) == "without the held slot"
    assert cache.answer("held", expiry - dt.timedelta(microseconds=1)) is not None
    assert cache.answer("held", expiry) is None
    # Forgotten, not just hidden: its days no longer count against the budget.
    assert cache._answer_days == 0
