from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from app import metrics
from app.database import SessionDep
from app.models.enums import AppointmentStatus
from app.routes.deps import (
    CallerDep,
    ClinicDep,
    EngineDep,
    ReaderDep,
    error_responses,
    get_clinic,
    get_reader,
)
from app.routes.hand_parsed import (
    HandParsedRoute,
    hand_parsed,
    header_text,
    json_body,
    path_uuid,
    query_date,
)
from app.schemas.appointment import (
    AppointmentCreate,
    AppointmentEventRead,
    AppointmentRead,
    AvailabilityRead,
    DoctorSlot,
    RescheduleRequest,
    SlotUnavailableBody,
)
from app.schemas.common import CalendarDate, Limit, clock_text, json_response
from app.services import appointment_service, booking_service, slot_finder
from app.services.appointment_service import AppointmentFilters
from app.services.audit import Caller
from app.services.availability_service import SlotTime

router = APIRouter(prefix="/appointments", tags=["appointments"])


@lru_cache(maxsize=8192)
def slot_json(slot: SlotTime) -> dict[str, str]:
    # Slots are shared immutable objects (one per grid cell), so their JSON form is too.
    return {"start_time": clock_text(slot.start), "end_time": clock_text(slot.end)}


_SLOT_409: dict[int | str, dict[str, Any]] = {
    409: {"description": "Slot not available", "model": SlotUnavailableBody}
}
DateQuery = Annotated[CalendarDate | None, Query()]


@router.get("/availability", response_model=list[DoctorSlot], responses=error_responses())
async def find_earliest_slots(
    reader: ReaderDep,
    specialization: Annotated[str | None, Query(max_length=200)] = None,
    language: Annotated[str | None, Query(max_length=100)] = None,
    consultation_type: Annotated[str | None, Query(max_length=100)] = None,
    start_date: DateQuery = None,
    end_date: DateQuery = None,
    limit: Annotated[Limit, Query()] = 10,
) -> Response:
    """The earliest free slots across active doctors matching the filters, earliest first."""
    clinic = reader.clinic
    first, last = slot_finder.resolve_range(
        clinic.today, None, start_date, end_date, default_days=14
    )
    found = await slot_finder.earliest_slots(
        reader.engine,
        first,
        last,
        limit,
        clinic.now,
        clinic.tz,
        specialization=specialization,
        language=language,
        consultation_type=consultation_type,
    )
    return json_response(
        [
            {
                "doctor_id": str(f.doctor_id),
                "doctor_name": f.doctor_name,
                "date": f.date.isoformat(),
                "start_time": clock_text(f.start_time),
                "end_time": clock_text(f.end_time),
            }
            for f in found
        ]
    )


async def _parse_availability(request: Request, actor: str) -> dict[str, Any]:
    return {
        "doctor_id": path_uuid(request, "doctor_id"),
        "reader": await get_reader(request),
        "date": query_date(request, "date"),
        "start_date": query_date(request, "start_date"),
        "end_date": query_date(request, "end_date"),
    }


@hand_parsed(_parse_availability)
async def get_availability(
    doctor_id: uuid.UUID,
    reader: ReaderDep,
    date: DateQuery = None,
    start_date: DateQuery = None,
    end_date: DateQuery = None,
) -> Response:
    clinic = reader.clinic
    first, last = slot_finder.resolve_range(clinic.today, date, start_date, end_date)
    result = await slot_finder.doctor_availability(
        reader.engine, doctor_id, first, last, clinic.now, clinic.tz, reader.day_cache
    )
    # The hottest read: serialised straight to JSON (the shape is AvailabilityRead).
    return json_response(
        {
            "doctor_id": str(result.doctor_id),
            "timezone": reader.timezone_name,
            "slot_duration_minutes": result.slot_duration_minutes,
            "days": [
                {
                    "date": day.date.isoformat(),
                    "unavailable_reason": day.unavailable_reason,
                    "slots": [slot_json(s) for s in day.slots],
                }
                for day in result.days
            ],
        }
    )


# The hottest read: served by a hand-parsed route (see app/routes/hand_parsed.py).
router.add_api_route(
    "/availability/{doctor_id}",
    get_availability,
    methods=["GET"],
    response_model=AvailabilityRead,
    responses=error_responses(404),
    route_class_override=HandParsedRoute,
)


