"""A doctor's date overrides and the clinic's holidays (spec: "Schedules")."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from app.database import ReadSessionDep, SessionDep
from app.routes.deps import ClinicDep, error_responses
from app.routes.paging import Limit, Offset
from app.schemas.appointment import AppointmentRead
from app.schemas.common import CalendarDate
from app.schemas.schedule import (
    HolidayRead,
    HolidayWrite,
    HolidayWritten,
    OverrideRead,
    OverrideWrite,
    OverrideWritten,
)
from app.security import Role, allow
from app.services import schedule_service

router = APIRouter(tags=["schedules"])

_CREATED: dict[int | str, dict[str, Any]] = {
    201: {"description": "Created (200: an existing one replaced)"}
}


@router.put(
    "/doctors/{doctor_id}/overrides/{date}",
    dependencies=[allow(Role.ADMIN)],
    response_model=OverrideWritten,
    responses={**error_responses(404), **_CREATED},
)
async def set_date_override(
    doctor_id: uuid.UUID,
    date: CalendarDate,
    data: OverrideWrite,
    session: SessionDep,
    clinic: ClinicDep,
    response: Response,
) -> OverrideWritten:
    """Different hours for one date: `windows` replace the week's (`[]` closes the day).
    `affected_appointments`: active ones that no longer fit, left for a person to move."""
    override, created, stranded = await schedule_service.put_override(
        session, doctor_id, date, data, clinic.today
    )
    response.status_code = 201 if created else 200
    return OverrideWritten(
        **OverrideRead.model_validate(override).model_dump(),
        affected_appointments=[AppointmentRead.model_validate(a) for a in stranded],
    )


@router.get(
    "/doctors/{doctor_id}/overrides", dependencies=[allow(*Role)], responses=error_responses(404)
)
async def list_date_overrides(
    doctor_id: uuid.UUID,
    session: ReadSessionDep,
    start_date: CalendarDate | None = None,
    end_date: CalendarDate | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[OverrideRead]:
    """The doctor's date overrides, by date."""
    overrides = await schedule_service.list_overrides(
        session, doctor_id, start_date, end_date, limit=limit, offset=offset
    )
    return [OverrideRead.model_validate(o) for o in overrides]


@router.delete(
    "/doctors/{doctor_id}/overrides/{date}",
    dependencies=[allow(Role.ADMIN)],
    status_code=204,
    responses=error_responses(404),
)
async def delete_date_override(
    doctor_id: uuid.UUID, date: CalendarDate, session: SessionDep
) -> Response:
    await schedule_service.delete_override(session, doctor_id, date)
    return Response(status_code=204)


@router.put(
    "/clinic/holidays/{date}",
    dependencies=[allow(Role.ADMIN)],
    response_model=HolidayWritten,
    responses={**error_responses(), **_CREATED},
)
async def set_clinic_holiday(
    date: CalendarDate,
    data: HolidayWrite,
    session: SessionDep,
    clinic: ClinicDep,
    response: Response,
) -> HolidayWritten:
    """Close the clinic for a day: no doctor offers slots. `affected_appointments`: every
    doctor's active appointments that day, left for a person to move."""
    holiday, created, stranded = await schedule_service.put_holiday(
        session, date, data.name, clinic.today
    )
    response.status_code = 201 if created else 200
    return HolidayWritten(
        **HolidayRead.model_validate(holiday).model_dump(),
        affected_appointments=[AppointmentRead.model_validate(a) for a in stranded],
    )


@router.get("/clinic/holidays", dependencies=[allow(*Role)], responses=error_responses())
async def list_clinic_holidays(
    session: ReadSessionDep,
    start_date: CalendarDate | None = None,
    end_date: CalendarDate | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[HolidayRead]:
    """The clinic's holidays, by date."""
    holidays = await schedule_service.list_holidays(
        session, start_date, end_date, limit=limit, offset=offset
    )
    return [HolidayRead.model_validate(h) for h in holidays]


@router.delete(
    "/clinic/holidays/{date}",
    dependencies=[allow(Role.ADMIN)],
    status_code=204,
    responses=error_responses(404),
)
async def delete_clinic_holiday(date: CalendarDate, session: SessionDep) -> Response:
    await schedule_service.delete_holiday(session, date)
    return Response(status_code=204)
