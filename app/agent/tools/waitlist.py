"""The waitlist: a caller who wants an earlier slot than any free now joins it, and answers
the slot held for them when the clinic calls back (`waitlist.offered`). The same services as
REST's `/waitlist/` routes; bookings through an offer have source `AI_CALLING_AGENT`."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import Field

from app.agent import speech
from app.agent.answers import AgentDep, answer, failure
from app.agent.arguments import CallId, Mobile, VisitTypeId
from app.models.enums import AppointmentSource
from app.schemas.arguments import one_line, required_id
from app.schemas.waitlist import WaitlistEntryCreate
from app.services import patient_service, waitlist_service

EntryId = Annotated[str, Field(description="The waitlist entry's id (from join_waitlist).")]


async def join_waitlist(
    agent: AgentDep,
    start_date: Annotated[str, Field(description="First acceptable date, YYYY-MM-DD.")],
    end_date: Annotated[
        str, Field(description="Last acceptable date, YYYY-MM-DD (at most 90 days ahead).")
    ],
    patient_id: Annotated[str | None, Field(description="A known patient's id.")] = None,
    mobile_number: Annotated[
        Mobile | None, Field(description="The caller's mobile (with name, if new).")
    ] = None,
    name: Annotated[str | None, Field(description="A new caller's name.")] = None,
    doctor_id: Annotated[str | None, Field(description="One doctor only.")] = None,
    specialization: Annotated[str | None, Field(description="Any doctor of it.")] = None,
    language: Annotated[str | None, Field(description="A language the doctor speaks.")] = None,
    consultation_type: Annotated[str | None, Field(description="e.g. in_person.")] = None,
    visit_type_id: VisitTypeId = None,
    weekdays: Annotated[
        list[str] | None, Field(description="Acceptable weekdays, lowercase ('monday').")
    ] = None,
    times: Annotated[
        list[dict[str, str]] | None,
        Field(description="Acceptable times of day: [{start: HH:MM, end: HH:MM}]."),
    ] = None,
    appointment_id: Annotated[
        str | None,
        Field(description="The caller's own upcoming appointment they want earlier instead."),
    ] = None,
    notes: Annotated[str | None, Field(description="Anything the clinic should know.")] = None,
    call_id: CallId = None,
) -> CallToolResult:
    """Put a caller on the waiting list for a slot that comes free: a doctor or criteria,
    dates, and optionally weekdays and times; or an earlier slot for their appointment
    (appointment_id). The caller is known by patient_id, or by mobile_number (with name if
    new). When a matching slot frees, it is held for them and the clinic is told to call."""
    try:
        one_line(mobile_number=mobile_number, call_id=call_id)
        async with agent.change(call_id) as change:
            sent: dict[str, Any] = {
                "patient_id": patient_id,
                "doctor_id": doctor_id,
                "specialization": specialization,
                "language": language,
                "consultation_type": consultation_type,
                "visit_type_id": visit_type_id,
                "start_date": start_date,
                "end_date": end_date,
                "weekdays": weekdays,
                "times": times,
                "appointment_id": appointment_id,
                "notes": notes,
                "call_id": call_id,
            }
            if mobile_number is not None and name is None and patient_id is None:
                # A known caller needs no name: found by any spelling of their number.
                known = await patient_service.get_patient_by_mobile(
                    change.session, mobile_number, change.clinic.default_region
                )
                sent["patient_id"] = str(known.id)
            elif mobile_number is not None or name is not None:
                sent["patient"] = {"name": name, "mobile_number": mobile_number}
            data = WaitlistEntryCreate.model_validate(
                {key: value for key, value in sent.items() if value is not None}
            )
            entry = await waitlist_service.create(
                change.session, data, change.caller, change.clinic
            )
            sentence = f"On the waiting list from {speech.day(entry.start_date)}"
            sentence += f" to {speech.day(entry.end_date)}."
            return answer(entry.model_dump(mode="json"), sentence)
    except Exception as exc:
        return failure(exc, call_id)


async def accept_waitlist_offer(
    agent: AgentDep,
    entry_id: EntryId,
    idempotency_key: Annotated[
        str | None, Field(description="Any unique string per attempt; a retry never books twice.")
    ] = None,
    call_id: CallId = None,
) -> CallToolResult:
    """The caller takes the slot held for them: it is booked (or their appointment moved to
    it). If it was taken meanwhile, the entry waits again and the nearest free slots are
    given."""
    try:
        one_line(idempotency_key=idempotency_key, call_id=call_id)
        async with agent.change(call_id) as change:
            accepted = await waitlist_service.accept(
                change.session,
                required_id(entry_id, "entry_id"),
                AppointmentSource.AI_CALLING_AGENT,
                change.caller,
                change.clinic,
                idempotency_key,
            )
            if accepted.counted is not None:
                change.counted.append(accepted.counted)
        body = accepted.settled().body()
        return answer(body, "Booked: the slot held for them is theirs.")
    except Exception as exc:
        return failure(exc, call_id)


async def decline_waitlist_offer(
    agent: AgentDep, entry_id: EntryId, call_id: CallId = None
) -> CallToolResult:
    """The caller does not want the slot held for them: it goes to the next patient waiting,
    and they stay on the list for another."""
    try:
        one_line(call_id=call_id)
        async with agent.change(call_id) as change:
            entry = await waitlist_service.decline(
                change.session, required_id(entry_id, "entry_id"), change.clinic
            )
            return answer(entry.model_dump(mode="json"), "Declined; they stay on the list.")
    except Exception as exc:
        return failure(exc, call_id)
