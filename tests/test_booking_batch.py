"""Bookings written together (app/services/booking/batch.py).

The statement writes each row as if alone, on a real database; under concurrent requests the
bookings really go in batches and each comes out as it would alone; and the batcher's hand-over
holds up when a batch fails or the request writing it is cancelled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.adapters import clinic_of
from app.database import unit_of_work
from app.models.enums import AppointmentSource
from app.schemas.appointment import AppointmentRead
from app.services.booking import sql as booking_sql
from app.services.booking.batch import Batcher, Row
from app.services.booking.sql import NewPatient, Refusal
from app.services.context import Caller
from app.services.scheduling.engine import SlotTime
from app.services.scheduling.queries import (
    CalendarWanted,
    DoctorCalendar,
    load_doctor_calendar,
    load_doctor_calendars,
)
from tests.conftest import client_for, make_settings
from tests.factories import book, create_doctor, create_patient, next_weekday
from tests.test_metrics import sample


async def _read(app: FastAPI, doctor_id: str, day: dt.date) -> DoctorCalendar:
    async with unit_of_work(app.state.sessionmaker) as session:
        return await load_doctor_calendar(session, uuid.UUID(doctor_id), day, day)


def _row(
    read: DoctorCalendar,
    day: dt.date,
    start: str,
    *,
    patient_id: str | None = None,
    mobile: str | None = None,
    hold_id: str | None = None,
) -> Row:
    begins = dt.time.fromisoformat(start)
    ends = (dt.datetime.combine(day, begins) + dt.timedelta(minutes=30)).time()
    return booking_sql.booking_row(
        read=read,
        day=day,
        slot=SlotTime(begins, ends),
        patient_id=uuid.UUID(patient_id) if patient_id else None,
        new_patient=NewPatient("Caller", mobile, None, None, None) if mobile else None,
        source=AppointmentSource.AI_CALLING_AGENT,
        caller=Caller("batch-test", "call-7"),
        mirror_to_calendar=True,
        clinic=clinic_of(make_settings()),
        hold_id=uuid.UUID(hold_id) if hold_id else None,
    )


async def test_one_statement_decides_each_row_as_if_alone(committed_app: FastAPI) -> None:
    """Seven bookings in one statement: each is written, or refused for its own reason, as it
    would be alone; only the written ones leave an audit row and a calendar job."""
    app = committed_app
    async with client_for(app) as client:
        doctors = [(await create_doctor(client))["id"] for _ in range(2)]
        patient = await create_patient(client)
        monday, tuesday, wednesday = (next_weekday(day) for day in range(3))
        first = doctors[0]
        # A day that moves after it is read, and a slot taken after its read.
        stale = await _read(app, first, tuesday)
        taken_read = await _read(app, first, wednesday)
        for day, start in ((tuesday, "09:00"), (wednesday, "10:00")):
            answer = await book(client, first, day, start, patient_id=patient["id"], source="ADMIN")
            assert answer.status_code == 201, answer.text
        released = await client.post(
            "/api/v1/holds",
            json={"doctor_id": doctors[1], "date": wednesday.isoformat(), "start_time": "15:00"},
        )
        assert released.status_code == 201, released.text
        hold_id = released.json()["id"]
        assert (await client.delete(f"/api/v1/holds/{hold_id}")).status_code == 204
    fresh = await _read(app, first, monday)
    other_monday = await _read(app, doctors[1], monday)
    other_tuesday = await _read(app, doctors[1], tuesday)
    other_wednesday = await _read(app, doctors[1], wednesday)
    taken_now = await _read(app, first, wednesday)
    rows = [
        _row(fresh, monday, "09:00", patient_id=patient["id"]),  # written
        _row(stale, tuesday, "11:00", patient_id=patient["id"]),  # the day moved: stale
        _row(taken_now, wednesday, "10:00", patient_id=patient["id"]),  # slot taken
        _row(other_monday, monday, "09:00", patient_id=str(uuid.uuid4())),  # no such patient
        _row(other_tuesday, tuesday, "09:00", mobile="+14155550991"),  # a new caller
        _row(other_wednesday, wednesday, "15:00", patient_id=patient["id"], hold_id=hold_id),
    ]
    assert taken_read.day_versions != taken_now.day_versions
    async with unit_of_work(app.state.sessionmaker) as session:
        written = await booking_sql.write_bookings(session, rows)
    outcomes = [booking_sql.outcome(record, row) for record, row in zip(written, rows, strict=True)]
    assert isinstance(outcomes[0], AppointmentRead)
    assert outcomes[1:4] == [Refusal.STALE, Refusal.SLOT_TAKEN, Refusal.PATIENT_MISSING]
    assert isinstance(outcomes[4], AppointmentRead)
    assert outcomes[5] is Refusal.HOLD_GONE
    booked = {o.id for o in outcomes if isinstance(o, AppointmentRead)}

    async with app.state.engine.connect() as conn:
        trail = (
            await conn.execute(
                text(
                    "SELECT appointment_id, action::text, actor, correlation_id "
                    "FROM appointment_events WHERE actor = 'batch-test'"
                )
            )
        ).all()
        jobs = (
            await conn.execute(
                text("SELECT aggregate_id FROM outbox_jobs WHERE aggregate_id = ANY(:ids)"),
                {"ids": list(booked)},
            )
        ).all()
        new_caller = (
            await conn.execute(
                text("SELECT count(*) FROM patients WHERE mobile_number = '+14155550991'")
            )
        ).scalar_one()
    assert {(row[0], row[1], row[2], row[3]) for row in trail} == {
        (appointment, "created", "batch-test", "call-7") for appointment in booked
    }
    assert {row[0] for row in jobs} == booked
    assert new_caller == 1


async def test_two_bookings_of_one_new_caller_in_one_statement_share_the_patient(
    committed_app: FastAPI,
) -> None:
    app = committed_app
    async with client_for(app) as client:
        doctor = (await create_doctor(client))["id"]
    monday = next_weekday(0)
    tuesday = monday + dt.timedelta(days=1)
    rows = [
        _row(await _read(app, doctor, day), day, "09:00", mobile="+14155550992")
        for day in (monday, tuesday)
    ]
    async with unit_of_work(app.state.sessionmaker) as session:
        written = await booking_sql.write_bookings(session, rows)
    outcomes = [booking_sql.outcome(record, row) for record, row in zip(written, rows, strict=True)]
    assert all(isinstance(o, AppointmentRead) for o in outcomes), outcomes
    assert len({o.patient_id for o in outcomes if isinstance(o, AppointmentRead)}) == 1


async def test_concurrent_bookings_go_in_batches_and_each_lands_once(
    committed_app: FastAPI, committed: AsyncEngine
) -> None:
    """Forty bookings at once over four doctors (two asking for the same slot each time):
    they are written in batches of several, every slot asked for is booked exactly once, and
    every booking has its audit row."""
    app = committed_app
    async with client_for(app) as client, client_for(app, None) as anonymous:
        doctors = [(await create_doctor(client))["id"] for _ in range(4)]
        before = (await anonymous.get("/metrics")).text
        wanted = [
            (doctor, next_weekday(day), f"{9 + hour:02d}:00")
            for doctor in doctors
            for day in range(2)
            for hour in range(5)
        ]
        asked = [*wanted, *wanted[::4]]

        async def book_as(doctor: str, day: dt.date, start: str, n: int) -> httpx.Response:
            return await client.post(
                "/api/v1/appointments/",
                json={
                    "doctor_id": doctor,
                    "date": day.isoformat(),
                    "start_time": start,
                    "source": "AI_CALLING_AGENT",
                    "patient": {"name": "Caller", "mobile_number": f"+1415556{n % 12:04d}"},
                },
            )

        answers = await asyncio.gather(*(book_as(*slot, n) for n, slot in enumerate(asked)))
        after = (await anonymous.get("/metrics")).text
    statuses = [a.status_code for a in answers]
    assert statuses.count(201) == len(wanted), [a.text for a in answers if a.status_code != 201]
    assert statuses.count(409) == len(asked) - len(wanted)
    for kind in ("read", "write"):
        rows = sample(after, "booking_batch_rows_sum", kind=kind) - sample(
            before, "booking_batch_rows_sum", kind=kind
        )
        batches = sample(after, "booking_batch_rows_count", kind=kind) - sample(
            before, "booking_batch_rows_count", kind=kind
        )
        assert rows >= len(wanted) and batches < rows, (kind, rows, batches)

    async with committed.connect() as conn:
        booked = (
            await conn.execute(
                text(
                    "SELECT a.doctor_id::text, a.date, to_char(a.start_time, 'HH24:MI'), "
                    "(SELECT count(*) FROM appointment_events e WHERE e.appointment_id = a.id) "
                    "FROM appointments a"
                )
            )
        ).all()
    assert sorted((d, day, start) for d, day, start, _ in booked) == sorted(wanted)
    assert {events for *_, events in booked} == {1}


# -- the hand-over, on its own -----------------------------------------------------------------


class _Writes:
    """A write that records its batches and waits until the test lets each one finish."""

    def __init__(self, poison: object = None) -> None:
        self.batches: list[list[object]] = []
        self.gate = asyncio.Event()
        self.poison = poison

    async def __call__(self, rows: Sequence[Row]) -> list[asyncpg.Record]:
        batch = [row["n"] for row in rows]
        self.batches.append(batch)
        await self.gate.wait()
        if self.poison in batch:
            raise ValueError(f"row {self.poison} is refused")
        return [f"written {n}" for n in batch]  # type: ignore[misc]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_waiting_bookings_go_as_the_next_batch_one_per_day() -> None:
    batcher, writes = Batcher(most_rows=3, writers=1), _Writes()
    keys = ["a", "b", "b", "c", "d", "e"]
    tasks = [asyncio.create_task(batcher.run({"n": n}, key, writes)) for n, key in enumerate(keys)]
    await _settle()
    writes.gate.set()
    assert await asyncio.gather(*tasks) == [f"written {n}" for n in range(6)]
    # The first alone; then up to three, one per day; the second "b" waits its turn.
    assert writes.batches == [[0], [1, 3, 4], [2, 5]]


async def test_a_failed_batch_writes_each_alone_and_the_error_stays_its_own() -> None:
    batcher, writes = Batcher(most_rows=8, writers=1), _Writes(poison=2)
    tasks = [asyncio.create_task(batcher.run({"n": n}, n, writes)) for n in range(4)]
    await _settle()
    writes.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[:2] == ["written 0", "written 1"]
    assert isinstance(results[2], ValueError)
    assert results[3] == "written 3"
    assert [1, 2, 3] in writes.batches and [2] in writes.batches
    assert batcher._writing == 0 and not batcher._waiting


async def test_a_cancelled_writer_still_writes_its_batch_and_hands_on() -> None:
    batcher, writes = Batcher(most_rows=8, writers=1), _Writes()
    leader = asyncio.create_task(batcher.run({"n": 0}, 0, writes))
    await _settle()
    followers = [asyncio.create_task(batcher.run({"n": n}, n, writes)) for n in (1, 2)]
    await _settle()
    leader.cancel()
    await _settle()
    assert not leader.done()  # it waits for its batch, which is others' too
    writes.gate.set()
    assert await asyncio.gather(*followers) == ["written 1", "written 2"]
    assert (await asyncio.gather(leader, return_exceptions=True))[0].__class__ is (
        asyncio.CancelledError
    )
    assert writes.batches == [[0], [1, 2]]
    # A follower cancelled while it waits leaves the queue; the batcher is free again.
    writes.gate.clear()
    first = asyncio.create_task(batcher.run({"n": 3}, 3, writes))
    await _settle()
    gone = asyncio.create_task(batcher.run({"n": 4}, 4, writes))
    await _settle()
    gone.cancel()
    writes.gate.set()
    assert await first == "written 3"
    assert batcher._writing == 0 and not batcher._waiting


async def test_days_read_together_equal_days_read_alone(committed_app: FastAPI) -> None:
    """The batched read (`load_doctor_calendars`) answers for each range exactly what the read
    of that range alone does: leaves, bookings, holds (but the one left out), overrides,
    holidays and versions; None for a doctor that does not exist."""
    app = committed_app
    monday = next_weekday(0)
    tuesday = monday + dt.timedelta(days=1)
    async with client_for(app) as client:
        first = (await create_doctor(client))["id"]
        second = (await create_doctor(client))["id"]
        patient = await create_patient(client)
        for doctor, day, start in ((first, monday, "09:00"), (second, tuesday, "11:00")):
            answer = await book(
                client, doctor, day, start, patient_id=patient["id"], source="ADMIN"
            )
            assert answer.status_code == 201, answer.text
        held = await client.post(
            "/api/v1/holds",
            json={"doctor_id": first, "date": monday.isoformat(), "start_time": "10:00"},
        )
        assert held.status_code == 201, held.text
        leave = await client.post(
            f"/api/v1/doctors/{second}/leaves",
            json={"date": tuesday.isoformat(), "start_time": "14:00", "end_time": "15:00"},
        )
        assert leave.status_code == 201, leave.text
    hold_id = uuid.UUID(held.json()["id"])
    ranges = [
        CalendarWanted(uuid.UUID(first), monday, monday),
        CalendarWanted(uuid.UUID(first), monday, monday, exclude_hold=hold_id),
        CalendarWanted(uuid.UUID(second), monday, tuesday + dt.timedelta(days=6)),
        CalendarWanted(uuid.uuid4(), monday, monday),
        CalendarWanted(uuid.UUID(second), tuesday, tuesday),
    ]
    async with unit_of_work(app.state.sessionmaker) as session:
        together = await load_doctor_calendars(session, ranges)
        alone = [
            await load_doctor_calendar(
                session, one.doctor_id, one.first, one.last, exclude_hold=one.exclude_hold
            )
            for one in ranges
            if one.doctor_id in {uuid.UUID(first), uuid.UUID(second)}
        ]
    assert together[3] is None
    assert [c for c in together if c is not None] == alone
    assert together[0] is not None and together[1] is not None
    assert together[0].day(monday).holds and not together[1].day(monday).holds
    assert together[2] is not None and together[2].day(tuesday).leaves
