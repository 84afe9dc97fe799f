from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.database import ReadSessionDep, SessionDep
from app.routes.deps import ClinicDep, SettingsDep, error_responses
from app.schemas.appointment import AppointmentRead
from app.schemas.common import CalendarDate, Limit
from app.schemas.doctor import DoctorCreate, DoctorRead, DoctorUpdate
from app.schemas.leave import LeaveCreate, LeaveCreated, LeaveRead
from app.security import Role, allow
from app.services import doctor_service
from app.services.doctor_filters import DoctorFilters

router = APIRouter(prefix="/doctors", tags=["doctors"])


@router.post("/", dependencies=[allow(Role.ADMIN)], status_code=201, responses=error_responses(409))
@router.post("", dependencies=[allow(Role.ADMIN)], status_code=201, include_in_schema=False)
async def create_doctor(
    data: DoctorCreate, session: SessionDep, settings: SettingsDep, clinic: ClinicDep
) -> DoctorRead:
    doctor = await doctor_service.create_doctor(session, data, settings.clinic_id, clinic)
    return DoctorRead.model_validate(doctor)


@router.get("/", dependencies=[allow(*Role)], responses=error_responses())
@router.get("", dependencies=[allow(*Role)], include_in_schema=False)
async def list_doctors(
    session: ReadSessionDep,
    specialization: Annotated[str | None, Query(max_length=200)] = None,
    language: Annotated[str | None, Query(max_length=100)] = None,
    consultation_type: Annotated[str | None, Query(max_length=100)] = None,
    is_active: bool | None = None,
    clinic_id: uuid.UUID | None = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[Limit, Query()] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[DoctorRead]:
    filters = DoctorFilters(
        specialization=specialization,
        language=language,
        consultation_type=consultation_type,
        is_active=is_active,
        clinic_id=clinic_id,
        name=name,
    )
    doctors = await doctor_service.list_doctors(session, filters, limit=limit, offset=offset)
    return [DoctorRead.model_validate(d) for d in doctors]


@router.get("/{doctor_id}", dependencies=[allow(*Role)], responses=error_responses(404))
async def get_doctor(doctor_id: uuid.UUID, session: ReadSessionDep) -> DoctorRead:
    return DoctorRead.model_validate(await doctor_service.get_doctor(session, doctor_id))


@router.put("/{doctor_id}", dependencies=[allow(Role.ADMIN)], responses=error_responses(404, 409))
@router.patch(
    "/{doctor_id}",
    dependencies=[allow(Role.ADMIN)],
    responses=error_responses(404, 409),
    name="patch_doctor",  # the same partial update as PUT, under a name of its own
)
async def update_doctor(
    doctor_id: uuid.UUID, data: DoctorUpdate, session: SessionDep, clinic: ClinicDep
) -> DoctorRead:
    doctor = await doctor_service.update_doctor(session, doctor_id, data, clinic)
    return DoctorRead.model_validate(doctor)


@router.post(
    "/{doctor_id}/leaves",
    dependencies=[allow(Role.ADMIN)],
    status_code=201,
    responses=error_responses(404, 409),
)
async def add_leave(doctor_id: uuid.UUID, data: LeaveCreate, session: SessionDep) -> LeaveCreated:
    leave, affected = await doctor_service.add_leave(session, doctor_id, data)
    return LeaveCreated.model_validate(
        {
            **LeaveRead.model_validate(leave).model_dump(),
            "affected_appointments": [AppointmentRead.model_validate(a) for a in affected],
        }
    )


@router.get("/{doctor_id}/leaves", dependencies=[allow(*Role)], responses=error_responses(404))
async def list_leaves(
    doctor_id: uuid.UUID,
    session: ReadSessionDep,
    start_date: CalendarDate | None = None,
    end_date: CalendarDate | None = None,
    limit: Annotated[Limit, Query()] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[LeaveRead]:
    leaves = await doctor_service.list_leaves(
        session, doctor_id, start_date=start_date, end_date=end_date, limit=limit, offset=offset
    )
    return [LeaveRead.model_validate(leave) for leave in leaves]


@router.delete(
    "/{doctor_id}/leaves/{leave_id}",
    dependencies=[allow(Role.ADMIN)],
    status_code=204,
    responses=error_responses(404),
)
async def delete_leave(doctor_id: uuid.UUID, leave_id: uuid.UUID, session: SessionDep) -> Response:
    await doctor_service.delete_leave(session, doctor_id, leave_id)
    return Response(status_code=204)
