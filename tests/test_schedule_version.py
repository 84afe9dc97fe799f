"""The doctor's schedule version, on which a booking's write depends (migration 0004).

Every change that can alter a doctor's free slots must change the version, whatever code path
makes it, and a booking decided on an older version must write nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app import metrics
from app.adapters import clinic_of
from app.database import unit_of_work
from app.models.enums import AppointmentSource
from app.schemas.appointment import AppointmentRead
from app.services.booking import sql as booking_sql
from app.services.context import Caller
from app.services.scheduling.engine import SlotTime
from app.services.scheduling.queries import DoctorCalendar, load_doctor_calendar
from tests.factories import book, booking_payload, create_doctor, next_weekday


async def _versions(conn: AsyncConnection, doctor_id: str, day: dt.date) -> tuple[int, int]:
    """The doctor's schedule version and the version of each day from `day` to the next."""
    row = (
        await conn.execute(
            text(
                "SELECT d.schedule_version, coalesce(sum(v.version), 0) FROM doctors d "
                "LEFT JOIN doctor_days v ON v.doctor_id = d.id AND v.date IN (:day, :next) "
                "WHERE d.id = :id GROUP BY d.id"
            ),
            {"id": doctor_id, "day": day, "next": day + dt.timedelta(days=1)},
        )
    ).one()
    return int(row[0]), int(row[1])


async def _read(app: FastAPI, doctor_id: str, day: dt.date) -> DoctorCalendar:
    async with unit_of_work(app.state.sessionmaker) as session:
        return await load_doctor_calendar(session, uuid.UUID(doctor_id), day, day)


async def _claim(
    app: FastAPI,
    read: DoctorCalendar,
    day: dt.date,
    start: dt.time = dt.time(9),
) -> AppointmentRead | booking_sql.Refusal:
    """The booking's write for a new caller, at `start` for 30 minutes, decided on `read`."""
    async with unit_of_work(app.state.sessionmaker) as session:
        row = booking_sql.booking_row(
            read=read,
            patient_id=None,
            new_patient=booking_sql.NewPatient("Caller", "+14155550123", None, None, None),
            day=day,
            slot=SlotTime(
                start, (dt.datetime.combine(day, start) + dt.timedelta(minutes=30)).time()
            ),
            source=AppointmentSource.AI_CALLING_AGENT,
            caller=Caller("agent"),
            mirror_to_calendar=True,
            clinic=clinic_of(app.state.settings),
        )
        return await booking_sql.book_if_current(session, row)


