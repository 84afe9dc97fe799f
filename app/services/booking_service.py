"""Booking, rescheduling and cancelling: the only code that changes an appointment's slot.

Each asks the scheduling engine the same question the availability endpoint answers, on the
caller's unit of work (a session whose transaction the caller commits). How each change is
guarded against a concurrent one:
- A booking reads its day and writes only if the day is unchanged (`booking.sql`); if it
  changed in between, the booking claims the day and decides again on a fresh read
  (`booking.decide`, shared with holds).
- A reschedule or cancellation locks the doctor's row, then the appointment's, and claims
  the days it reads, so they run one at a time per doctor and bookings of those days wait.
The partial unique index on active appointments backs this up in the database.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.database import violated_constraint
from app.errors import InvalidInput, InvalidState, NotFound
from app.models import Appointment, Doctor
from app.models.enums import (
    UPCOMING_STATUSES,
    AppointmentAction,
    AppointmentStatus,
    ConfirmationStatus,
)
from app.schemas.appointment import AppointmentCreate, AppointmentRead
from app.schemas.patient import PatientCreate
from app.services import google_calendar_service, hold_service
from app.services.booking import audit
from app.services.booking import sql as booking_sql
from app.services.booking.decide import decide_and_write, slot_unavailable
from app.services.booking.sql import NewPatient, Refusal
from app.services.context import Caller, Clinic
from app.services.doctor_service import get_doctor
from app.services.patient_service import normalise_mobile
from app.services.persistence import get_or_404
from app.services.reminders import plan as reminders
from app.services.scheduling.engine import Moment, SlotTime, day_availability, find_slot
from app.services.scheduling.queries import DoctorCalendar, doctor_schedule, load_facts
from app.services.scheduling.schedule import seconds
from app.services.webhooks import appointments


def new_patient(patient: PatientCreate | None, clinic: Clinic) -> NewPatient | None:
    """A caller given by their details (found by mobile as the booking writes, or created)."""
    if patient is None:
        return None
    return NewPatient(
        name=patient.name,
        mobile=normalise_mobile(
            patient.mobile_number, clinic.default_region, field="patient.mobile_number"
        ),
        email=str(patient.email).lower() if patient.email else None,
        gender=patient.gender,
        date_of_birth=patient.date_of_birth,
    )


async def book(
    session: AsyncSession, data: AppointmentCreate, caller: Caller, clinic: Clinic
) -> AppointmentRead:
    """Book the slot asked for, or the one `data.hold_id` keeps; raise `SlotUnavailable` with
    the nearest free ones when the engine does not offer it (`booking.decide`)."""
    patient = new_patient(data.patient, clinic)
    wanted = await hold_service.wanted_by(session, data, clinic)

    async def write(read: DoctorCalendar, slot: SlotTime) -> AppointmentRead | Refusal:
        row = booking_sql.booking_row(
            read=read,
            day=wanted.date,
            slot=slot,
            patient_id=data.patient_id,
            new_patient=patient,
            source=data.source,
            visit_type_id=wanted.visit_type_id,
            caller=caller,
            mirror_to_calendar=clinic.calendar_enabled,
            clinic=clinic,
            confirmed=data.confirmed,
            hold_id=data.hold_id,
        )
        return await booking_sql.book_if_current(session, row)

    decided = await decide_and_write(session, wanted, clinic, write, exclude_hold=data.hold_id)
    outcome = decided.outcome
    if outcome is Refusal.PATIENT_MISSING:
        raise NotFound.of("Patient", data.patient_id)
    if outcome is Refusal.HOLD_GONE:
        raise InvalidState("The hold was booked or released meanwhile.")
    if outcome is Refusal.SLOT_TAKEN:
        raise await slot_unavailable(
            session,
            decided.read,
            wanted.date,
            wanted.start_time,
            clinic,
            decided.visit_minutes,
            exclude_hold=data.hold_id,
        )
    assert isinstance(outcome, AppointmentRead)
    return outcome


async def lock_appointment(
    session: AsyncSession, appointment_id: uuid.UUID
) -> tuple[Appointment, Doctor]:
    """The appointment and its doctor, locked in the order every change takes them (doctor,
    then appointment, so two changes never deadlock)."""
    # Read first only to learn the doctor; read again once locked, as it is now.
    current = await get_or_404(session, Appointment, appointment_id, "Appointment", reload=True)
    doctor = await get_doctor(session, current.doctor_id, lock=True)
    appointment = await get_or_404(
        session, Appointment, appointment_id, "Appointment", lock=True, reload=True
    )
    return appointment, doctor


# How a status reads in a refusal: "A checked-in appointment cannot be cancelled."
STATUS_WORDS = {
    AppointmentStatus.CANCELLED: "cancelled",
    AppointmentStatus.CHECKED_IN: "checked-in",
    AppointmentStatus.COMPLETED: "completed",
    AppointmentStatus.NO_SHOW: "no-show",
}


def still_movable(appointment: Appointment, clinic: Clinic, verb: str) -> None:
    """Only a visit that is still to come may be moved, cancelled or confirmed: booked or
    rescheduled, and not yet started."""
    if appointment.status not in UPCOMING_STATUSES:
        raise InvalidState(f"A {STATUS_WORDS[appointment.status]} appointment cannot be {verb}.")
    starts_at = dt.datetime.combine(appointment.date, appointment.start_time, tzinfo=clinic.tz)
    if starts_at <= clinic.now:
        raise InvalidState(f"An appointment that has already started cannot be {verb}.")


def set_confirmed(appointment: Appointment, confirmed: bool, clinic: Clinic) -> None:
    """The patient agreed to the appointment's time now, or has not (yet) for this time."""
    if confirmed:
        appointment.confirmation_status = ConfirmationStatus.CONFIRMED
        appointment.confirmed_at = clinic.now
    else:
        appointment.confirmation_status = ConfirmationStatus.UNCONFIRMED
        appointment.confirmed_at = None


