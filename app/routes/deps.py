"""Dependencies shared by the routes: the caller, the clinic's clock, settings and the error
entries of the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.adapters import Change, open_change
from app.adapters import clinic_of as clinic_of  # app/main.py imports it from here
from app.config import Settings
from app.database import read_session
from app.schemas.appointment import SlotUnavailableBody
from app.schemas.common import ErrorBody, ServerErrorBody, ValidationErrorBody
from app.security import actor_of
from app.services.context import Caller, Clinic
from app.services.idempotency_service import Answer
from app.services.scheduling.day_cache import DayCache


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_clinic(settings: SettingsDep) -> Clinic:
    return clinic_of(settings)


ClinicDep = Annotated[Clinic, Depends(get_clinic)]


IDEMPOTENCY_KEY_MAX, CORRELATION_ID_MAX = 255, 200
CorrelationIdHeader = Annotated[str | None, Header(max_length=CORRELATION_ID_MAX)]


def request_change(
    request: Request, correlation_id: str | None
) -> AbstractAsyncContextManager[Change]:
    """The request's unit of work (`adapters.open_change`): committed when the block ends,
    before the answer is sent."""
    state = request.app.state
    caller = Caller(actor=actor_of(request), correlation_id=correlation_id)
    return open_change(state.sessionmaker, state.settings, caller)


async def get_change(
    request: Request, x_correlation_id: CorrelationIdHeader = None
) -> AsyncIterator[Change]:
    async with request_change(request, x_correlation_id) as change:
        yield change


ChangeDep = Annotated[Change, Depends(get_change, scope="function")]


@dataclass(frozen=True, slots=True)
class Reading:
    """What an availability read needs, resolved as one dependency: on the hottest reads each
    dependency FastAPI resolves costs measurably (see BENCHMARKS.md)."""

    session: AsyncSession
    clinic: Clinic
    settings: Settings
    day_cache: DayCache


async def get_reading(request: Request) -> Reading:
    settings: Settings = request.app.state.settings
    state = request.app.state
    return Reading(read_session(request), clinic_of(settings), settings, state.day_cache)


ReadingDep = Annotated[Reading, Depends(get_reading)]
IdempotencyKeyHeader = Annotated[str | None, Header(min_length=1, max_length=IDEMPOTENCY_KEY_MAX)]

_DESCRIPTIONS = {
    400: ("Malformed or invalid input", ValidationErrorBody),
    401: ("Missing or wrong X-API-Key", ErrorBody),
    404: ("Unknown id", ErrorBody),
    409: ("Conflict with the current state", ErrorBody),
    422: ("Idempotency-Key reused with a different body", ErrorBody),
    429: ("Too many requests for this API key", ErrorBody),
    500: ("Unexpected error; quote the request id", ServerErrorBody),
    503: ("The database is unavailable", ErrorBody),
}


# A slot refused: why (`reason`) and the nearest free ones, for bookings, holds and moves.
SLOT_409: dict[int | str, dict[str, Any]] = {
    409: {"description": "Slot not available, or the wrong state", "model": SlotUnavailableBody}
}


def idempotent_response(answer: Answer) -> Response:
    """An idempotent operation's answer; a replayed one says so (`Idempotent-Replayed`)."""
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return Response(
        answer.json(), status_code=answer.status, media_type="application/json", headers=headers
    )


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses an operation can answer."""
    every = (400, 401, 429, 500, 503, *codes)
    return {
        code: {"description": _DESCRIPTIONS[code][0], "model": _DESCRIPTIONS[code][1]}
        for code in sorted(set(every))
    }
