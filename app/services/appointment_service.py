"""Reading appointments and their audit trail."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Appointment, AppointmentEvent
from app.models.enums import AppointmentStatus, ConfirmationStatus
from app.services.doctor_service import get_doctor
from app.services.patient_service import get_patient
from app.services.persistence import get_or_404, in_dates


async def get_appointment(session: AsyncSession, appointment_id: uuid.UUID) -> Appointment:
    return await get_or_404(session, Appointment, appointment_id, "Appointment")


@dataclass(frozen=True, slots=True)
class AppointmentFilters:
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    status: AppointmentStatus | None = None
    confirmation_status: ConfirmationStatus | None = None
    limit: int = 100
    offset: int = 0


async def list_appointments(
    session: AsyncSession,
    filters: AppointmentFilters,
    *,
    doctor_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
) -> list[Appointment]:
    query = select(Appointment)
    if doctor_id is not None:
        await get_doctor(session, doctor_id)
        query = query.where(Appointment.doctor_id == doctor_id)
    if patient_id is not None:
        await get_patient(session, patient_id)
        query = query.where(Appointment.patient_id == patient_id)
    query = in_dates(query, Appointment.date, filters.start_date, filters.end_date)
    if filters.status is not None:
        query = query.where(Appointment.status == filters.status)
    if filters.confirmation_status is not None:
        query = query.where(Appointment.confirmation_status == filters.confirmation_status)
    query = query.order_by(Appointment.date, Appointment.start_time, Appointment.created_at)
    query = query.limit(filters.limit).offset(filters.offset)
    return list((await session.execute(query)).scalars())


async def list_events(session: AsyncSession, appointment_id: uuid.UUID) -> list[AppointmentEvent]:
    await get_appointment(session, appointment_id)
    query = (
        select(AppointmentEvent)
        .where(AppointmentEvent.appointment_id == appointment_id)
        .order_by(AppointmentEvent.id)
    )
    return list((await session.execute(query)).scalars())