async def _parse_booking(request: Request, actor: str) -> dict[str, Any]:
    settings = request.app.state.settings
    return {
        "data": await json_body(request, AppointmentCreate),
        "engine": request.app.state.engine,
        "caller": Caller(actor, header_text(request, "x-correlation-id", max_length=200)),
        "clinic": await get_clinic(settings),
        "idempotency_key": header_text(request, "idempotency-key", min_length=1, max_length=255),
    }


@hand_parsed(_parse_booking)
async def book_appointment(
    data: AppointmentCreate,
    engine: EngineDep,
    caller: CallerDep,
    clinic: ClinicDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> JSONResponse:
    # Committed before it returns: a 201 is only ever sent for a durable booking.
    result = await booking_service.book_idempotently(engine, data, caller, clinic, idempotency_key)
    if not result.replayed:
        metrics.APPOINTMENT_CHANGES.labels("booked").inc()
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


# The hottest write: served by a hand-parsed route too; both spellings of the path.
for _path, _in_schema in (("/", True), ("", False)):
    router.add_api_route(
        _path,
        book_appointment,
        methods=["POST"],
        status_code=201,
        response_model=AppointmentRead,
        responses={**error_responses(404, 422), **_SLOT_409},
        include_in_schema=_in_schema,
        route_class_override=HandParsedRoute,
    )


async def appointment_filters(
    date: DateQuery = None,
    start_date: DateQuery = None,
    end_date: DateQuery = None,
    status: AppointmentStatus | None = None,
    limit: Annotated[Limit, Query()] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> AppointmentFilters:
    """`date` is shorthand for `start_date = end_date = date`."""
    return AppointmentFilters(
        start_date=date or start_date,
        end_date=date or end_date,
        status=status,
        limit=limit,
        offset=offset,
    )


FiltersDep = Annotated[AppointmentFilters, Depends(appointment_filters)]


@router.get("/doctor/{doctor_id}", responses=error_responses(404))
async def list_doctor_appointments(
    doctor_id: uuid.UUID, session: SessionDep, filters: FiltersDep
) -> list[AppointmentRead]:
    appointments = await appointment_service.list_appointments(
        session, filters, doctor_id=doctor_id
    )
    return [AppointmentRead.model_validate(a) for a in appointments]


@router.get("/patient/{patient_id}", responses=error_responses(404))
async def list_patient_appointments(
    patient_id: uuid.UUID, session: SessionDep, filters: FiltersDep
) -> list[AppointmentRead]:
    appointments = await appointment_service.list_appointments(
        session, filters, patient_id=patient_id
    )
    return [AppointmentRead.model_validate(a) for a in appointments]


@router.get("/{appointment_id}", responses=error_responses(404))
async def get_appointment(appointment_id: uuid.UUID, session: SessionDep) -> AppointmentRead:
    appointment = await appointment_service.get_appointment(session, appointment_id)
    return AppointmentRead.model_validate(appointment)


@router.get("/{appointment_id}/events", responses=error_responses(404))
async def list_appointment_events(
    appointment_id: uuid.UUID, session: SessionDep
) -> list[AppointmentEventRead]:
    events = await appointment_service.list_events(session, appointment_id)
    return [AppointmentEventRead.model_validate(e) for e in events]


@router.put("/{appointment_id}/reschedule", responses={**error_responses(404), **_SLOT_409})
async def reschedule_appointment(
    appointment_id: uuid.UUID,
    data: RescheduleRequest,
    session: SessionDep,
    caller: CallerDep,
    clinic: ClinicDep,
) -> AppointmentRead:
    appointment = await booking_service.reschedule(
        session, appointment_id, data.date, data.start_time, caller, clinic
    )
    metrics.APPOINTMENT_CHANGES.labels("rescheduled").inc()
    return AppointmentRead.model_validate(appointment)


@router.delete("/{appointment_id}", responses=error_responses(404, 409))
async def cancel_appointment(
    appointment_id: uuid.UUID, session: SessionDep, caller: CallerDep, clinic: ClinicDep
) -> AppointmentRead:
    appointment = await booking_service.cancel(session, appointment_id, caller, clinic)
    metrics.APPOINTMENT_CHANGES.labels("cancelled").inc()
    return AppointmentRead.model_validate(appointment)
