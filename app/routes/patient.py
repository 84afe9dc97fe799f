from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.database import ReadSessionDep, SessionDep
from app.routes.deps import SettingsDep, error_responses
from app.schemas.common import Limit
from app.schemas.patient import (
    HistoryCreate,
    HistoryRead,
    PatientCreate,
    PatientRead,
    PatientUpdate,
)
from app.services import patient_service

router = APIRouter(prefix="/patients", tags=["patients"])


@router.post("/", status_code=201, responses=error_responses(409))
@router.post("", status_code=201, include_in_schema=False)
async def create_patient(
    data: PatientCreate, session: SessionDep, settings: SettingsDep
) -> PatientRead:
    patient = await patient_service.create_patient(session, data, settings.default_phone_region)
    return PatientRead.model_validate(patient)


@router.get("/mobile/{mobile_number}", responses=error_responses(404))
async def get_patient_by_mobile(
    mobile_number: Annotated[str, Path(min_length=1, max_length=40)],
    session: ReadSessionDep,
    settings: SettingsDep,
) -> PatientRead:
    patient = await patient_service.get_patient_by_mobile(
        session, mobile_number, settings.default_phone_region
    )
    return PatientRead.model_validate(patient)


@router.get("/{patient_id}", responses=error_responses(404))
async def get_patient(patient_id: uuid.UUID, session: ReadSessionDep) -> PatientRead:
    return PatientRead.model_validate(await patient_service.get_patient(session, patient_id))


@router.put("/{patient_id}", responses=error_responses(404, 409))
@router.patch("/{patient_id}", responses=error_responses(404, 409))
async def update_patient(
    patient_id: uuid.UUID, data: PatientUpdate, session: SessionDep, settings: SettingsDep
) -> PatientRead:
    patient = await patient_service.update_patient(
        session, patient_id, data, settings.default_phone_region
    )
    return PatientRead.model_validate(patient)


@router.post("/{patient_id}/history", status_code=201, responses=error_responses(404))
async def add_history(
    patient_id: uuid.UUID, data: HistoryCreate, session: SessionDep
) -> HistoryRead:
    entry = await patient_service.add_history(session, patient_id, data)
    return HistoryRead.model_validate(entry)


@router.get("/{patient_id}/history", responses=error_responses(404))
async def list_history(
    patient_id: uuid.UUID,
    session: ReadSessionDep,
    limit: Annotated[Limit, Query()] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[HistoryRead]:
    entries = await patient_service.list_history(session, patient_id, limit=limit, offset=offset)
    return [HistoryRead.model_validate(e) for e in entries]
