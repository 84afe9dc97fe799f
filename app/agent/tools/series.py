"""A course of visits booked in one call: the same change as REST's `POST
/appointments/series` (`app.adapters.book_series`), all or none."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import Field

from app import adapters
from app.agent import speech
from app.agent.answers import AgentDep, answer, doctor_name, failure
from app.agent.arguments import CallId, DoctorId, StartTime, VisitTypeId
from app.schemas.arguments import one_line
from app.schemas.series import SeriesCreate, SeriesRead


async def book_series(
    agent: AgentDep,
    doctor_id: DoctorId,
    start_date: Annotated[str, Field(description="The first visit's date, YYYY-MM-DD.")],
    start_time: StartTime,
    recurrence: Annotated[
        dict[str, Any],
        Field(
            description="How it repeats: {frequency: daily | weekly, interval?: 1-4 (default "
            "1), and either count: 2-52 or until: YYYY-MM-DD}."
        ),
    ],
    visit_type_id: VisitTypeId = None,
    patient_id: Annotated[str | None, Field(description="A known patient's id.")] = None,
    patient: Annotated[
        dict[str, Any] | None,
        Field(description="A caller not known yet: name and mobile_number at least."),
    ] = None,
    confirmed: Annotated[
        bool | None, Field(description="True when the caller has agreed to these times.")
    ] = None,
    idempotency_key: Annotated[
        str | None, Field(description="Any unique string per booking attempt.")
    ] = None,
    call_id: CallId = None,
) -> CallToolResult:
    """Book a course of visits (physiotherapy, therapy) at the same time every day or week:
    every visit or none. If any cannot be booked, nothing is booked and each such visit is
    listed in conflicts with its reason and nearby free slots. Give patient_id for a known
    patient, else patient {name, mobile_number, ...}. Retrying with the same idempotency_key
    never books twice."""
    try:
        one_line(call_id=call_id, idempotency_key=idempotency_key)
        async with agent.change(call_id) as change:
            sent = {
                "doctor_id": doctor_id,
                "start_date": start_date,
                "start_time": start_time,
                "recurrence": recurrence,
                "visit_type_id": visit_type_id,
                "patient_id": patient_id,
                "patient": patient,
                "confirmed": confirmed,
            }
            data = SeriesCreate.model_validate(
                {"source": "AI_CALLING_AGENT", **{k: v for k, v in sent.items() if v is not None}}
            )
            body = (await adapters.book_series(change, data, idempotency_key)).body()
            booked = SeriesRead.model_validate(body)
            name = await doctor_name(change.session, data.doctor_id)
            first, last = booked.appointments[0], booked.appointments[-1]
            return answer(
                body,
                f"Booked {speech.count(len(booked.appointments), 'visit')} with {name}, from "
                f"{speech.when(first.date, first.start_time)} to "
                f"{speech.when(last.date, last.start_time)}.",
            )
    except Exception as exc:
        return failure(exc, call_id)
