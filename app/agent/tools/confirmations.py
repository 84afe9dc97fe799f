"""Confirmations: the patient agreed to the time, and the day's list of patients to call who
have not yet. The list shows each patient's name and mobile, so it is written to the access
log, as REST writes every answer that shows a patient's record."""

from __future__ import annotations

from mcp.types import CallToolResult

from app import adapters
from app.agent import speech
from app.agent.answers import AgentDep, answer, failure, listed
from app.agent.arguments import AppointmentId, CallId, Date
from app.schemas.appointment import AppointmentRead
from app.schemas.arguments import given_date, one_line, required_id
from app.services import access_log_service, confirmation_service


async def confirm_appointment(
    agent: AgentDep, appointment_id: AppointmentId, call_id: CallId = None
) -> CallToolResult:
    """Record that the patient confirmed they will come at the appointment's time (confirming
    again changes nothing)."""
    try:
        one_line(call_id=call_id)
        async with agent.change(call_id) as change:
            confirmed = await adapters.confirm(
                change, required_id(appointment_id, "appointment_id")
            )
            body = AppointmentRead.model_validate(confirmed)
            when = speech.when(body.date, body.start_time)
            return answer(body.model_dump(mode="json"), f"The appointment on {when} is confirmed.")
    except Exception as exc:
        return failure(exc, call_id)


async def list_unconfirmed_appointments(agent: AgentDep, date: Date) -> CallToolResult:
    """The day's booked appointments whose patients have not confirmed yet, by time, each with
    the patient's id, name and mobile number to call."""
    try:
        async with agent.change() as change:
            day = given_date(date, "date")
            assert day is not None  # a required argument
            found = await confirmation_service.unconfirmed_on(change.session, day)
            items = []
            for to_call in found:
                patient = to_call.patient
                await access_log_service.record(
                    change.session,
                    change.caller,
                    patient.id,
                    "record",
                    "mcp list_unconfirmed_appointments",
                )
                items.append(
                    {
                        **AppointmentRead.model_validate(to_call.appointment).model_dump(
                            mode="json"
                        ),
                        "patient": {
                            "id": str(patient.id),
                            "name": patient.name,
                            "mobile_number": patient.mobile_number,
                        },
                    }
                )
            if not items:
                return answer(listed(items), f"Everyone on {speech.day(day)} has confirmed.")
            count = speech.count(len(items), "appointment")
            return answer(listed(items), f"{count} on {speech.day(day)} still to confirm.")
    except Exception as exc:
        return failure(exc, None)
