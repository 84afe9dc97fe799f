"""Visit types (spec: "Visit types"). No delete: a type in use is deactivated instead."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.database import ReadSessionDep, SessionDep
from app.routes.deps import error_responses
from app.routes.paging import Limit, Offset
from app.schemas.visit_type import VisitTypeCreate, VisitTypeRead, VisitTypeUpdate
from app.security import Role, allow
from app.services import visit_type_service

router = APIRouter(prefix="/visit-types", tags=["visit types"])


@router.post("/", dependencies=[allow(Role.ADMIN)], status_code=201, responses=error_responses(409))
@router.post("", dependencies=[allow(Role.ADMIN)], status_code=201, include_in_schema=False)
async def create_visit_type(data: VisitTypeCreate, session: SessionDep) -> VisitTypeRead:
    return VisitTypeRead.model_validate(await visit_type_service.create(session, data))


@router.get("/", dependencies=[allow(*Role)], responses=error_responses())
@router.get("", dependencies=[allow(*Role)], include_in_schema=False)
async def list_visit_types(
    session: ReadSessionDep,
    is_active: bool | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[VisitTypeRead]:
    """Visit types by name."""
    found = await visit_type_service.list_all(
        session, is_active=is_active, limit=limit, offset=offset
    )
    return [VisitTypeRead.model_validate(v) for v in found]


@router.get("/{visit_type_id}", dependencies=[allow(*Role)], responses=error_responses(404))
async def get_visit_type(visit_type_id: uuid.UUID, session: ReadSessionDep) -> VisitTypeRead:
    return VisitTypeRead.model_validate(await visit_type_service.get(session, visit_type_id))


@router.put(
    "/{visit_type_id}", dependencies=[allow(Role.ADMIN)], responses=error_responses(404, 409)
)
@router.patch(
    "/{visit_type_id}",
    dependencies=[allow(Role.ADMIN)],
    responses=error_responses(404, 409),
    name="patch_visit_type",  # the same partial update as PUT, under a name of its own
)
async def update_visit_type(
    visit_type_id: uuid.UUID, data: VisitTypeUpdate, session: SessionDep
) -> VisitTypeRead:
    """Partial update: only the fields sent change."""
    visit_type = await visit_type_service.update(session, visit_type_id, data)
    return VisitTypeRead.model_validate(visit_type)
