"""The front desk: what happens when the patient arrives (or does not), and the day at a glance.

A visit goes BOOKED/RESCHEDULED -> CHECKED_IN -> COMPLETED, or BOOKED/RESCHEDULED -> NO_SHOW.
Each step takes the same locks as a reschedule or a cancellation (`booking_service`), is
audited, and queues the calendar event's new state. Asking for the step an appointment has
already taken answers it unchanged, as a repeated cancellation does.

A check-in or no-show taken by mistake is taken back the same day (`undo`): the visit returns
to the status the audit trail shows it had before, keeps the reminders the step voided void,
and sends no webhook message (nothing happened that a subscriber has not been told of wrongly
already; the calendar event shows the visit as it is again).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.database import violated_constraint
from app.errors import InvalidState, SlotUnavailable
from app.models import Appointment, AppointmentEvent, Doctor, Patient
from app.models.enums import (
    UPCOMING_STATUSES,
    AppointmentAction,
    AppointmentStatus,
    ConfirmationStatus,
    SlotReason,
)
from app.services import booking_service, google_calendar_service
from app.services.booking import audit
from app.services.booking import sql as booking_sql
from app.services.booking.decide import slot_unavailable
from app.services.booking_service import STATUS_WORDS
from app.services.context import Caller, Clinic
from app.services.doctor_filters import DoctorFilters
from app.services.scheduling.engine import Day, Moment, day_availability
from app.services.scheduling.queries import (
    DoctorCalendar,
    doctor_schedule,
    load_facts,
    load_matching_calendars,
)
from app.services.scheduling.refusal import occupied
from app.services.scheduling.schedule import seconds

# A rule a step checks once the status allows it: None, or why the step cannot happen now.
When = Callable[[Appointment, Clinic], str | None]


@dataclass(frozen=True, slots=True)
class Step:
    to: AppointmentStatus
    allowed_from: tuple[AppointmentStatus, ...]
    action: AppointmentAction
    verb: str
    when: When


def _on_its_date(appointment: Appointment, clinic: Clinic) -> str | None:
    # A late arrival still checks in: any time on the day counts, in clinic time.
    if appointment.date != clinic.today:
        return (
            f"An appointment can be checked in only on its date "
            f"({appointment.date.isoformat()}); today is {clinic.today.isoformat()}."
        )
    return None


def _has_started(appointment: Appointment, clinic: Clinic) -> str | None:
    starts_at = dt.datetime.combine(appointment.date, appointment.start_time, tzinfo=clinic.tz)
    if starts_at > clinic.now:
        return "An appointment can be marked a no-show only once its start time has passed."
    return None


def _any_time(appointment: Appointment, clinic: Clinic) -> str | None:
    return None


CHECK_IN = Step(
    AppointmentStatus.CHECKED_IN,
    UPCOMING_STATUSES,
    AppointmentAction.CHECKED_IN,
    "checked in",
    _on_its_date,
)
COMPLETE = Step(
    AppointmentStatus.COMPLETED,
    (AppointmentStatus.CHECKED_IN,),
    AppointmentAction.COMPLETED,
    "completed",
    _any_time,
)
NO_SHOW = Step(
    AppointmentStatus.NO_SHOW,
    UPCOMING_STATUSES,
    AppointmentAction.NO_SHOW,
    "marked a no-show",
    _has_started,
)


async def take_step(
    session: AsyncSession, appointment_id: uuid.UUID, step: Step, caller: Caller, clinic: Clinic
) -> Appointment:
    """Move the appointment along `step`, or answer it unchanged if it is already there."""
    appointment, _ = await booking_service.lock_appointment(session, appointment_id)
    if appointment.status == step.to:
        return appointment
    if appointment.status not in step.allowed_from:
        words = STATUS_WORDS.get(appointment.status, appointment.status.lower())
        raise InvalidState(f"A {words} appointment cannot be {step.verb}.")
    if (why_not := step.when(appointment, clinic)) is not None:
        raise InvalidState(why_not)
    before = audit.snapshot(appointment)
    appointment.status = step.to
    return await booking_service.record_change(
        session, appointment, step.action, before, caller, clinic
    )


# The steps `undo` takes back, and the action that recorded each in the trail.
_UNDOABLE = {
    AppointmentStatus.CHECKED_IN: AppointmentAction.CHECKED_IN,
    AppointmentStatus.NO_SHOW: AppointmentAction.NO_SHOW,
}


async def undo(
    session: AsyncSession, appointment_id: uuid.UUID, caller: Caller, clinic: Clinic
) -> Appointment:
    """Take back a check-in or no-show on the appointment's date: it returns to the status it
    had before (`BOOKED` or `RESCHEDULED`). A no-show's time must still be free of active
    appointments and holds (with the buffer): it was freed, and may have been given away."""
    appointment, doctor = await booking_service.lock_appointment(session, appointment_id)
    step = _UNDOABLE.get(appointment.status)
    if step is None:
        words = STATUS_WORDS.get(appointment.status, appointment.status.lower())
        raise InvalidState(
            f"Only a check-in or a no-show can be undone; this appointment is {words}."
        )
    if appointment.date != clinic.today:
        raise InvalidState(
            f"A check-in or no-show can be undone only on the appointment's date "
            f"({appointment.date.isoformat()}); today is {clinic.today.isoformat()}."
        )
    previous = await _status_before(session, appointment.id, step)
    if appointment.status == AppointmentStatus.NO_SHOW:
        await _still_free(session, appointment, doctor, clinic)
    before = audit.snapshot(appointment)
    appointment.status = previous
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        # The doctor's lock and the claimed day make this unreachable; the index is the
        # database's own guarantee, and a breach of it is still a refusal, not a 500.
        if violated_constraint(exc) != "uq_appointments_active_slot":
            raise
        raise await _refusal(session, appointment, doctor, clinic, "taken") from None
    await audit.record(session, appointment, AppointmentAction.UNDO, caller, before=before)
    # No reminder planning (those the step voided stay void) and no webhook message.
    await google_calendar_service.appointments_changed(session, [appointment], clinic)
    await session.refresh(appointment)
    return appointment


async def _status_before(
    session: AsyncSession, appointment_id: uuid.UUID, step: AppointmentAction
) -> AppointmentStatus:
    """The status the latest `step` in the trail moved the appointment from."""
    query = (
        select(AppointmentEvent.before)
        .where(AppointmentEvent.appointment_id == appointment_id, AppointmentEvent.action == step)
        .order_by(AppointmentEvent.id.desc())
        .limit(1)
    )
    before = (await session.execute(query)).scalar_one_or_none()
    status = AppointmentStatus((before or {}).get("status", AppointmentStatus.BOOKED))
    # Every step starts from an upcoming status; a trail saying otherwise is not one of ours.
    return status if status in UPCOMING_STATUSES else AppointmentStatus.BOOKED


async def _still_free(
    session: AsyncSession, appointment: Appointment, doctor: Doctor, clinic: Clinic
) -> None:
    """Refuse (409 `slot_unavailable`) if a counting hold or an active appointment now comes
    closer than the buffer to the no-show's time. The day is claimed first, as a booking
    deciding again claims it, so a booking or hold in flight either committed before this
    read or waits for this transaction and then decides again."""
    await booking_sql.claim_days(session, doctor.id, {appointment.date})
    calendar = await _calendar(session, appointment, doctor)
    reason = occupied(
        calendar.schedule,
        appointment.start_time,
        _visit_minutes(appointment),
        calendar.day(appointment.date),
        clinic.now,
    )
    if reason is not None:
        raise await _refusal(session, appointment, doctor, clinic, reason, calendar)


async def _calendar(
    session: AsyncSession, appointment: Appointment, doctor: Doctor
) -> DoctorCalendar:
    facts = await load_facts(
        session,
        [doctor.id],
        appointment.date,
        appointment.date,
        exclude_appointment=appointment.id,
    )
    return DoctorCalendar(
        doctor.id, doctor.name, doctor_schedule(doctor), doctor.visit_type_ids, facts[doctor.id]
    )


def _visit_minutes(appointment: Appointment) -> int:
    return (seconds(appointment.end_time) - seconds(appointment.start_time)) // 60


async def _refusal(
    session: AsyncSession,
    appointment: Appointment,
    doctor: Doctor,
    clinic: Clinic,
    reason: SlotReason,
    calendar: DoctorCalendar | None = None,
) -> SlotUnavailable:
    return await slot_unavailable(
        session,
        calendar or await _calendar(session, appointment, doctor),
        appointment.date,
        appointment.start_time,
        clinic,
        _visit_minutes(appointment),
        exclude=appointment.id,
        reason=reason,
    )


@dataclass(frozen=True, slots=True)
class DeskVisit:
    appointment: Appointment
    patient_name: str
    patient_mobile_number: str


@dataclass(frozen=True, slots=True)
class DeskColumn:
    doctor_id: uuid.UUID
    doctor_name: str
    visit_type_ids: list[uuid.UUID]
    day: Day
    visits: list[DeskVisit]


async def desk_day(
    session: AsyncSession,
    day: dt.date,
    clinic: Clinic,
    confirmation_status: ConfirmationStatus | None = None,
) -> list[DeskColumn]:
    """One column per active doctor, by name, with the visit types the doctor offers: that
    day's appointments (every status, or those of `confirmation_status`, in time order, each
    with the patient's name and mobile number) and the free slots availability offers."""
    calendars = await load_matching_calendars(session, DoctorFilters(is_active=True), day, day)
    query = (
        select(Appointment, Patient.name, Patient.mobile_number)
        .join(Patient, Patient.id == Appointment.patient_id)
        .where(Appointment.date == day, Appointment.doctor_id.in_([c.doctor_id for c in calendars]))
        .order_by(Appointment.start_time, Appointment.created_at)
    )
    if confirmation_status is not None:
        query = query.where(Appointment.confirmation_status == confirmation_status)
    visits: dict[uuid.UUID, list[DeskVisit]] = {c.doctor_id: [] for c in calendars}
    for appointment, name, mobile in (await session.execute(query)).all():
        visits[appointment.doctor_id].append(DeskVisit(appointment, name, mobile))
    columns = []
    for calendar in calendars:
        moment = Moment.of(clinic.now, clinic.tz, calendar.schedule.rules.min_notice_minutes)
        offered = day_availability(
            calendar.schedule, day, calendar.day(day), moment, clinic.tz, None
        )
        columns.append(
            DeskColumn(
                calendar.doctor_id,
                calendar.name,
                list(calendar.visit_type_ids),
                offered,
                visits[calendar.doctor_id],
            )
        )
    columns.sort(key=lambda c: (c.doctor_name.casefold(), str(c.doctor_id)))
    return columns
