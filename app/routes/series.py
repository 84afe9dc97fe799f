"""Recurring series: booked in one call (all or none), read, cancelled from a date on.

Declared before the appointments' routes, so `/appointments/series...` is never read as an
appointment's id.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app import adapters
from app.database import ReadSessionDep
from app.routes.deps import ChangeDep, IdempotencyKeyHeader, error_responses, idempotent_response
from app.schemas.common import CalendarDate
from app.schemas.series import SeriesCancelled, SeriesCreate, SeriesRead, SeriesUnavailableBody
from app.security import Role, allow
from app.services import series_service

router = APIRouter(prefix="/appointments/series", tags=["series"])

_SERIES_409: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "Some occurrence cannot be booked (each in `conflicts`); none was",
        "model": SeriesUnavailableBody,
    }
}


@router.post(
    "",
    dependencies=[allow(Role.ADMIN, Role.AGENT)],
    status_code=201,
    response_model=SeriesRead,
    responses={**error_responses(404, 422), **_SERIES_409},
)
async def book_series(
    data: SeriesCreate, change: ChangeDep, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    """Book a course of visits at the same time of day, daily or weekly, in one transaction:
    every occurrence or none. With an `Idempotency-Key`, a retry replays the first answer."""
    return idempotent_response(await adapters.book_series(change, data, idempotency_key))


@router.get("/{series_id}", dependencies=[allow(*Role)], responses=error_responses(404))
async def get_series(series_id: uuid.UUID, session: ReadSessionDep) -> SeriesRead:
    """The series' recurrence and every occurrence (cancelled ones too), by date and time."""
    return await series_service.get_series(session, series_id)


@router.delete(
    "/{series_id}",
    dependencies=[allow(Role.ADMIN, Role.AGENT)],
    responses=error_responses(404),
)
async def cancel_series(
    series_id: uuid.UUID,
    change: ChangeDep,
    from_date: Annotated[CalendarDate | None, Query()] = None,
) -> SeriesCancelled:
    """Cancel the booked or rescheduled occurrences dated on or after `from_date` (default
    today) that have not started; the others stay as they are."""
    cancelled = await adapters.cancel_series(change, series_id, from_date)
    return SeriesCancelled(series_id=series_id, cancelled=cancelled)
