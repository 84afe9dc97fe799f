"""The eleven tools, by the spec's names. Each validates its arguments with the REST schemas,
calls the same service as the REST route, and answers the REST shape as structured content
with one sentence for the voice; a failure is the REST error body with `isError`."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import FastAPI
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent
from pydantic import Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app.adapters import clinic_of
from app.agent import speech
from app.database import unit_of_work
from app.error_bodies import database_failure, validation_body
from app.errors import InvalidInput, ServiceError
from app.schemas.appointment import (
    AppointmentCreate,
    AppointmentRead,
    AvailabilityRead,
    DayAvailability,
    DoctorSlot,
    RescheduleRequest,
    Slot,
)
from app.schemas.arguments import given_date, given_id
from app.schemas.common import check_text
from app.schemas.doctor import DoctorRead
from app.schemas.hold import TTL_DEFAULT_SECONDS, HoldCreate
from app.schemas.patient import PatientRead
from app.schemas.visit_type import VisitTypeRead
from app.security import actor_of
from app.services import (
    access_log_service,
    appointment_service,
    availability_service,
    booking_service,
    doctor_service,
    hold_service,
    idempotency_service,
    patient_service,
    visit_type_service,
)
from app.services.appointment_service import AppointmentFilters
from app.services.context import Caller, Clinic
from app.services.doctor_filters import DoctorFilters

logger = logging.getLogger("app.agent")

Answer = tuple[dict[str, Any], str]  # the REST shape, and one sentence to say
Work = Callable[[AsyncSession, Clinic, Caller], Awaitable[Answer]]

# Arguments, described for a language model.
DoctorId = Annotated[str, Field(description="The doctor's id (from find_doctors or a slot).")]
Date = Annotated[str, Field(description="A date, YYYY-MM-DD, in the clinic's calendar.")]
StartTime = Annotated[str, Field(description="The slot's start, HH:MM, in clinic time.")]
FromDate = Annotated[str | None, Field(description="First date, YYYY-MM-DD; default today.")]
ToDate = Annotated[str | None, Field(description="Last date, YYYY-MM-DD (included).")]
VisitTypeId = Annotated[
    str | None, Field(description="A visit type's id from clinic_info; its length is used.")
]
CallId = Annotated[
    str | None, Field(description="The phone call's id; kept in the appointment's audit trail.")
]
Mobile = Annotated[str, Field(description="A mobile number, any spelling (+91 98765 43210).")]
Text = Annotated[str | None, Field(description="Matched ignoring case.")]


def _required_id(value: str, field: str) -> uuid.UUID:
    found = given_id(value, field)
    assert found is not None
    return found


def _one_line(**texts: str | None) -> None:
    """Arguments read as text (filters, a mobile, keys) by REST's rule for any text outside a
    body: no control character, so nothing is silently matched, stripped or stored with one."""
    for field, value in texts.items():
        try:
            check_text(value)
        except ValueError as exc:
            raise InvalidInput(field, str(exc)) from None


def _result(structured: dict[str, Any], sentence: str, *, error: bool = False) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=sentence)],
        structured_content=structured,
        is_error=error,
    )


def _listed(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items}


def build(app: FastAPI, server: MCPServer) -> None:
    """Register the tools on `server`, working on `app`'s database, settings and keys."""

    async def run(
        ctx: Context, call_id: str | None, work: Work, **texts: str | None
    ) -> CallToolResult:
        # `texts`: the tool's text arguments that no schema reads (an InputModel checks its own).
        # The key's name, as `server._Guard` found it before MCP saw the request.
        request = ctx.request_context.request
        if not isinstance(request, Request):  # served over HTTP only (`server.mount`)
            raise TypeError("the tools are served over HTTP")
        caller = Caller(actor=actor_of(request), correlation_id=call_id)
        clinic = clinic_of(app.state.settings)
        try:
            _one_line(call_id=call_id, **texts)
            async with unit_of_work(app.state.sessionmaker) as session:
                structured, sentence = await work(session, clinic, caller)
        except ServiceError as exc:
            body = exc.body()
            return _result(body, speech.failure(body), error=True)
        except ValidationError as exc:
            body = validation_body(exc.errors())
            return _result(body, speech.failure(body), error=True)
        except Exception as exc:
            # As REST answers them: the database away is a 503 body, a bug a bare
            # internal_error (logged here, never shown to the agent).
            failure = database_failure(exc)
            if failure is None:
                logger.exception("tool failed", extra={"call_id": call_id})
                body = {
                    "detail": "An unexpected error occurred; try again.",
                    "code": "internal_error",
                }
            else:
                body = failure[1]
            return _result(body, speech.failure(body), error=True)
        return _result(structured, sentence)

    async def doctor_name(session: AsyncSession, doctor_id: uuid.UUID) -> str:
        return (await doctor_service.get_doctor(session, doctor_id)).name

    @server.tool(
        description="The clinic's time zone, today's date, the time now and the visit types "
        "it offers (with their ids and lengths). Call it first."
    )
    async def clinic_info(ctx: Context) -> CallToolResult:
        async def work(session: AsyncSession, clinic: Clinic, caller: Caller) -> Answer:
            types = await visit_type_service.list_all(session, is_active=True, limit=500, offset=0)
            now = clinic.now.astimezone(clinic.tz)
            body = {
                "timezone": app.state.settings.clinic_timezone,
                "today": clinic.today.isoformat(),
                "now": now.isoformat(timespec="seconds"),
                "visit_types": [
                    VisitTypeRead.model_validate(t).model_dump(mode="json") for t in types
                ],
            }
            return body, f"It is {now:%H:%M} on {speech.day(clinic.today)} at the clinic."

        return await run(ctx, None, work)

    @server.tool(description="Doctors taking appointments, filtered by any of the arguments.")
    async def find_doctors(
        ctx: Context,
        specialization: Text = None,
        language: Text = None,
        name: Annotated[str | None, Field(description="Part of the doctor's name.")] = None,
        consultation_type: Text = None,
        visit_type_id: VisitTypeId = None,
    ) -> CallToolResult:
        async def work(session: AsyncSession, clinic: Clinic, caller: Caller) -> Answer:
            filters = DoctorFilters(
                specialization=specialization,
                language=language,
                consultation_type=consultation_type,
                is_active=True,
                name=name,
                visit_type_id=given_id(visit_type_id, "visit_type_id"),
            )
            found = await doctor_service.list_doctors(session, filters, limit=50, offset=0)
            items = [DoctorRead.model_validate(d).model_dump(mode="json") for d in found]
            if not found:
                return _listed(items), "No doctor matches that."
            names = ", ".join(f"{d.name} ({d.specialization})" for d in found[:5])
            return _listed(items), f"Found {speech.count(len(found), 'doctor')}: {names}."

        return await run(
            ctx,
            None,
            work,
            specialization=specialization,
            language=language,
            name=name,
            consultation_type=consultation_type,
        )

    @server.tool(
        description="The earliest free slots across matching doctors (or one doctor), earliest "
        "first. Default range: today and the next 13 days."
    )
    async def find_earliest_slots(
        ctx: Context,
        specialization: Text = None,
        language: Text = None,
        consultation_type: Text = None,
        visit_type_id: VisitTypeId = None,
        doctor_id: Annotated[str | None, Field(description="Only this doctor.")] = None,
        start_date: FromDate = None,
        end_date: ToDate = None,
        limit: Annotated[int, Field(ge=1, le=50, description="How many slots (default 10).")] = 10,
    ) -> CallToolResult:
        async def work(session: AsyncSession, clinic: Clinic, caller: Caller) -> Answer:
            first, last = availability_service.resolve_range(
                clinic.today,
                None,
                given_date(start_date, "start_date"),
                given_date(end_date, "end_date"),
                default_days=14,
            )
            filters = DoctorFilters(
                specialization=specialization,
                language=language,
                consultation_type=consultation_type,
                is_active=True,
                visit_type_id=given_id(visit_type_id, "visit_type_id"),
                doctor_id=given_id(doctor_id, "doctor_id"),
            )
            found = await availability_service.earliest_slots(
                session, filters, first, last, limit, clinic, app.state.day_cache
            )
            items = [
                DoctorSlot(
                    doctor_id=f.doctor_id,
                    doctor_name=f.doctor_name,
                    date=f.date,
                    start_time=f.slot.start,
                    end_time=f.slot.end,
                ).model_dump(mode="json")
                for f in found
            ]
            if not found:
                return _listed(items), "There is no free slot in that range."
            best = found[0]
            sentence = f"{best.doctor_name} is free on {speech.when(best.date, best.slot.start)}"
            more = len(found) - 1
            sentence += f"; {speech.count(more, 'more slot')} found." if more else "."
            return _listed(items), sentence

        return await run(
            ctx,
            None,
            work,
            specialization=specialization,
            language=language,
            consultation_type=consultation_type,
        )

    @server.tool(description="One doctor's free slots, day by day (default: today).")
    async def get_availability(
        ctx: Context,
        doctor_id: DoctorId,
        start_date: FromDate = None,
        end_date: ToDate = None,
        visit_type_id: VisitTypeId = None,
    ) -> CallToolResult:
        async def work(session: AsyncSession, clinic: Clinic, caller: Caller) -> Answer:
            doctor = _required_id(doctor_id, "doctor_id")
            first, last = availability_service.resolve_range(
                clinic.today,
                None,
                given_date(start_date, "start_date"),
                given_date(end_date, "end_date"),
            )
            result = await availability_service.doctor_availability(
                session,
                doctor,
                first,
                last,
                clinic,
                app.state.day_cache,
                given_id(visit_type_id, "visit_type_id"),
            )
            body = AvailabilityRead(
                doctor_id=result.doctor_id,
                timezone=app.state.settings.clinic_timezone,
                slot_duration_minutes=result.slot_duration_minutes,
                days=[
                    DayAvailability(
                        date=d.date,
                        unavailable_reason=d.unavailable_reason,
                        slots=[Slot(start_time=s.start, end_time=s.end) for s in d.slots],
                    )
                    for d in result.days
                ],
            ).model_dump(mode="json")
            name = await doctor_name(session, doctor)
            free = [(d.date, s.start) for d in result.days for s in d.slots]
            if not free:
                return body, f"{name} has no free slot then."
            sentence = f"{name} is free on {speech.when(*free[0])}"
            more = len(free) - 1
            sentence += f", with {speech.count(more, 'more slot')} in the range." if more else "."
            return body, sentence

        return await run(ctx, None, work)

    @server.tool(
        description="Keep a slot for this caller while you take their details (default 300 "
        "seconds, at most 900); then book it with book_appointment(hold_id=...)."
    )
    async def hold_slot(
        ctx: Context,
        doctor_id: DoctorId,
        date: Date,
        start_time: StartTime,
        visit_type_id: VisitTypeId = None,
        ttl_seconds: Annotated[
            int, Field(description="How long to keep it, 30 to 900 seconds.")
        ] = TTL_DEFAULT_SECONDS,
        call_id: CallId = None,
    ) -> CallToolResult:
        async def work(session: AsyncSession, clinic: Clinic, caller: Caller) -> Answer:
            data = HoldCreate.model_validate(
                {
                    "doctor_id": doctor_id,
                    "date": date,
                    "start_time": start_time,
                    "visit_type_id": visit_type_id,
                    "ttl_seconds": ttl_seconds,
                }
            )
            held = await hold_service.create(session, data, caller, clinic)
            name = await doctor_name(session, held.doctor_id)
            until = held.expires_at.astimezone(clinic.tz)
            sentence = f"{speech.when(held.date, held.start_time)} with {name} is held"
            return held.model_dump(mode="json"), f"{sentence} until {until:%H:%M}."

        return await run(ctx, call_id, work)

    @server.tool(description="Let a held slot go at once, for a caller who does not book it.")
    async def release_hold(
        ctx: Context, hold_id: Annotated[str, Field(description="The hold's id.")]
    ) -> CallToolResult:
        async def work(session: AsyncSession, clinic: Clinic, caller: Caller) -> Answer:
            hold = await hold_service.release(session, _required_id(hold_id, "hold_id"), clinic)
            return hold.model_dump(mode="json"), "The slot is released."

        return await run(ctx, None, work)

    @server.tool(
        description="Book an appointment: the slot a hold keeps (hold_id), or doctor_id, date "
        "and start_time. Give patient_id for a known patient, else patient {name, "
        "mobile_number, email?, gender?, date_of_birth?}. Retrying with the same "
        "idempotency_key never books twice."
    )
    async def book_appointment(
        ctx: Context,
        hold_id: Annotated[str | None, Field(description="The hold to book.")] = None,
        doctor_id: Annotated[str | None, Field(description="Without a hold: the doctor.")] = None,
        date: Annotated[str | None, Field(description="Without a hold: YYYY-MM-DD.")] = None,
        start_time: Annotated[str | None, Field(description="Without a hold: HH:MM.")] = None,
        visit_type_id: VisitTypeId = None,
        patient_id: Annotated[str | None, Field(description="A known patient's id.")] = None,
        patient: Annotated[
            dict[str, Any] | None,
            Field(description="A caller not known yet: name and mobile_number at least."),
        ] = None,
        idempotency_key: Annotated[
            str | None, Field(description="Any unique string per booking attempt.")
        ] = None,
        call_id: CallId = None,
    ) -> CallToolResult:
        async def work(session: AsyncSession, clinic: Clinic, caller: Caller) -> Answer:
            sent = {
                "hold_id": hold_id,
                "doctor_id": doctor_id,
                "date": date,
                "start_time": start_time,
                "visit_type_id": visit_type_id,
                "patient_id": patient_id,
                "patient": patient,
            }
            data = AppointmentCreate.model_validate(
                {"source": "AI_CALLING_AGENT", **{k: v for k, v in sent.items() if v is not None}}
            )
            answer = await idempotency_service.once(
                session,
                caller.actor,
                idempotency_key,
                "book_appointment",
                data,
                lambda: booking_service.book(session, data, caller, clinic),
            )
            body = answer.body()
            booked = AppointmentRead.model_validate(body)
            name = await doctor_name(session, booked.doctor_id)
            return body, f"Booked with {name} on {speech.when(booked.date, booked.start_time)}."

        return await run(ctx, call_id, work, idempotency_key=idempotency_key)

    @server.tool(description="The patient with this mobile number, if the clinic knows them.")
    async def find_patient(ctx: Context, mobile_number: Mobile) -> CallToolResult:
        async def work(session: AsyncSession, clinic: Clinic, caller: Caller) -> Answer:
            found = await patient_service.get_patient_by_mobile(
                session, mobile_number, clinic.default_region
            )
            await access_log_service.record(session, caller, found.id, "record", "mcp find_patient")
            return PatientRead.model_validate(found).model_dump(mode="json"), (
                f"Found {found.name}."
            )

        return await run(ctx, None, work, mobile_number=mobile_number)

    @server.tool(
        description="A patient's appointments starting after now (any status); "
        "include_past adds the earlier ones. Give mobile_number or patient_id."
    )
    async def list_patient_appointments(
        ctx: Context,
        mobile_number: Annotated[str | None, Field(description="The patient's mobile.")] = None,
        patient_id: Annotated[str | None, Field(description="The patient's id.")] = None,
        include_past: Annotated[bool, Field(description="Also those already begun.")] = False,
    ) -> CallToolResult:
        async def work(session: AsyncSession, clinic: Clinic, caller: Caller) -> Answer:
            if (mobile_number is None) == (patient_id is None):
                raise InvalidInput("mobile_number", "give either mobile_number or patient_id")
            if mobile_number is not None:
                patient = await patient_service.get_patient_by_mobile(
                    session, mobile_number, clinic.default_region
                )
            else:
                patient = await patient_service.get_patient(
                    session, _required_id(patient_id or "", "patient_id")
                )
            filters = AppointmentFilters(
                start_date=None if include_past else clinic.today, limit=500
            )
            found = await appointment_service.list_appointments(
                session, filters, patient_id=patient.id
            )
            items = [
                AppointmentRead.model_validate(a)
                for a in found
                if include_past
                or dt.datetime.combine(a.date, a.start_time, tzinfo=clinic.tz) > clinic.now
            ]
            body = _listed([a.model_dump(mode="json") for a in items])
            if not items:
                return body, f"{patient.name} has no appointment coming up."
            first = items[0]
            name = await doctor_name(session, first.doctor_id)
            sentence = f"{patient.name} has {speech.count(len(items), 'appointment')}; the "
            sentence += f"first is {speech.when(first.date, first.start_time)} with {name}."
            return body, sentence

        return await run(ctx, None, work, mobile_number=mobile_number)

    @server.tool(description="Move an appointment to another slot of the same doctor.")
    async def reschedule_appointment(
        ctx: Context,
        appointment_id: Annotated[str, Field(description="The appointment's id.")],
        date: Date,
        start_time: StartTime,
        call_id: CallId = None,
    ) -> CallToolResult:
        async def work(session: AsyncSession, clinic: Clinic, caller: Caller) -> Answer:
            data = RescheduleRequest.model_validate({"date": date, "start_time": start_time})
            moved = await booking_service.reschedule(
                session,
                _required_id(appointment_id, "appointment_id"),
                data.date,
                data.start_time,
                caller,
                clinic,
            )
            body = AppointmentRead.model_validate(moved)
            name = await doctor_name(session, body.doctor_id)
            return body.model_dump(mode="json"), (
                f"Moved to {speech.when(body.date, body.start_time)} with {name}."
            )

        return await run(ctx, call_id, work)

    @server.tool(description="Cancel an appointment (cancelling it again changes nothing).")
    async def cancel_appointment(
        ctx: Context,
        appointment_id: Annotated[str, Field(description="The appointment's id.")],
        call_id: CallId = None,
    ) -> CallToolResult:
        async def work(session: AsyncSession, clinic: Clinic, caller: Caller) -> Answer:
            cancelled = await booking_service.cancel(
                session, _required_id(appointment_id, "appointment_id"), caller, clinic
            )
            body = AppointmentRead.model_validate(cancelled)
            return body.model_dump(mode="json"), (
                f"The appointment on {speech.when(body.date, body.start_time)} is cancelled."
            )

        return await run(ctx, call_id, work)
