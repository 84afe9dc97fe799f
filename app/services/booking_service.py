"""Booking, rescheduling and cancelling: the only code that changes an appointment's slot.

Each asks the availability engine the same question the availability endpoint answers. A
booking reads the day and writes only if the day is unchanged (`booking_queries`); a
reschedule or cancellation locks the doctor's row first, so those run one at a time per
doctor. The partial unique index on active appointments backs this up in the database.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import metrics
from app.database import driver_connection, driver_transaction, session_driver
from app.errors import DatabaseUnavailable, InvalidState, NotFound, SlotUnavailable
from app.models import Appointment, Doctor
from app.models.enums import (
    AppointmentAction,
    AppointmentStatus,
    CalendarSyncStatus,
)
from app.schemas.appointment import AppointmentCreate, AppointmentRead
from app.schemas.common import format_clock
from app.services import audit, booking_queries, idempotency_service, outbox
from app.services.audit import Caller
from app.services.availability_service import (
    ALTERNATIVE_HORIZON_DAYS,
    Schedule,
    SlotTime,
    availability,
    day_availability,
    find_slot,
    nearest_alternatives,
)
from app.services.context import Clinic
from app.services.db_errors import violated_constraint
from app.services.doctor_service import get_doctor
from app.services.phone import normalise_mobile
from app.services.schedule_queries import DoctorCalendar, load_blocks, load_doctor_calendar


@dataclass(frozen=True, slots=True)
class BookingResult:
    status_code: int
    body: dict[str, object]
    replayed: bool


def _schedule(doctor: Doctor) -> Schedule:
    return Schedule.from_doctor_fields(
        doctor.working_days, doctor.working_hours, doctor.slot_duration_minutes, doctor.is_active
    )


async def _free_slot(
    driver: asyncpg.Connection,
    doctor_id: uuid.UUID,
    schedule: Schedule,
    day: dt.date,
    start_time: dt.time,
    clinic: Clinic,
    exclude: uuid.UUID | None = None,
) -> SlotTime:
    """The engine's slot at `day`/`start_time`, or a 409 carrying the nearest free ones."""
    leaves, busy = await load_blocks(driver, [doctor_id], day, day, exclude_appointment=exclude)
    offered = day_availability(
        schedule, day, leaves.get(doctor_id, []), busy.get(doctor_id, []), clinic.now, clinic.tz
    )
    slot = find_slot(offered, start_time)
    if slot is None:
        await _raise_unavailable(driver, doctor_id, schedule, day, start_time, clinic, exclude)
    assert slot is not None
    return slot


async def _raise_unavailable(
    driver: asyncpg.Connection,
    doctor_id: uuid.UUID,
    schedule: Schedule,
    day: dt.date,
    start_time: dt.time,
    clinic: Clinic,
    exclude: uuid.UUID | None = None,
) -> None:
    alternatives: list[dict[str, str]] = []
    first = max(day, clinic.now.astimezone(clinic.tz).date())
    last = first + dt.timedelta(days=ALTERNATIVE_HORIZON_DAYS)
    leaves, busy = await load_blocks(driver, [doctor_id], first, last, exclude_appointment=exclude)
    days = availability(
        schedule,
        first,
        last,
        leaves.get(doctor_id, []),
        busy.get(doctor_id, []),
        clinic.now,
        clinic.tz,
    )
    for alt_day, slot in nearest_alternatives(days, day, start_time):
        alternatives.append(
            {
                "date": alt_day.isoformat(),
                "start_time": format_clock(slot.start),
                "end_time": format_clock(slot.end),
            }
        )
    raise SlotUnavailable(
        "That slot is not available for booking.", extra={"alternatives": alternatives}
    )


async def _mirror(session: AsyncSession, appointment: Appointment, clinic: Clinic) -> None:
    """Owe Google this appointment's new state, in the same transaction as the change."""
    if clinic.calendar_enabled:
        await outbox.enqueue(session, outbox.CALENDAR, [appointment.id])


def _new_patient(data: AppointmentCreate, clinic: Clinic) -> booking_queries.NewPatient | None:
    if data.patient is None:
        return None
    patient = data.patient
    return booking_queries.NewPatient(
        name=patient.name,
        mobile=normalise_mobile(
            patient.mobile_number, clinic.default_region, field="patient.mobile_number"
        ),
        email=str(patient.email).lower() if patient.email else None,
        gender=patient.gender,
        date_of_birth=patient.date_of_birth,
    )


async def _attempt(
    driver: asyncpg.Connection,
    data: AppointmentCreate,
    new_patient: booking_queries.NewPatient | None,
    caller: Caller,
    clinic: Clinic,
) -> tuple[DoctorCalendar, booking_queries.Outcome]:
    """Read the day, let the engine decide, write if the day is still as read."""
    read = await load_doctor_calendar(driver, data.doctor_id, data.date, data.date)
    offered = day_availability(
        read.schedule, data.date, read.leaves, read.busy, clinic.now, clinic.tz
    )
    slot = find_slot(offered, data.start_time)
    if slot is None:
        return read, booking_queries.Outcome(None)  # alternatives are found outside any lock
    return read, await booking_queries.book_if_current(
        driver,
        doctor_id=data.doctor_id,
        read=read,
        patient_id=data.patient_id,
        new_patient=new_patient,
        day=data.date,
        slot=slot,
        source=data.source,
        caller=caller,
        mirror_to_calendar=clinic.calendar_enabled,
    )


