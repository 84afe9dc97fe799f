"""Date overrides of a doctor's week, and the clinic's holidays.

Both change what a date offers, so both answer with the active appointments they leave
stranded, for a person to move: nothing is moved or cancelled automatically. Triggers move
the affected `doctor_days.version` (migration 0005), so a booking decided before the change
cannot commit after it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput, NotFound
from app.models import Appointment, Base, ClinicHoliday, DoctorDateOverride
from app.models.enums import ACTIVE_STATUSES
from app.schemas.schedule import OverrideWrite, Window
from app.services.doctor_service import get_doctor
from app.services.persistence import in_dates


def _not_past(day: dt.date, today: dt.date) -> None:
    if day < today:
        raise InvalidInput("date", "must not be before today (clinic time)")


async def _active_on(
    session: AsyncSession, day: dt.date, doctor_id: uuid.UUID | None = None
) -> list[Appointment]:
    query = select(Appointment).where(
        Appointment.date == day, Appointment.status.in_(ACTIVE_STATUSES)
    )
    if doctor_id is not None:
        query = query.where(Appointment.doctor_id == doctor_id)
    query = query.order_by(Appointment.start_time, Appointment.doctor_id)
    return list((await session.execute(query)).scalars())


def _fits(appointment: Appointment, windows: Sequence[Window]) -> bool:
    return any(w.start <= appointment.start_time and appointment.end_time <= w.end for w in windows)


async def _upsert(
    session: AsyncSession, model: type[Base], keys: list[str], values: dict[str, Any]
) -> tuple[Any, bool]:
    """Insert or replace one row by its key; says whether it was new (a row PostgreSQL has
    just inserted has no deleting transaction: `xmax = 0`)."""
    new = insert(model).values(values)
    replaced = {k: new.excluded[k] for k in values if k not in keys}
    statement: Any = new.on_conflict_do_update(
        index_elements=keys, set_={**replaced, "updated_at": func.now()}
    ).returning(model, literal_column("xmax = 0"))
    row = (await session.execute(statement, execution_options={"populate_existing": True})).one()
    return row[0], bool(row[1])


async def put_override(
    session: AsyncSession,
    doctor_id: uuid.UUID,
    day: dt.date,
    data: OverrideWrite,
    today: dt.date,
) -> tuple[DoctorDateOverride, bool, list[Appointment]]:
    """Set the doctor's windows for one date (`[]` closes it). Returns the override, whether
    it is new, and the doctor's active appointments that day that no longer fit."""
    _not_past(day, today)
    # The doctor's row lock serialises schedule edits of one doctor (as for leaves).
    await get_doctor(session, doctor_id, lock=True)
    values = {
        "doctor_id": doctor_id,
        "date": day,
        "windows": [w.model_dump(mode="json") for w in data.windows],
        "reason": data.reason,
    }
    override, created = await _upsert(session, DoctorDateOverride, ["doctor_id", "date"], values)
    stranded = [a for a in await _active_on(session, day, doctor_id) if not _fits(a, data.windows)]
    return override, created, stranded


async def list_overrides(
    session: AsyncSession,
    doctor_id: uuid.UUID,
    start_date: dt.date | None,
    end_date: dt.date | None,
    *,
    limit: int,
    offset: int,
) -> list[DoctorDateOverride]:
    await get_doctor(session, doctor_id)
    query = select(DoctorDateOverride).where(DoctorDateOverride.doctor_id == doctor_id)
    query = in_dates(query, DoctorDateOverride.date, start_date, end_date)
    query = query.order_by(DoctorDateOverride.date).limit(limit).offset(offset)
    return list((await session.execute(query)).scalars())


async def delete_override(session: AsyncSession, doctor_id: uuid.UUID, day: dt.date) -> None:
    await get_doctor(session, doctor_id, lock=True)
    deleted = await session.execute(
        delete(DoctorDateOverride)
        .where(DoctorDateOverride.doctor_id == doctor_id, DoctorDateOverride.date == day)
        .returning(DoctorDateOverride.date)
    )
    if deleted.first() is None:
        raise NotFound(f"Doctor {doctor_id} has no override on {day}.")


async def put_holiday(
    session: AsyncSession, day: dt.date, name: str, today: dt.date
) -> tuple[ClinicHoliday, bool, list[Appointment]]:
    """Close the clinic on `day`. Returns the holiday, whether it is new, and every doctor's
    active appointments that day."""
    _not_past(day, today)
    holiday, created = await _upsert(session, ClinicHoliday, ["date"], {"date": day, "name": name})
    return holiday, created, await _active_on(session, day)


async def list_holidays(
    session: AsyncSession,
    start_date: dt.date | None,
    end_date: dt.date | None,
    *,
    limit: int,
    offset: int,
) -> list[ClinicHoliday]:
    query = select(ClinicHoliday)
    query = in_dates(query, ClinicHoliday.date, start_date, end_date)
    query = query.order_by(ClinicHoliday.date).limit(limit).offset(offset)
    return list((await session.execute(query)).scalars())


async def delete_holiday(session: AsyncSession, day: dt.date) -> None:
    deleted = await session.execute(
        delete(ClinicHoliday).where(ClinicHoliday.date == day).returning(ClinicHoliday.date)
    )
    if deleted.first() is None:
        raise NotFound(f"There is no clinic holiday on {day}.")
