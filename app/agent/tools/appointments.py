"""Booking, moving and cancelling: the same changes as REST's (`app.adapters`), so each is
counted in the metrics as REST counts it."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import Field

from app import adapters
from app.agent import speech
from app.agent.answers import AgentDep, answer, doctor_name, failure
from app.agent.arguments import AppointmentId, CallId, Date, StartTime, VisitTypeId
from app.schemas.appointment import AppointmentCreate, AppointmentRead, RescheduleRequest
from app.schemas.arguments import one_line, required_id


async def book_appointment(
    agent: AgentDep,
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
    """Book an appointment: the slot a hold keeps (hold_id), or doctor_id, date and start_time.
    Give patient_id for a known patient, else patient {name, mobile_number, email?, gender?,
    date_of_birth?}. Retrying with the same idempotency_key never books twice."""
    try:
        one_line(call_id=call_id, idempotency_key=idempotency_key)
        async with agent.change(call_id) as change:
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
            body = (await adapters.book(change, data, idempotency_key)).body()
            booked = AppointmentRead.model_validate(body)
            name = await doctor_name(change.session, booked.doctor_id)
            when = speech.when(booked.date, booked.start_time)
            return answer(body, f"Booked with {name} on {when}.")
    except Exception as exc:
        return failure(exc, call_id)


async def reschedule_appointment(
    agent: AgentDep,
    appointment_id: AppointmentId,
    date: Date,
    start_time: StartTime,
    doctor_id: Annotated[
        str | None,
        Field(description="Another doctor to see instead (one who offers the visit's type)."),
    ] = None,
    call_id: CallId = None,
) -> CallToolResult:
    """Move an appointment to another slot, of the same doctor or, with doctor_id, of
    another doctor. The visit keeps its length and visit type."""
    try:
        one_line(call_id=call_id)
        async with agent.change(call_id) as change:
            sent = {"date": date, "start_time": start_time, "doctor_id": doctor_id}
            data = RescheduleRequest.model_validate(
                {k: v for k, v in sent.items() if v is not None}
            )
            moved = await adapters.reschedule(
                change,
                required_id(appointment_id, "appointment_id"),
                data.date,
                data.start_time,
                data.doctor_id,
            )
            body = AppointmentRead.model_validate(moved)
            name = await doctor_name(change.session, body.doctor_id)
            when = speech.when(body.date, body.start_time)
            return answer(body.model_dump(mode="json"), f"Moved to {when} with {name}.")
    except Exception as exc:
        return failure(exc, call_id)


async def cancel_appointment(
    agent: AgentDep, appointment_id: AppointmentId, call_id: CallId = None
) -> CallToolResult:
    """Cancel an appointment (cancelling it again changes nothing)."""
    try:
        one_line(call_id=call_id)
        async with agent.change(call_id) as change:
            cancelled = await adapters.cancel(change, required_id(appointment_id, "appointment_id"))
            body = AppointmentRead.model_validate(cancelled)
            when = speech.when(body.date, body.start_time)
            return answer(body.model_dump(mode="json"), f"The appointment on {when} is cancelled.")
    except Exception as exc:
        return failure(exc, call_id)
