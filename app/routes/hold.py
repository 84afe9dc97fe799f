"""Holds (spec: "Holds"): a slot kept for a caller for a few minutes, then booked with
`hold_id` on `POST /appointments/`, released, or left to expire."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from app.database import ReadSessionDep
from app.routes.deps import (
    SLOT_409,
    ChangeDep,
    ClinicDep,
    IdempotencyKeyHeader,
    error_responses,
    idempotent_response,
)
from app.schemas.hold import HoldCreate, HoldRead
from app.security import Role, allow
from app.services import hold_service, idempotency_service

router = APIRouter(prefix="/holds", tags=["holds"])


@router.post(
    "/",
    dependencies=[allow(Role.ADMIN, Role.AGENT)],
    status_code=201,
    response_model=HoldRead,
    responses={**error_responses(404, 422), **SLOT_409},
)
@router.post(
    "", dependencies=[allow(Role.ADMIN, Role.AGENT)], status_code=201, include_in_schema=False
)
async def create_hold(
    data: HoldCreate, change: ChangeDep, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    """Keep a slot for `ttl_seconds` (default 300): while active, nobody else is offered it or
    can book or hold it (409 `reason` `held`). Refused like a booking when not free."""
    session, caller = change.session, change.caller
    answer = await idempotency_service.once(
        session,
        caller.actor,
        idempotency_key,
        "create_hold",
        data,
        lambda: hold_service.create(session, data, caller, change.clinic),
    )
    return idempotent_response(answer)


@router.get("/{hold_id}", dependencies=[allow(*Role)], responses=error_responses(404))
async def get_hold(hold_id: uuid.UUID, session: ReadSessionDep, clinic: ClinicDep) -> HoldRead:
    """The hold as it is now: `active`, `expired`, `booked` or `released`."""
    return await hold_service.get(session, hold_id, clinic)


@router.delete(
    "/{hold_id}",
    dependencies=[allow(Role.ADMIN, Role.AGENT)],
    status_code=204,
    responses=error_responses(404, 409),
)
async def release_hold(hold_id: uuid.UUID, change: ChangeDep) -> Response:
    """Let the slot go at once (active or expired become `released`; again: no change). A
    booked hold is a 409: cancel the appointment instead."""
    await hold_service.release(change.session, hold_id, change.clinic)
    return Response(status_code=204)
