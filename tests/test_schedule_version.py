"""The doctor's schedule version, on which a booking's write depends (migration 0004).

Every change that can alter a doctor's free slots must change the version, whatever code path
makes it, and a booking decided on an older version must write nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.database import driver_connection
from app.models.enums import AppointmentSource
from app.services import booking_queries
from app.services.audit import Caller
from app.services.availability_service import SlotTime
from app.services.schedule_queries import DoctorCalendar, load_doctor_calendar
from tests.factories import book, create_doctor, next_weekday


async def _versions(db: AsyncEngine, doctor_id: str, day: dt.date) -> tuple[int, int]:
    """The doctor's schedule version and the version of each day from `day` to the next."""
    async with db.connect() as conn:
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


async def _claim(
    app: FastAPI,
    doctor_id: str,
    read: DoctorCalendar,
    day: dt.date,
    start: dt.time = dt.time(9),
) -> booking_queries.Outcome:
    """The booking's write for a new caller, at `start` for 30 minutes, decided on `read`."""
    async with driver_connection(app.state.engine) as driver:
        return await booking_queries.book_if_current(
            driver,
            doctor_id=uuid.UUID(doctor_id),
            read=read,
            patient_id=None,
            new_patient=booking_queries.NewPatient("Caller", "+14155550123", None, None, None),
            day=day,
            slot=SlotTime(
                start, (dt.datetime.combine(day, start) + dt.timedelta(minutes=30)).time()
            ),
            source=AppointmentSource.AI_CALLING_AGENT,
            caller=Caller("agent"),
            mirror_to_calendar=True,
        )


async def test_every_availability_change_moves_the_version(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    doctor = await create_doctor(client)
    doctor_id = doctor["id"]
    day = next_weekday(0)
    seen = [await _versions(db, doctor_id, day)]

    async def moved() -> bool:
        seen.append(await _versions(db, doctor_id, day))
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
    async with db.begin() as conn:
        await conn.execute(
            text("UPDATE appointments SET calendar_sync_status = 'synced' WHERE id = :id"),
            {"id": appointment},
        )
    assert not await moved()


async def test_a_booking_decided_on_an_old_version_writes_nothing(
    client: httpx.AsyncClient, app: FastAPI, db: AsyncEngine
) -> None:
    doctor = await create_doctor(client)
    day = next_weekday(1)
    async with driver_connection(app.state.engine) as driver:
        read = await load_doctor_calendar(driver, uuid.UUID(doctor["id"]), day, day)
    # The day changes after the read: a leave over the very slot about to be booked.
    leave = {"date": day.isoformat(), "start_time": "10:00", "end_time": "11:00"}
    assert (
        await client.post(f"/api/v1/doctors/{doctor['id']}/leaves", json=leave)
    ).status_code == 201

    outcome = await _claim(app, doctor["id"], read, day, dt.time(10))
    assert outcome.stale and outcome.appointment is None
    async with db.connect() as conn:
        for table in ("appointments", "patients", "appointment_events", "outbox_jobs"):
            assert await conn.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table

    # Through the API the same booking is decided again on the current day: refused.
    response = await book(client, doctor["id"], day, "10:00")
    assert response.status_code == 409
    assert response.json()["code"] == "slot_unavailable"


async def test_other_days_do_not_disturb_a_booking_but_a_schedule_edit_does(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    doctor = await create_doctor(client)
    day, other_day = next_weekday(2), next_weekday(3)
    async with driver_connection(app.state.engine) as driver:
        read = await load_doctor_calendar(driver, uuid.UUID(doctor["id"]), day, day)
        other_read = await load_doctor_calendar(
            driver, uuid.UUID(doctor["id"]), other_day, other_day
        )
    # Another day of the same doctor changes: this day's decision still holds.
    assert (await book(client, doctor["id"], other_day, "15:00")).status_code == 201
    booked = await _claim(app, doctor["id"], read, day)
    assert booked.appointment is not None and booked.appointment["date"] == day

    # The working hours change: every day's decision is void, the untouched day's too.
    change = {"working_hours": {"start": "12:00", "end": "17:00"}}
    assert (await client.patch(f"/api/v1/doctors/{doctor['id']}", json=change)).status_code == 200
    late = await _claim(app, doctor["id"], other_read, other_day)
    assert late.stale and late.appointment is None
