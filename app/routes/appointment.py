"""Appointments: availability, booking, rescheduling, cancelling, lists and the audit trail."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.datastructures import QueryParams

from app import adapters
from app.database import ReadSessionDep
from app.errors import InvalidInput
from app.models.enums import AppointmentStatus, ConfirmationStatus
from app.routes.deps import (
    SLOT_409,
    ChangeDep,
    ClinicDep,
    IdempotencyKeyHeader,
    error_responses,
    get_reading,
    idempotent_response,
)
from app.schemas.appointment import (
    AppointmentCreate,
    AppointmentEventRead,
    AppointmentRead,
    AvailabilityRead,
    DoctorSlot,
    RescheduleRequest,
)
from app.schemas.arguments import given_date, given_id, given_time
from app.schemas.common import (
    CalendarDate,
    Limit,
    json_response,
)
from app.schemas.reminder import ReminderRead
from app.security import Role, allow
from app.services import (
    appointment_service,
    availability_service,
    front_desk_service,
    reminder_service,
)
from app.services.appointment_service import AppointmentFilters
from app.services.doctor_filters import DoctorFilters

router = APIRouter(prefix="/appointments", tags=["appointments"])


DateQuery = Annotated[CalendarDate | None, Query()]


def _query_parameter(name: str, fmt: str | None, description: str) -> dict[str, Any]:
    """A query parameter's declaration; `fmt` None for plain text (a `format` of "string"
    would show in Swagger UI as `string($string)`)."""
    schema = {"type": "string"} if fmt is None else {"type": "string", "format": fmt}
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


# The hottest route reads its query itself: FastAPI's parameter and dependency resolution cost
# more CPU than the rest of a remembered answer (BENCHMARKS.md). The parameters are declared
# here for the OpenAPI document, and parsed with the same rules as everywhere else. Requests
# reach `get_availability` and `book_appointment` through the plain routes placed before
# these (routes/lanes.py); the FastAPI declarations document both operations.
_AVAILABILITY_QUERY = {
    "parameters": [
        _query_parameter("date", "date", "One day (default: today)."),
        _query_parameter("start_date", "date", "First day of a range (default: today)."),
        _query_parameter("end_date", "date", "Last day of a range, at most 62 days long."),
        _query_parameter("visit_type_id", "uuid", "Slots of this visit type's length."),
    ]
}


# The search, the phone agent's first question, reads its query itself too (and is served by
# a plain route, routes/lanes.py), with the same rules.
_SEARCH_QUERY = {
    "parameters": [
        _query_parameter("specialization", None, "Case-insensitive, at most 200 characters."),
        _query_parameter("language", None, "A language the doctor speaks (at most 100)."),
        _query_parameter("consultation_type", None, "e.g. in_person (at most 100)."),
        _query_parameter("start_date", "date", "First day searched (default: today)."),
        _query_parameter("end_date", "date", "Last day searched (default: 13 days later)."),
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "How many slots, 1 to 500 (default 10).",
            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 10},
        },
        _query_parameter("visit_type_id", "uuid", "Only doctors offering it; slots its length."),
        _query_parameter("doctor_id", "uuid", "One doctor's earliest slots."),
        _query_parameter("earliest_time", "time", "Only slots starting at or after, HH:MM."),
        _query_parameter("latest_time", "time", "Only slots ending at or before, HH:MM."),
    ]
}


def _text(query: QueryParams, name: str, longest: int) -> str | None:
    value = query.get(name)
    if value is not None and len(value) > longest:
        raise InvalidInput(name, f"must be at most {longest} characters")
    return value


def _limit(value: str | None) -> int:
    if value is None:
        return 10
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 500:
        raise InvalidInput("limit", "must be a whole number from 1 to 500")
    return limit


@router.get(
    "/availability",
    dependencies=[allow(*Role)],
    response_model=list[DoctorSlot],
    responses=error_responses(),
    openapi_extra=_SEARCH_QUERY,
)
async def find_earliest_slots(request: Request) -> Response:
    """The earliest free slots across active doctors matching the filters, earliest first.
    With `visit_type_id`: only doctors offering it, slots of its length. With
    `earliest_time` / `latest_time`: only slots within that part of each day."""
    reading = await get_reading(request)
    query = request.query_params
    clinic = reading.clinic
    first, last = availability_service.resolve_range(
        clinic.today,
        None,
        given_date(query.get("start_date"), "start_date"),
        given_date(query.get("end_date"), "end_date"),
        default_days=14,
    )
    filters = DoctorFilters.bookable(
        specialization=_text(query, "specialization", 200),
        language=_text(query, "language", 100),
        consultation_type=_text(query, "consultation_type", 100),
        visit_type_id=query.get("visit_type_id"),
        doctor_id=query.get("doctor_id"),
    )
    limit = _limit(query.get("limit"))
    times = availability_service.resolve_times(
        given_time(query.get("earliest_time"), "earliest_time"),
        given_time(query.get("latest_time"), "latest_time"),
    )
    found = await availability_service.earliest_slots(
        reading.session, filters, first, last, limit, clinic, reading.day_cache, times
    )
    return json_response(
        [
            {
                "doctor_id": str(f.doctor_id),
                "doctor_name": f.doctor_name,
                "date": f.date.isoformat(),
                **availability_service.slot_json(f.slot),
            }
            for f in found
        ]
    )


@router.get(
    "/availability/{doctor_id}",
    dependencies=[allow(*Role)],
    response_model=AvailabilityRead,
    responses=error_responses(404),
    openapi_extra=_AVAILABILITY_QUERY,
)
async def get_availability(doctor_id: uuid.UUID, request: Request) -> Response:
    """Free slots by day, for `date` or `start_date`..`end_date`. With `visit_type_id`, slots
    last that type's duration (still on the doctor's grid). A day with no slots says why in
    `unavailable_reason`."""
    reading = await get_reading(request)
    query = request.query_params
    clinic = reading.clinic
    first, last = availability_service.resolve_range(
        clinic.today,
        given_date(query.get("date"), "date"),
        given_date(query.get("start_date"), "start_date"),
        given_date(query.get("end_date"), "end_date"),
    )
    body = await availability_service.availability_json(
        reading.session,
        doctor_id,
        first,
        last,
        clinic,
        reading.day_cache,
        given_id(query.get("visit_type_id"), "visit_type_id"),
    )
    return Response(body, media_type="application/json")


@router.post(
    "/",
    dependencies=[allow(Role.ADMIN, Role.AGENT)],
    status_code=201,
    response_model=AppointmentRead,
    responses={**error_responses(404, 422), **SLOT_409},
)
@router.post(
    "", dependencies=[allow(Role.ADMIN, Role.AGENT)], status_code=201, include_in_schema=False
)
async def book_appointment(
    data: AppointmentCreate,
    change: ChangeDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Book a slot, or the slot a hold keeps (`hold_id`); with an `Idempotency-Key`, a retry
    replays the first answer."""
    return idempotent_response(await adapters.book(change, data, idempotency_key))


