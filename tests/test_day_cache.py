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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.run import reads_by_source
from tests.clock import Clock
from tests.conftest import client_for, make_settings, started_app
from tests.factories import book, create_doctor, next_weekday
from tests.servers import free_port


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

    # Ranges that overlap the window: answered from the days' remembered JSON, not the
    # window's remembered answer.
    overlapping = [
        {"start_date": (first + dt.timedelta(days=1)).isoformat(), "end_date": window["end_date"]},
        {"date": (first + dt.timedelta(days=3)).isoformat()},
    ]

    async def same_as_fresh() -> dict[str, Any]:
        remembered = await client.get(url, params=window)
        computed = await fresh.get(url, params=window)
        assert remembered.status_code == computed.status_code == 200
        assert remembered.content == computed.content
        for params in overlapping:
            part = await client.get(url, params=params)
            assert part.status_code == 200
            assert part.content == (await fresh.get(url, params=params)).content
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

    search = {
        "doctor_id": doctor["id"],
        "start_date": day.isoformat(),
        "visit_type_id": visit_type["id"],
        "limit": 1,
    }

    async def ends() -> list[str]:
        remembered = (await client.get(url, params=params)).json()
        assert remembered == (await fresh.get(url, params=params)).json()
        found = (await client.get("/api/v1/appointments/availability", params=search)).json()
        assert found == (await fresh.get("/api/v1/appointments/availability", params=search)).json()
        assert found[0]["end_time"] == remembered["days"][0]["slots"][0]["end_time"]
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


async def test_a_held_days_json_is_not_remembered_past_the_hold(
    client: httpx.AsyncClient, fresh: httpx.AsyncClient, clock: Clock
) -> None:
    doctor = (await create_doctor(client))["id"]
    first = next_weekday(0, weeks_ahead=2)
    held = first + dt.timedelta(days=1)
    response = await client.post(
        "/api/v1/holds/",
        json={
            "doctor_id": doctor,
            "date": held.isoformat(),
            "start_time": "10:00",
            "ttl_seconds": 60,
        },
    )
    assert response.status_code == 201, response.text
    url = f"/api/v1/appointments/availability/{doctor}"

    async def offered_on_held_day(start: dt.date) -> list[str]:
        params = {"start_date": start.isoformat(), "end_date": (held + dt.timedelta(3)).isoformat()}
        remembered = await client.get(url, params=params)
        assert remembered.content == (await fresh.get(url, params=params)).content
        days = {day["date"]: day for day in remembered.json()["days"]}
        return [slot["start_time"] for slot in days[held.isoformat()]["slots"]]

    async def found_on_held_day() -> list[str]:
        # The search from the day before: the held day is its second chunk's first day.
        params = {"doctor_id": doctor, "start_date": first.isoformat(), "limit": 100}
        found = await client.get("/api/v1/appointments/availability", params=params)
        expected = await fresh.get("/api/v1/appointments/availability", params=params)
        assert found.json() == expected.json()
        return [slot["start_time"] for slot in found.json() if slot["date"] == held.isoformat()]

    # Two ranges over the held day: the second is put together from remembered days' JSON.
    assert "10:00" not in await offered_on_held_day(first)
    assert "10:00" not in await offered_on_held_day(held)
    assert "10:00" not in await found_on_held_day()
    assert "10:00" not in await found_on_held_day()  # the search's slots are not kept either
    clock.later(seconds=61)
    # The first range's answer is forgotten at the hold's expiry; its days are remembered.
    assert "10:00" in await offered_on_held_day(first)
    assert "10:00" in await offered_on_held_day(held)
    assert "10:00" in await found_on_held_day()