async def record_change(
    session: AsyncSession,
    appointment: Appointment,
    action: AppointmentAction,
    before: dict[str, object],
    caller: Caller,
    clinic: Clinic,
) -> Appointment:
    """Record a change made to `appointment`: flush, audit row, its reminders planned anew,
    calendar job, the webhook message of the change."""
    await session.flush()
    await audit.record(session, appointment, action, caller, before=before)
    await reminders.follow(
        session, [appointment.id], clinic, revive=action is AppointmentAction.RESCHEDULED
    )
    await google_calendar_service.appointments_changed(session, [appointment], clinic)
    await appointments.appointment_changed(session, appointment.id, action)
    await session.refresh(appointment)
    return appointment


async def _lock_for_move(
    session: AsyncSession, appointment_id: uuid.UUID, doctor_id: uuid.UUID | None
) -> tuple[Appointment, Doctor, Doctor]:
    """The appointment, its doctor and the doctor it moves to (`doctor_id`, or the same),
    locked in the order every change takes them: the doctors by id, then the appointment.
    An unknown doctor is a 404."""
    if doctor_id is None:
        appointment, doctor = await lock_appointment(session, appointment_id)
        return appointment, doctor, doctor
    current = await get_or_404(session, Appointment, appointment_id, "Appointment", reload=True)
    locked = {
        each: await get_doctor(session, each, lock=True)
        for each in sorted({current.doctor_id, doctor_id})
    }
    appointment = await get_or_404(
        session, Appointment, appointment_id, "Appointment", lock=True, reload=True
    )
    if appointment.doctor_id not in locked:
        # Moved to a third doctor between the read and the lock: locking that one now would
        # break the order, so the caller asks again.
        raise InvalidState("The appointment was moved meanwhile; ask again.")
    return appointment, locked[appointment.doctor_id], locked[doctor_id]


async def reschedule(
    session: AsyncSession,
    appointment_id: uuid.UUID,
    new_date: dt.date,
    new_start: dt.time,
    caller: Caller,
    clinic: Clinic,
    doctor_id: uuid.UUID | None = None,
    *,
    confirmed: bool = False,
) -> Appointment:
    """Move the appointment to `new_start` on `new_date`, with `doctor_id` (another doctor,
    on their grid) or its own doctor. The visit keeps its length and visit type; another
    doctor must offer that type (400 naming `doctor_id`). `confirmed`: the patient agreed to
    the new time (else it is `unconfirmed` again)."""
    appointment, doctor, target = await _lock_for_move(session, appointment_id, doctor_id)
    still_movable(appointment, clinic, "rescheduled")
    if (target.id, new_date, new_start) == (doctor.id, appointment.date, appointment.start_time):
        return appointment
    visit_type = appointment.visit_type_id
    if visit_type is not None and visit_type not in target.visit_type_ids:
        raise InvalidInput("doctor_id", "this doctor does not offer the appointment's visit type")

    # Days in (doctor, date) order, as every claimer takes them.
    claims = {doctor.id: {appointment.date}}
    claims.setdefault(target.id, set()).add(new_date)
    for each in sorted(claims):
        await booking_sql.claim_days(session, each, claims[each])
    facts = await load_facts(
        session, [target.id], new_date, new_date, exclude_appointment=appointment.id
    )
    # The moved visit keeps its length (and so its visit type), whatever the grid is now.
    calendar = DoctorCalendar(
        target.id, target.name, doctor_schedule(target), target.visit_type_ids, facts[target.id]
    )
    schedule = calendar.schedule
    visit_minutes = _minutes_between(appointment.start_time, appointment.end_time)
    offered = day_availability(
        schedule,
        new_date,
        calendar.day(new_date),
        Moment.of(clinic.now, clinic.tz, schedule.rules.min_notice_minutes),
        clinic.tz,
        visit_minutes,
    )
    slot: SlotTime | None = find_slot(offered, new_start)
    if slot is None:
        raise await slot_unavailable(
            session, calendar, new_date, new_start, clinic, visit_minutes, exclude=appointment.id
        )
    before = audit.snapshot(appointment)
    appointment.doctor_id = target.id
    appointment.date = new_date
    appointment.start_time = slot.start
    appointment.end_time = slot.end
    appointment.status = AppointmentStatus.RESCHEDULED
    set_confirmed(appointment, confirmed, clinic)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        # The doctors' locks and the claimed days make this unreachable; the index is the
        # database's own guarantee, and a breach of it is still a refusal, not a 500.
        if violated_constraint(exc) != "uq_appointments_active_slot":
            raise
        raise await slot_unavailable(
            session, calendar, new_date, new_start, clinic, visit_minutes, exclude=appointment.id
        ) from None
    return await record_change(
        session, appointment, AppointmentAction.RESCHEDULED, before, caller, clinic
    )


def _minutes_between(start: dt.time, end: dt.time) -> int:
    return (seconds(end) - seconds(start)) // 60


async def cancel(
    session: AsyncSession, appointment_id: uuid.UUID, caller: Caller, clinic: Clinic
) -> Appointment:
    appointment, _ = await lock_appointment(session, appointment_id)
    if appointment.status == AppointmentStatus.CANCELLED:
        return appointment
    still_movable(appointment, clinic, "cancelled")
    before = audit.snapshot(appointment)
    appointment.status = AppointmentStatus.CANCELLED
    return await record_change(
        session, appointment, AppointmentAction.CANCELLED, before, caller, clinic
    )