async def test_every_availability_change_moves_the_version(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    doctor_id = doctor["id"]
    day = next_weekday(0)
    seen = [await _versions(connection, doctor_id, day)]

    async def moved() -> bool:
        seen.append(await _versions(connection, doctor_id, day))
        return seen[-1] != seen[-2]

    booked = await book(client, doctor_id, day, "10:00")
    assert booked.status_code == 201 and await moved()
    appointment = booked.json()["id"]
    moved_to = {"date": day.isoformat(), "start_time": "11:00"}
    response = await client.put(f"/api/v1/appointments/{appointment}/reschedule", json=moved_to)
    assert response.status_code == 200 and await moved()
    assert (await client.delete(f"/api/v1/appointments/{appointment}")).status_code == 200
    assert await moved()
    leave_url = f"/api/v1/doctors/{doctor_id}/leaves"
    leave = await client.post(leave_url, json={"date": (day + dt.timedelta(days=1)).isoformat()})
    assert leave.status_code == 201 and await moved()
    assert (await client.delete(f"{leave_url}/{leave.json()['id']}")).status_code == 204
    assert await moved()
    for change in (
        {"slot_duration_minutes": 20},
        {"working_days": ["monday"]},
        {"is_active": False},
    ):
        assert (await client.patch(f"/api/v1/doctors/{doctor_id}", json=change)).status_code == 200
        assert await moved()

    # Changes that leave the free slots alone keep the version.
    assert (
        await client.patch(f"/api/v1/doctors/{doctor_id}", json={"name": "Dr Renamed"})
    ).status_code == 200
    assert not await moved()
    await connection.execute(
        text("UPDATE appointments SET calendar_sync_status = 'synced' WHERE id = :id"),
        {"id": appointment},
    )
    assert not await moved()


async def test_a_booking_decided_on_an_old_version_writes_nothing(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    day = next_weekday(1)
    read = await _read(app, doctor["id"], day)
    # The day changes after the read: a leave over the very slot about to be booked.
    leave = {"date": day.isoformat(), "start_time": "10:00", "end_time": "11:00"}
    assert (
        await client.post(f"/api/v1/doctors/{doctor['id']}/leaves", json=leave)
    ).status_code == 201

    outcome = await _claim(app, read, day, dt.time(10))
    assert outcome is booking_sql.Refusal.STALE
    for table in ("appointments", "patients", "appointment_events", "outbox_jobs"):
        assert await connection.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table

    # Through the API the same booking is decided again on the current day: refused.
    response = await book(client, doctor["id"], day, "10:00")
    assert response.status_code == 409
    assert response.json()["code"] == "slot_unavailable"


async def test_other_days_do_not_disturb_a_booking_but_a_schedule_edit_does(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    doctor = await create_doctor(client)
    day, other_day = next_weekday(2), next_weekday(3)
    read = await _read(app, doctor["id"], day)
    other_read = await _read(app, doctor["id"], other_day)
    # Another day of the same doctor changes: this day's decision still holds.
    assert (await book(client, doctor["id"], other_day, "15:00")).status_code == 201
    booked = await _claim(app, read, day)
    assert isinstance(booked, AppointmentRead) and booked.date == day

    # The working hours change: every day's decision is void, the untouched day's too.
    change = {"working_hours": {"start": "12:00", "end": "17:00"}}
    assert (await client.patch(f"/api/v1/doctors/{doctor['id']}", json=change)).status_code == 200
    late = await _claim(app, other_read, other_day)
    assert late is booking_sql.Refusal.STALE


async def _waiting_on_a_lock(engine: AsyncEngine, within: float = 10.0) -> None:
    """Until some backend of this test database waits on a lock (the booking's claim on the
    blocked day); other databases on the server may be other suites', waiting on their own."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with engine.connect() as conn:
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
        if waiting:
            return
        assert asyncio.get_running_loop().time() < deadline, "the booking never waited"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("idempotency_key", [None, "retry-1"])
async def test_a_booking_overtaken_between_its_read_and_its_write_decides_again(
    committed: AsyncEngine, committed_client: httpx.AsyncClient, idempotency_key: str | None
) -> None:
    """The day changes after the booking has read it and before its write: the booking claims
    the day, reads it again and books, with or without an idempotency key; never a 503."""
    doctor = await create_doctor(committed_client)
    day = next_weekday(2)
    assert (await book(committed_client, doctor["id"], day, "15:00")).status_code == 201
    decided_again = metrics.BOOKINGS_DECIDED_AGAIN._value.get()
    async with committed.connect() as blocker:
        await blocker.begin()
        await blocker.execute(
            text(
                "UPDATE doctor_days SET version = version + 1 WHERE doctor_id = :id AND date = :day"
            ),
            {"id": doctor["id"], "day": day},
        )
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        booking = asyncio.create_task(
            committed_client.post(
                "/api/v1/appointments/",
                json=booking_payload(doctor["id"], day, "10:00"),
                headers=headers,
            )
        )
        await _waiting_on_a_lock(committed)
        await blocker.commit()
    response = await booking
    assert response.status_code == 201, response.text
    assert response.json()["start_time"] == "10:00"
    assert metrics.BOOKINGS_DECIDED_AGAIN._value.get() == decided_again + 1
    async with committed.connect() as conn:
        booked = await conn.scalar(
            text("SELECT count(*) FROM appointments WHERE doctor_id = :id AND date = :day"),
            {"id": doctor["id"], "day": day},
        )
    assert booked == 2


async def test_a_holiday_reaches_a_doctor_created_at_the_same_moment(db: AsyncEngine) -> None:
    """A holiday written while another transaction is creating a doctor waits for it, so the
    new doctor's day moves too (else a booking read before the holiday could commit on it)."""
    day = next_weekday(3)
    doctor_id = uuid.uuid4()
    async with db.connect() as creating, db.connect() as closing:
        await creating.begin()
        await creating.execute(
            text(
                "INSERT INTO doctors (id, clinic_id, name, email, specialization, "
                "experience_years, languages, consultation_type, weekly_hours, working_days, "
                "working_hours, slot_duration_minutes, is_active) VALUES (:id, :id, 'Dr New', "
                "'new@clinic.example', 'ENT', 1, '{}', 'in_person', "
                """'{"monday": [{"start": "09:00", "end": "12:00"}]}', '["monday"]', """
                """'{"start": "09:00", "end": "12:00"}', 30, true)"""
            ),
            {"id": doctor_id},
        )
        await closing.begin()
        holiday = asyncio.create_task(
            closing.execute(
                text("INSERT INTO clinic_holidays (date, name) VALUES (:day, 'Fest')"),
                {"day": day},
            )
        )
        await asyncio.sleep(0.5)
        assert not holiday.done(), "the holiday waits for the doctor being created"
        await creating.commit()
        await asyncio.wait_for(holiday, 10)
        await closing.commit()
    async with db.connect() as conn:
        version = await conn.scalar(
            text("SELECT version FROM doctor_days WHERE doctor_id = :id AND date = :day"),
            {"id": doctor_id, "day": day},
        )
    assert version == 1
