"""Reading appointments and their audit trail."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.models import Appointment, AppointmentEvent
from app.models.enums import AppointmentStatus
from app.services.doctor_service import get_doctor
from app.services.patient_service import get_patient


async def get_appointment(session: AsyncSession, appointment_id: uuid.UUID) -> Appointment:
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None:
        raise NotFound(f"Appointment {appointment_id} was not found.")
    return appointment


async def list_appointments(
    session: AsyncSession,
    *,
    doctor_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
    start_date: dt.date | None,
    end_date: dt.date | None,
    status: AppointmentStatus | None,
    limit: int,
    offset: int,
) -> list[Appointment]:
    query = select(Appointment)
    if doctor_id is not None:
        await get_doctor(session, doctor_id)
        query = query.where(Appointment.doctor_id == doctor_id)
    if patient_id is not None:
        await get_patient(session, patient_id)
        query = query.where(Appointment.patient_id == patient_id)
    if start_date is not None:
        query = query.where(Appointment.date >= start_date)
    if end_date is not None:
        query = query.where(Appointment.date <= end_date)
    if status is not None:
        query = query.where(Appointment.status == status)
    query = query.order_by(Appointment.date, Appointment.start_time, Appointment.created_at)
    return list((await session.execute(query.limit(limit).offset(offset))).scalars())


async def list_events(session: AsyncSession, appointment_id: uuid.UUID) -> list[AppointmentEvent]:
    await get_appointment(session, appointment_id)
    query = (
        select(AppointmentEvent)
        .where(AppointmentEvent.appointment_id == appointment_id)
        .order_by(AppointmentEvent.id)
    )
    return list((await session.execute(query)).scalars())