async def appointment_filters(
    date: DateQuery = None,
    start_date: DateQuery = None,
    end_date: DateQuery = None,
    status: AppointmentStatus | None = None,
    confirmation_status: ConfirmationStatus | None = None,
    limit: Annotated[Limit, Query()] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> AppointmentFilters:
    """`date` is shorthand for `start_date = end_date = date`."""
    return AppointmentFilters(
        start_date=date or start_date,
        end_date=date or end_date,
        status=status,
        confirmation_status=confirmation_status,
        limit=limit,
        offset=offset,
    )


FiltersDep = Annotated[AppointmentFilters, Depends(appointment_filters)]


@router.get("/doctor/{doctor_id}", dependencies=[allow(*Role)], responses=error_responses(404))
async def list_doctor_appointments(
    doctor_id: uuid.UUID, session: ReadSessionDep, filters: FiltersDep
) -> list[AppointmentRead]:
    appointments = await appointment_service.list_appointments(
        session, filters, doctor_id=doctor_id
    )
    return [AppointmentRead.model_validate(a) for a in appointments]


@router.get("/patient/{patient_id}", dependencies=[allow(*Role)], responses=error_responses(404))
async def list_patient_appointments(
    patient_id: uuid.UUID, session: ReadSessionDep, filters: FiltersDep
) -> list[AppointmentRead]:
    appointments = await appointment_service.list_appointments(
        session, filters, patient_id=patient_id
    )
    return [AppointmentRead.model_validate(a) for a in appointments]


@router.get("/{appointment_id}", dependencies=[allow(*Role)], responses=error_responses(404))
async def get_appointment(appointment_id: uuid.UUID, session: ReadSessionDep) -> AppointmentRead:
    appointment = await appointment_service.get_appointment(session, appointment_id)
    return AppointmentRead.model_validate(appointment)


@router.get("/{appointment_id}/events", dependencies=[allow(*Role)], responses=error_responses(404))
async def list_appointment_events(
    appointment_id: uuid.UUID, session: ReadSessionDep
) -> list[AppointmentEventRead]:
    events = await appointment_service.list_events(session, appointment_id)
    return [AppointmentEventRead.model_validate(e) for e in events]


@router.get(
    "/{appointment_id}/reminders", dependencies=[allow(*Role)], responses=error_responses(404)
)
async def list_appointment_reminders(
    appointment_id: uuid.UUID, session: ReadSessionDep, clinic: ClinicDep
) -> list[ReminderRead]:
    """The appointment's reminders for its current start time and the policy's current
    offsets, by `due_at` (`sent`: emitted, whether or not an endpoint is subscribed)."""
    return await reminder_service.list_reminders(session, appointment_id, clinic)


@router.post(
    "/{appointment_id}/confirm",
    dependencies=[allow(Role.ADMIN, Role.AGENT)],
    responses=error_responses(404, 409),
)
async def confirm_appointment(appointment_id: uuid.UUID, change: ChangeDep) -> AppointmentRead:
    """The patient agreed to come at this time: `confirmed` (again: unchanged). Only a
    `BOOKED`/`RESCHEDULED` appointment that has not started."""
    return AppointmentRead.model_validate(await adapters.confirm(change, appointment_id))


@router.put(
    "/{appointment_id}/reschedule",
    dependencies=[allow(Role.ADMIN, Role.AGENT)],
    responses={**error_responses(404), **SLOT_409},
)
async def reschedule_appointment(
    appointment_id: uuid.UUID, data: RescheduleRequest, change: ChangeDep
) -> AppointmentRead:
    """Move the visit to another slot, of its own doctor or of `doctor_id`, keeping its
    length and visit type (another doctor must offer that type: 400 naming `doctor_id`)."""
    appointment = await adapters.reschedule(
        change, appointment_id, data.date, data.start_time, data.doctor_id, confirmed=data.confirmed
    )
    return AppointmentRead.model_validate(appointment)


@router.delete(
    "/{appointment_id}",
    dependencies=[allow(Role.ADMIN, Role.AGENT)],
    responses=error_responses(404, 409),
)
async def cancel_appointment(appointment_id: uuid.UUID, change: ChangeDep) -> AppointmentRead:
    appointment = await adapters.cancel(change, appointment_id)
    return AppointmentRead.model_validate(appointment)


@router.post(
    "/{appointment_id}/check-in",
    dependencies=[allow(Role.ADMIN)],
    responses=error_responses(404, 409),
)
async def check_in_appointment(appointment_id: uuid.UUID, change: ChangeDep) -> AppointmentRead:
    """The patient has arrived: `BOOKED`/`RESCHEDULED` to `CHECKED_IN`, any time on the
    appointment's date (clinic time). The visit keeps its slot."""
    return await _desk_step(appointment_id, front_desk_service.CHECK_IN, change)


@router.post(
    "/{appointment_id}/complete",
    dependencies=[allow(Role.ADMIN)],
    responses=error_responses(404, 409),
)
async def complete_appointment(appointment_id: uuid.UUID, change: ChangeDep) -> AppointmentRead:
    """The visit is over: `CHECKED_IN` to `COMPLETED`. The visit keeps its slot."""
    return await _desk_step(appointment_id, front_desk_service.COMPLETE, change)


@router.post(
    "/{appointment_id}/no-show",
    dependencies=[allow(Role.ADMIN)],
    responses=error_responses(404, 409),
)
async def mark_no_show(appointment_id: uuid.UUID, change: ChangeDep) -> AppointmentRead:
    """The patient did not come: `BOOKED`/`RESCHEDULED` to `NO_SHOW`, once the start time has
    passed. The slot is freed."""
    return await _desk_step(appointment_id, front_desk_service.NO_SHOW, change)


@router.post(
    "/{appointment_id}/undo",
    dependencies=[allow(Role.ADMIN)],
    responses={**error_responses(404), **SLOT_409},
)
async def undo_desk_step(appointment_id: uuid.UUID, change: ChangeDep) -> AppointmentRead:
    """Take back a check-in or no-show on the appointment's date: it returns to `BOOKED` or
    `RESCHEDULED`, as before the step (409 `invalid_state` otherwise). A no-show's time must
    still be free (409 `slot_unavailable`, `reason` `taken` or `held`). Audited as `undo`;
    no webhook message, and reminders the step voided stay void."""
    return AppointmentRead.model_validate(await adapters.undo(change, appointment_id))


async def _desk_step(
    appointment_id: uuid.UUID, step: front_desk_service.Step, change: ChangeDep
) -> AppointmentRead:
    return AppointmentRead.model_validate(await adapters.take_step(change, appointment_id, step))
