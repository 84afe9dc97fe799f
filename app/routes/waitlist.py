"""The waitlist (spec: "Waitlist"): entries waiting for a freed slot, and their answers to the
slot held for them. Offers are made off the requests (services/waitlist/matcher.py)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from app.database import ReadSessionDep
from app.models.enums import AppointmentSource
from app.models.waitlist import WaitlistStatus
from app.routes.deps import (
    SLOT_409,
    ChangeDep,
    ClinicDep,
    CorrelationIdHeader,
    IdempotencyKeyHeader,
    error_responses,
    idempotent_response,
    request_change,
)
from app.routes.paging import Limit, Offset
from app.schemas.waitlist import WaitlistEntryCreate, WaitlistEntryRead
from app.security import Role, allow
from app.services import waitlist_service
from app.services.waitlist_service import EntryFilters

router = APIRouter(prefix="/waitlist", tags=["waitlist"])
WRITERS = [allow(Role.ADMIN, Role.AGENT)]


@router.post(
    "/",
    dependencies=WRITERS,
    status_code=201,
    operation_id="create_waitlist_entry",
    responses=error_responses(404),
)
@router.post("", dependencies=WRITERS, status_code=201, include_in_schema=False)
async def create_waitlist_entry(data: WaitlistEntryCreate, change: ChangeDep) -> WaitlistEntryRead:
    """Wait for a freed slot: the earliest matching free slot is held for the entry
    (`WAITLIST_OFFER_MINUTES`) within a minute of coming free, oldest entries first, and
    `waitlist.offered` is sent."""
    return await waitlist_service.create(change.session, data, change.caller, change.clinic)


@router.get(
    "/", dependencies=[allow(*Role)], operation_id="list_waitlist", responses=error_responses()
)
@router.get("", dependencies=[allow(*Role)], include_in_schema=False)
async def list_waitlist(
    session: ReadSessionDep,
    clinic: ClinicDep,
    status: WaitlistStatus | None = None,
    patient_id: uuid.UUID | None = None,
    doctor_id: uuid.UUID | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[WaitlistEntryRead]:
    """Oldest first."""
    filters = EntryFilters(status, patient_id, doctor_id, limit, offset)
    return await waitlist_service.list_entries(session, filters, clinic)


@router.get(
    "/{entry_id}",
    dependencies=[allow(*Role)],
    operation_id="get_waitlist_entry",
    responses=error_responses(404),
)
async def get_waitlist_entry(
    entry_id: uuid.UUID, session: ReadSessionDep, clinic: ClinicDep
) -> WaitlistEntryRead:
    return await waitlist_service.get(session, entry_id, clinic)


@router.delete(
    "/{entry_id}",
    dependencies=WRITERS,
    operation_id="cancel_waitlist_entry",
    responses=error_responses(404, 409),
)
async def cancel_waitlist_entry(entry_id: uuid.UUID, change: ChangeDep) -> WaitlistEntryRead:
    """Stop waiting (again: unchanged); an offered slot is let go. A booked entry: 409."""
    return await waitlist_service.cancel(change.session, entry_id, change.clinic)


@router.post(
    "/{entry_id}/accept",
    dependencies=WRITERS,
    operation_id="accept_waitlist_offer",
    response_model=WaitlistEntryRead,
    responses={**error_responses(404, 422), **SLOT_409},
)
async def accept_waitlist_offer(
    entry_id: uuid.UUID,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
    x_correlation_id: CorrelationIdHeader = None,
) -> Response:
    """Take the offered slot: it is booked (source `AI_CALLING_AGENT` for an agent key,
    `ADMIN` for an admin key), or the entry's appointment is moved to it. A slot taken
    meanwhile (the hold had expired): 409 `slot_unavailable`, and the entry waits again."""
    role = request.state.role
    source = AppointmentSource.AI_CALLING_AGENT if role == Role.AGENT else AppointmentSource.ADMIN
    # Its own unit of work: a refusal still commits the entry's return to waiting.
    async with request_change(request, x_correlation_id) as change:
        accepted = await waitlist_service.accept(
            change.session, entry_id, source, change.caller, change.clinic, idempotency_key
        )
        if accepted.counted is not None:
            change.counted.append(accepted.counted)
    return idempotent_response(accepted.settled())


@router.post(
    "/{entry_id}/decline",
    dependencies=WRITERS,
    operation_id="decline_waitlist_offer",
    responses=error_responses(404, 409),
)
async def decline_waitlist_offer(entry_id: uuid.UUID, change: ChangeDep) -> WaitlistEntryRead:
    """Refuse the offered slot: its hold is released and the entry waits again; that slot is
    never offered to it again."""
    return await waitlist_service.decline(change.session, entry_id, change.clinic)