async def test_a_day_remembered_past_the_notice_is_cut_once_the_notice_reaches_it(
    client: httpx.AsyncClient, fresh: httpx.AsyncClient, clock: Clock
) -> None:
    """With 12 hours' notice, tomorrow is past the notice in the morning and is its cut day by
    the evening, within the same clinic date: what was remembered for it in the morning must
    not be answered in the evening."""
    doctor = (await create_doctor(client, min_notice_minutes=720))["id"]
    day = next_weekday(1)
    url = f"/api/v1/appointments/availability/{doctor}"
    week = {"start_date": (day - dt.timedelta(days=1)).isoformat(), "end_date": day.isoformat()}
    search = {"doctor_id": doctor, "start_date": day.isoformat(), "limit": 20}

    async def offered() -> tuple[list[str], list[str]]:
        read = await client.get(url, params=week)
        assert read.content == (await fresh.get(url, params=week)).content
        found = await client.get("/api/v1/appointments/availability", params=search)
        assert (
            found.json()
            == (await fresh.get("/api/v1/appointments/availability", params=search)).json()
        )
        days = {d["date"]: d for d in read.json()["days"]}
        slots = [slot["start_time"] for slot in days[day.isoformat()]["slots"]]
        return slots, [
            slot["start_time"] for slot in found.json() if slot["date"] == day.isoformat()
        ]

    clock.set(day - dt.timedelta(days=1), "08:00")  # the notice ends at 20:00 the day before
    assert await offered() == (await offered())  # remembered by the first
    read, found = await offered()
    assert "09:00" in read and "09:00" in found
    clock.set(day - dt.timedelta(days=1), "22:50")  # now it ends at 10:50 on the day
    read, found = await offered()
    assert read[0] == found[0] == "11:00"


async def test_a_worker_reads_the_coming_days_before_it_serves(
    committed_client: httpx.AsyncClient, committed: AsyncEngine, database_url: str
) -> None:
    doctors = [(await create_doctor(committed_client))["id"] for _ in range(3)]
    first = next_weekday(1)
    await book(committed_client, doctors[0], first, "10:00")
    inactive = (await create_doctor(committed_client))["id"]
    deactivated = await committed_client.patch(
        f"/api/v1/doctors/{inactive}", json={"is_active": False}
    )
    assert deactivated.status_code == 200, deactivated.text

    # Room for 20 days of each active doctor (these 3, and any an earlier test left
    # committed): 20 are read, not the 30 asked for.
    async with committed.connect() as conn:
        active = (await conn.execute(text("SELECT count(*) FROM doctors WHERE is_active"))).one()
    settings = make_settings(availability_cache_days=20 * active[0], availability_warm_days=30)
    app, lifespan = await started_app(settings, database_url)
    try:
        async with client_for(app) as warmed:
            url = "/api/v1/appointments/availability/{}"
            before = reads_by_source((await warmed.get("/metrics")).text)
            today = dt.datetime.now(dt.UTC).date()  # the clinic's zone in the tests
            within = {
                "start_date": today.isoformat(),
                "end_date": (today + dt.timedelta(19)).isoformat(),
            }
            for doctor in doctors:
                response = await warmed.get(url.format(doctor), params=within)
                assert response.status_code == 200
            one_day = {"date": first.isoformat()}
            booked_day = (await warmed.get(url.format(doctors[0]), params=one_day)).json()
            offered = [slot["start_time"] for slot in booked_day["days"][0]["slots"]]
            assert "09:30" in offered and "10:00" not in offered
            after = reads_by_source((await warmed.get("/metrics")).text)
            assert after["read"] == before["read"]
            assert after["remembered"] - before["remembered"] == len(doctors) + 1
            # Past the days warmed, and an inactive doctor: read from the database.
            beyond = {"date": (today + dt.timedelta(days=25)).isoformat()}
            assert (await warmed.get(url.format(doctors[1]), params=beyond)).status_code == 200
            assert (await warmed.get(url.format(inactive), params=beyond)).status_code == 200
            last = reads_by_source((await warmed.get("/metrics")).text)
            assert last["read"] - after["read"] == 2
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_a_worker_that_cannot_warm_its_cache_still_starts(
    capfd: pytest.CaptureFixture[str],
) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    app, lifespan = await started_app(make_settings(availability_warm_days=60), unreachable)
    try:
        assert '"message": "day cache not fully warmed"' in capfd.readouterr().err
        async with client_for(app) as client:
            ready = await client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["database"] != "ok"
    finally:
        await lifespan.__aexit__(None, None, None)
