"""Patients and their history. Every answer that shows a patient's record or history is
written to the access log in the same transaction (`access_log_service`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.database import ReadSessionDep
from app.routes.deps import ChangeDep, error_responses
from app.schemas.common import Limit
from app.schemas.patient import (
    HistoryCreate,
    HistoryRead,
    PatientAccessRead,
    PatientCreate,
    PatientRead,
    PatientUpdate,
)
from app.security import Role, allow
from app.services import access_log_service, patient_service

router = APIRouter(prefix="/patients", tags=["patients"])

Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]


@router.post(
    "/",
    dependencies=[allow(Role.ADMIN, Role.AGENT)],
    status_code=201,
    responses=error_responses(409),
)
@router.post(
    "", dependencies=[allow(Role.ADMIN, Role.AGENT)], status_code=201, include_in_schema=False
)
async def create_patient(data: PatientCreate, change: ChangeDep) -> PatientRead:
    patient = await patient_service.create_patient(
        change.session, data, change.clinic.default_region
    )
    return await _shown(change, PatientRead.model_validate(patient), "create_patient")


@router.get("/mobile/{mobile_number}", dependencies=[allow(*Role)], responses=error_responses(404))
async def get_patient_by_mobile(
    mobile_number: Annotated[str, Path(min_length=1, max_length=40)], change: ChangeDep
) -> PatientRead:
    patient = await patient_service.get_patient_by_mobile(
        change.session, mobile_number, change.clinic.default_region
    )
    return await _shown(change, PatientRead.model_validate(patient), "get_patient_by_mobile")


@router.get("/{patient_id}", dependencies=[allow(*Role)], responses=error_responses(404))
async def get_patient(patient_id: uuid.UUID, change: ChangeDep) -> PatientRead:
    patient = await patient_service.get_patient(change.session, patient_id)
    return await _shown(change, PatientRead.model_validate(patient), "get_patient")


@router.put(
    "/{patient_id}",
    dependencies=[allow(Role.ADMIN, Role.AGENT)],
    responses=error_responses(404, 409),
)
@router.patch(
    "/{patient_id}",
    dependencies=[allow(Role.ADMIN, Role.AGENT)],
    responses=error_responses(404, 409),
    name="patch_patient",  # the same partial update as PUT, under a name of its own
)
async def update_patient(
    patient_id: uuid.UUID, data: PatientUpdate, change: ChangeDep
) -> PatientRead:
    patient = await patient_service.update_patient(
        change.session, patient_id, data, change.clinic.default_region
    )
    return await _shown(change, PatientRead.model_validate(patient), "update_patient")


async def _shown(change: ChangeDep, patient: PatientRead, via: str) -> PatientRead:
    await access_log_service.record(change.session, change.caller, patient.id, "record", via)
    return patient


@router.post(
    "/{patient_id}/history",
    dependencies=[allow(Role.ADMIN, Role.AGENT)],
    status_code=201,
    responses=error_responses(404),
)
async def add_patient_history(
    patient_id: uuid.UUID, data: HistoryCreate, change: ChangeDep
) -> HistoryRead:
    """Add an entry. The phone agent may add what a caller reports, but not read history."""
    entry = await patient_service.add_history(change.session, patient_id, data)
    await access_log_service.record(
        change.session, change.caller, patient_id, "history", "add_history"
    )
    return HistoryRead.model_validate(entry)


@router.get(
    "/{patient_id}/history", dependencies=[allow(Role.ADMIN)], responses=error_responses(404)
)
async def list_patient_history(
    patient_id: uuid.UUID,
    change: ChangeDep,
    limit: Annotated[Limit, Query()] = 100,
    offset: Offset = 0,
) -> list[HistoryRead]:
    entries = await patient_service.list_history(
        change.session, patient_id, limit=limit, offset=offset
    )
    await access_log_service.record(
        change.session, change.caller, patient_id, "history", "list_history"
    )
    return [HistoryRead.model_validate(e) for e in entries]


@router.get(
    "/{patient_id}/access-log", dependencies=[allow(Role.ADMIN)], responses=error_responses(404)
)
async def list_patient_access_log(
    patient_id: uuid.UUID,
    session: ReadSessionDep,
    limit: Annotated[Limit, Query()] = 100,
    offset: Offset = 0,
) -> list[PatientAccessRead]:
    """Who was shown this patient's record or history, newest first."""
    await patient_service.get_patient(session, patient_id)
    entries = await access_log_service.list_for_patient(
        session, patient_id, limit=limit, offset=offset
    )
    return [PatientAccessRead.model_validate(e) for e in entries]
