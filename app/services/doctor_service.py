"""Doctors and their leaves."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import DuplicateEmail, LeaveOverlap, NotFound
from app.models import Appointment, Doctor, DoctorLeave
from app.models.enums import ACTIVE_STATUSES
from app.schemas.doctor import DoctorCreate, DoctorUpdate
from app.schemas.leave import LeaveCreate
from app.schemas.schedule import WeeklyHours, WorkingHours, summarise, week_of
from app.services import google_calendar_service, rag_sync_service, visit_type_service
from app.services.context import Clinic
from app.services.doctor_filters import DoctorFilters
from app.services.persistence import Conflicts, create_row, get_or_404, in_dates, update_row
from app.sql import Sql, fetchrow

_UNIQUE: Conflicts = {
    "uq_doctors_email": (DuplicateEmail, "A doctor with this email already exists.")
}


def _week_columns(week: WeeklyHours) -> dict[str, Any]:
    """The week and the request's summary of it, as stored: they always agree."""
    days, hours = summarise(week)
    return {
        "weekly_hours": week.model_dump(mode="json"),
        "working_days": days,
        "working_hours": hours.model_dump(mode="json"),
    }


def _week_changes(doctor: Doctor, data: DoctorUpdate) -> dict[str, Any]:
    """The week an update asks for: `weekly_hours`, else the request's fields (either one
    alone completed from the doctor's current summary), else no change."""
    if data.weekly_hours is not None:
        return _week_columns(data.weekly_hours)
    if data.working_days is None and data.working_hours is None:
        return {}
    days = data.working_days or list(doctor.working_days)
    hours = data.working_hours or WorkingHours.model_validate(doctor.working_hours)
    return _week_columns(week_of(days, hours))


async def create_doctor(
    session: AsyncSession, data: DoctorCreate, clinic_id: uuid.UUID, clinic: Clinic
) -> Doctor:
    await visit_type_service.check_known(session, data.visit_type_ids)
    doctor = Doctor(
        clinic_id=data.clinic_id or clinic_id,
        name=data.name,
        email=str(data.email).lower(),
        specialization=data.specialization,
        experience_years=data.experience_years,
        languages=list(data.languages),
        consultation_type=data.consultation_type,
        general_working_days_text=data.general_working_days_text,
        **_week_columns(data.week()),
        slot_duration_minutes=data.slot_duration_minutes,
        is_active=data.is_active,
        visit_type_ids=list(dict.fromkeys(data.visit_type_ids)),
        min_notice_minutes=data.min_notice_minutes,
        booking_horizon_days=data.booking_horizon_days,
        buffer_minutes=data.buffer_minutes,
        max_appointments_per_day=data.max_appointments_per_day,
    )
    await create_row(session, doctor, _UNIQUE)
    await rag_sync_service.doctor_changed(session, doctor.id, rag_sync_service.RAG_FIELDS, clinic)
    return doctor


async def get_doctor(session: AsyncSession, doctor_id: uuid.UUID, *, lock: bool = False) -> Doctor:
    # FOR NO KEY UPDATE: serialises changes for this doctor without blocking the foreign-key
    # checks (KEY SHARE) of bookings being written, which would deadlock.
    no_key_update = {"key_share": True} if lock else False
    return await get_or_404(session, Doctor, doctor_id, "Doctor", lock=no_key_update)


# The name alone, on the driver: the agent names the doctor in the sentence after each hold and
# booking, and the ORM's load of the whole row, with the BEGIN and COMMIT its transaction adds
# to a booking that otherwise runs without one, was a tenth of an MCP call's CPU.
_NAME = Sql("SELECT name FROM doctors WHERE id = :doctor_id", standalone=True)


async def doctor_name(session: AsyncSession, doctor_id: uuid.UUID) -> str:
    """The doctor's name (any doctor, active or not), or `NotFound`."""
    row = await fetchrow(session, _NAME, doctor_id=doctor_id)
    if row is None:
        raise NotFound(f"Doctor {doctor_id} was not found.")
    name: str = row["name"]
    return name


