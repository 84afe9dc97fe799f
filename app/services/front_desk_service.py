"""The front desk: what happens when the patient arrives (or does not), and the day at a glance.

A visit goes BOOKED/RESCHEDULED -> CHECKED_IN -> COMPLETED, or BOOKED/RESCHEDULED -> NO_SHOW.
Each step takes the same locks as a reschedule or a cancellation (`booking_service`), is
audited, and queues the calendar event's new state. Asking for the step an appointment has
already taken answers it unchanged, as a repeated cancellation does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidState
from app.models import Appointment, Patient
from app.models.enums import (
    UPCOMING_STATUSES,
    AppointmentAction,
    AppointmentStatus,
    ConfirmationStatus,
)
from app.services import booking_service
from app.services.booking import audit
from app.services.booking_service import STATUS_WORDS
from app.services.context import Caller, Clinic
from app.services.doctor_filters import DoctorFilters
from app.services.scheduling.engine import Day, Moment, day_availability
from app.services.scheduling.queries import load_matching_calendars

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


@dataclass(frozen=True, slots=True)
class DeskVisit:
    appointment: Appointment
    patient_name: str


@dataclass(frozen=True, slots=True)
class DeskColumn:
    doctor_id: uuid.UUID
    doctor_name: str
    day: Day
    visits: list[DeskVisit]


async def desk_day(
    session: AsyncSession,
    day: dt.date,
    clinic: Clinic,
    confirmation_status: ConfirmationStatus | None = None,
) -> list[DeskColumn]:
    """One column per active doctor, by name: that day's appointments (every status, or those
    of `confirmation_status`, in time order) and the free slots availability offers."""
    calendars = await load_matching_calendars(session, DoctorFilters(is_active=True), day, day)
    query = (
        select(Appointment, Patient.name)
        .join(Patient, Patient.id == Appointment.patient_id)
        .where(Appointment.date == day, Appointment.doctor_id.in_([c.doctor_id for c in calendars]))
        .order_by(Appointment.start_time, Appointment.created_at)
    )
    if confirmation_status is not None:
        query = query.where(Appointment.confirmation_status == confirmation_status)
    visits: dict[uuid.UUID, list[DeskVisit]] = {c.doctor_id: [] for c in calendars}
    for appointment, patient_name in (await session.execute(query)).all():
        visits[appointment.doctor_id].append(DeskVisit(appointment, patient_name))
    columns = []
    for calendar in calendars:
        moment = Moment.of(clinic.now, clinic.tz, calendar.schedule.rules.min_notice_minutes)
        offered = day_availability(
            calendar.schedule, day, calendar.day(day), moment, clinic.tz, None
        )
        columns.append(
            DeskColumn(calendar.doctor_id, calendar.name, offered, visits[calendar.doctor_id])
        )
    columns.sort(key=lambda c: (c.doctor_name.casefold(), str(c.doctor_id)))
    return columns
