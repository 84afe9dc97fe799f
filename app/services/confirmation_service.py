"""Confirmations: the patient agreed to come at the appointment's time; and the day's call list
of those who have not yet.

Confirming takes the appointment's locks as every change does (`booking_service`), is
audited (`confirmed`), voids the pending reminders under `only_unconfirmed`
(`reminders.plan.follow`) and sends `appointment.confirmed`, once: a repeated confirm changes
nothing and sends nothing. It does not touch the calendar event, which does not show it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidState
from app.models import Appointment, Doctor, Patient
from app.models.enums import UPCOMING_STATUSES, AppointmentAction, ConfirmationStatus
from app.services import booking_service
from app.services.booking import audit
from app.services.booking_service import STATUS_WORDS
from app.services.context import Caller, Clinic
from app.services.reminders import plan as reminders
from app.services.webhooks import appointments


async def confirm(
    session: AsyncSession, appointment_id: uuid.UUID, caller: Caller, clinic: Clinic
) -> Appointment:
    """Mark the appointment `confirmed`, or answer it unchanged if it already is."""
    appointment, _ = await booking_service.lock_appointment(session, appointment_id)
    if appointment.status not in UPCOMING_STATUSES:
        raise InvalidState(f"A {STATUS_WORDS[appointment.status]} appointment cannot be confirmed.")
    if appointment.confirmation_status == ConfirmationStatus.CONFIRMED:
        return appointment
    booking_service.still_movable(appointment, clinic, "confirmed")
    before = audit.snapshot(appointment)
    booking_service.set_confirmed(appointment, True, clinic)
    await session.flush()
    await audit.record(session, appointment, AppointmentAction.CONFIRMED, caller, before=before)
    await reminders.follow(session, [appointment.id], clinic)
    await appointments.appointment_changed(session, appointment.id, AppointmentAction.CONFIRMED)
    await session.refresh(appointment)
    return appointment


@dataclass(frozen=True, slots=True)
class ToCall:
    appointment: Appointment
    patient: Patient


async def unconfirmed_on(session: AsyncSession, day: dt.date) -> list[ToCall]:
    """The day's `BOOKED`/`RESCHEDULED` appointments still `unconfirmed`, by time, with their
    patients (the caller logs the access)."""
    query = (
        select(Appointment, Patient)
        .join(Patient, Patient.id == Appointment.patient_id)
        # Every doctor's (doctor, date) index entry rather than a scan of all appointments.
        .where(
            Appointment.doctor_id.in_(select(Doctor.id)),
            Appointment.date == day,
            Appointment.status.in_(UPCOMING_STATUSES),
            Appointment.confirmation_status == ConfirmationStatus.UNCONFIRMED,
        )
        .order_by(Appointment.start_time, Appointment.created_at, Appointment.id)
    )
    return [ToCall(a, p) for a, p in (await session.execute(query)).all()]
