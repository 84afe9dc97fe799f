"""Dependencies shared by the routes: the caller, the clinic's clock, settings and the error
entries of the OpenAPI document."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.config import Settings
from app.database import read_session, unit_of_work
from app.errors import InvalidInput
from app.schemas.appointment import SlotUnavailableBody
from app.schemas.common import (
    ErrorBody,
    ServerErrorBody,
    ValidationErrorBody,
    parse_calendar_date,
)
from app.security import actor_of
from app.services.context import Caller, Clinic
from app.services.idempotency_service import Answer
from app.services.scheduling.day_cache import DayCache


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def clinic_now(settings: Settings) -> dt.datetime:
    return dt.datetime.now(settings.timezone)


def clinic_of(settings: Settings) -> Clinic:
    """The clinic as of this request: its zone, its clock read once, its mirrors."""
    return Clinic(
        tz=settings.timezone,
        now=clinic_now(settings),
        default_region=settings.default_phone_region,
        calendar_enabled=settings.calendar_enabled,
        rag_enabled=settings.rag_enabled,
    )


async def get_clinic(settings: SettingsDep) -> Clinic:
    return clinic_of(settings)


ClinicDep = Annotated[Clinic, Depends(get_clinic)]


IDEMPOTENCY_KEY_MAX, CORRELATION_ID_MAX = 255, 200
CorrelationIdHeader = Annotated[str | None, Header(max_length=CORRELATION_ID_MAX)]


@dataclass(frozen=True, slots=True)
class Change:
    """What an appointment change needs, resolved as one dependency: the request's unit of work
    (committed when the endpoint returns), the clinic as of now, and who asks. Each dependency
    FastAPI resolves costs the hot paths measurably (see BENCHMARKS.md)."""

    session: AsyncSession
    clinic: Clinic
    caller: Caller
    # `appointment_changes_total` actions, counted once the unit of work has committed.
    counted: list[str] = field(default_factory=list)


@asynccontextmanager
async def open_change(request: Request, correlation_id: str | None) -> AsyncIterator[Change]:
    """The request's unit of work, committed when the block ends, before the answer is sent."""
    caller = Caller(actor=actor_of(request), correlation_id=correlation_id)
    async with unit_of_work(request.app.state.sessionmaker) as session:
        change = Change(session, clinic_of(request.app.state.settings), caller)
        yield change
    for action in change.counted:
        metrics.APPOINTMENT_CHANGES.labels(action).inc()


async def get_change(
    request: Request, x_correlation_id: CorrelationIdHeader = None
) -> AsyncIterator[Change]:
    async with open_change(request, x_correlation_id) as change:
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


def given_id(value: str | None, name: str) -> uuid.UUID | None:
    """An id given as text (a query parameter, a tool's argument), or a 400 naming it."""
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(name, "must be a UUID") from None


def given_date(value: str | None, name: str) -> dt.date | None:
    """A date given as text, YYYY-MM-DD, or a 400 naming it."""
    if value is None:
        return None
    try:
        return parse_calendar_date(value)
    except ValueError as exc:
        raise InvalidInput(name, str(exc)) from None


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