async def list_doctors(
    session: AsyncSession, filters: DoctorFilters, *, limit: int, offset: int
) -> list[Doctor]:
    where, params = filters.where(Doctor.__tablename__)
    query = select(Doctor).where(text(where).bindparams(**params))
    query = query.order_by(Doctor.name, Doctor.id).limit(limit).offset(offset)
    return list((await session.execute(query)).scalars())


async def update_doctor(
    session: AsyncSession,
    doctor_id: uuid.UUID,
    data: DoctorUpdate,
    clinic: Clinic,
) -> Doctor:
    doctor = await get_doctor(session, doctor_id, lock=True)
    changes = data.model_dump(
        exclude_unset=True, exclude={"weekly_hours", "working_days", "working_hours"}
    )
    changes.update(_week_changes(doctor, data))
    if "email" in changes:
        changes["email"] = str(changes["email"]).lower()
    if data.visit_type_ids is not None:
        await visit_type_service.check_known(session, data.visit_type_ids)
        changes["visit_type_ids"] = list(dict.fromkeys(data.visit_type_ids))
    changed = await update_row(session, doctor, changes, _UNIQUE)
    if "email" in changed and clinic.calendar_enabled:
        # A new e-mail is a new calendar: the doctor's upcoming appointments move there.
        await google_calendar_service.remirror_upcoming(session, clinic.today, doctor_id=doctor.id)
    await rag_sync_service.doctor_changed(session, doctor.id, changed.keys(), clinic)
    return doctor


async def add_leave(
    session: AsyncSession, doctor_id: uuid.UUID, data: LeaveCreate
) -> tuple[DoctorLeave, list[Appointment]]:
    # The doctor's row lock serialises leave changes with bookings for this doctor.
    await get_doctor(session, doctor_id, lock=True)
    whole_day = data.start_time is None
    same_day = and_(DoctorLeave.doctor_id == doctor_id, DoctorLeave.date == data.date)
    overlap = same_day
    if not whole_day:
        overlap = and_(
            same_day,
            or_(
                DoctorLeave.start_time.is_(None),
                and_(
                    DoctorLeave.start_time < data.end_time, DoctorLeave.end_time > data.start_time
                ),
            ),
        )
    clash = (await session.execute(select(DoctorLeave.id).where(overlap).limit(1))).first()
    if clash is not None:
        raise LeaveOverlap("This leave overlaps another leave of the doctor on that date.")

    leave = DoctorLeave(
        doctor_id=doctor_id,
        date=data.date,
        reason=data.reason,
        start_time=data.start_time,
        end_time=data.end_time,
    )
    await create_row(session, leave)

    affected = select(Appointment).where(
        Appointment.doctor_id == doctor_id,
        Appointment.date == data.date,
        Appointment.status.in_(ACTIVE_STATUSES),
    )
    if not whole_day:
        affected = affected.where(
            Appointment.start_time < data.end_time, Appointment.end_time > data.start_time
        )
    appointments = (await session.execute(affected.order_by(Appointment.start_time))).scalars()
    return leave, list(appointments)


async def list_leaves(
    session: AsyncSession,
    doctor_id: uuid.UUID,
    *,
    start_date: dt.date | None,
    end_date: dt.date | None,
    limit: int,
    offset: int,
) -> list[DoctorLeave]:
    await get_doctor(session, doctor_id)
    query = select(DoctorLeave).where(DoctorLeave.doctor_id == doctor_id)
    query = in_dates(query, DoctorLeave.date, start_date, end_date)
    query = query.order_by(DoctorLeave.date, DoctorLeave.start_time.nulls_first())
    return list((await session.execute(query.limit(limit).offset(offset))).scalars())


async def delete_leave(session: AsyncSession, doctor_id: uuid.UUID, leave_id: uuid.UUID) -> None:
    await get_doctor(session, doctor_id, lock=True)
    leave = await session.get(DoctorLeave, leave_id)
    if leave is None or leave.doctor_id != doctor_id:
        raise NotFound(f"Leave {leave_id} of doctor {doctor_id} was not found.")
    await session.delete(leave)
    await session.flush()