async def book(
    driver: asyncpg.Connection, data: AppointmentCreate, caller: Caller, clinic: Clinic
) -> dict[str, Any]:
    """Book the slot; the new appointment as JSON data.

    Optimistic first (two round trips, see `booking_queries`); if the day changed in between,
    decided again under the doctor's row lock, where only other bookings can change it and the
    claim on the day's version settles which one wins.
    """
    new_patient = _new_patient(data, clinic)
    read, outcome = await _attempt(driver, data, new_patient, caller, clinic)
    if outcome.stale:
        metrics.BOOKINGS_DECIDED_AGAIN.inc()
        async with driver.transaction():
            await booking_queries.lock_doctor(driver, data.doctor_id)
            await booking_queries.claim_days(driver, data.doctor_id, {data.date})
            read, outcome = await _attempt(driver, data, new_patient, caller, clinic)
    if outcome.patient_missing:
        raise NotFound(f"Patient {data.patient_id} was not found.")
    if outcome.stale:
        # Only a third first-time booking for the same new mobile, racing this one twice.
        raise DatabaseUnavailable("The booking collided with another; retry shortly.")
    if outcome.appointment is None:
        await _raise_unavailable(
            driver, data.doctor_id, read.schedule, data.date, data.start_time, clinic
        )
    return AppointmentRead.model_validate(outcome.appointment).model_dump(mode="json")


async def book_idempotently(
    engine: AsyncEngine,
    data: AppointmentCreate,
    caller: Caller,
    clinic: Clinic,
    idempotency_key: str | None,
) -> BookingResult:
    """Without a key, the booking commits on its own; with one, in one transaction with the
    key, so a retry either replays the stored answer or finds the key free again."""
    if idempotency_key is None:
        async with driver_connection(engine) as driver:
            return BookingResult(201, await book(driver, data, caller, clinic), replayed=False)

    request_hash = idempotency_service.fingerprint(data.model_dump(mode="json"))
    async with driver_transaction(engine) as driver:
        stored = await idempotency_service.claim(
            driver, caller.actor, idempotency_key, request_hash
        )
        if stored is not None:
            return BookingResult(stored.status, stored.body, replayed=True)
        body = await book(driver, data, caller, clinic)
        await idempotency_service.store(driver, caller.actor, idempotency_key, 201, body)
    return BookingResult(201, body, replayed=False)


async def _load(
    session: AsyncSession, appointment_id: uuid.UUID | None, *, lock: bool = False
) -> Appointment:
    query = select(Appointment).where(Appointment.id == appointment_id)
    if lock:
        query = query.with_for_update()
    query = query.execution_options(populate_existing=True)
    appointment = (await session.execute(query)).scalar_one_or_none()
    if appointment is None:
        raise NotFound(f"Appointment {appointment_id} was not found.")
    return appointment


def _starts_at(appointment: Appointment, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(appointment.date, appointment.start_time, tzinfo=tz)


async def reschedule(
    session: AsyncSession,
    appointment_id: uuid.UUID,
    new_date: dt.date,
    new_start: dt.time,
    caller: Caller,
    clinic: Clinic,
) -> Appointment:
    current = await _load(session, appointment_id)
    # Same lock order as booking (doctor, then appointment) so the two never deadlock.
    doctor = await get_doctor(session, current.doctor_id, lock=True)
    appointment = await _load(session, appointment_id, lock=True)
    if appointment.status == AppointmentStatus.CANCELLED:
        raise InvalidState("A cancelled appointment cannot be rescheduled.")
    if _starts_at(appointment, clinic.tz) <= clinic.now:
        raise InvalidState("An appointment that has already started cannot be rescheduled.")
    if appointment.date == new_date and appointment.start_time == new_start:
        return appointment

    driver = await session_driver(session)
    await booking_queries.claim_days(driver, doctor.id, {appointment.date, new_date})
    schedule = _schedule(doctor)
    slot = await _free_slot(
        driver, doctor.id, schedule, new_date, new_start, clinic, exclude=appointment.id
    )
    before = audit.snapshot(appointment)
    appointment.date = new_date
    appointment.start_time = slot.start
    appointment.end_time = slot.end
    appointment.status = AppointmentStatus.RESCHEDULED
    if clinic.calendar_enabled:
        appointment.calendar_sync_status = CalendarSyncStatus.PENDING
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        if violated_constraint(exc) != "uq_appointments_active_slot":
            raise
        await _raise_unavailable(
            driver, doctor.id, schedule, new_date, new_start, clinic, appointment.id
        )
    audit.record(session, appointment, AppointmentAction.RESCHEDULED, caller, before=before)
    await _mirror(session, appointment, clinic)
    await session.flush()
    await session.refresh(appointment)
    return appointment


async def cancel(
    session: AsyncSession, appointment_id: uuid.UUID, caller: Caller, clinic: Clinic
) -> Appointment:
    current = await _load(session, appointment_id)
    # Same lock order as booking and rescheduling (doctor, then appointment): the cancellation
    # changes the doctor's day, so its trigger updates the doctor's row anyway.
    await get_doctor(session, current.doctor_id, lock=True)
    appointment = await _load(session, appointment_id, lock=True)
    if appointment.status == AppointmentStatus.CANCELLED:
        return appointment
    if _starts_at(appointment, clinic.tz) <= clinic.now:
        raise InvalidState("An appointment that has already started cannot be cancelled.")
    before = audit.snapshot(appointment)
    appointment.status = AppointmentStatus.CANCELLED
    if clinic.calendar_enabled:
        appointment.calendar_sync_status = CalendarSyncStatus.PENDING
    audit.record(session, appointment, AppointmentAction.CANCELLED, caller, before=before)
    await _mirror(session, appointment, clinic)
    await session.flush()
    await session.refresh(appointment)
    return appointment
