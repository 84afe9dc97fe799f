"""Free slots, and holds that keep one while the caller gives their details."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from mcp.types import CallToolResult
from pydantic import Field

from app.adapters import Change
from app.agent import speech
from app.agent.answers import Agent, AgentDep, answer, doctor_name, failure, listed
from app.agent.arguments import (
    CallId,
    Date,
    DoctorId,
    EarliestTime,
    FromDate,
    LatestTime,
    StartTime,
    Text,
    ToDate,
    VisitTypeId,
)
from app.schemas.appointment import AvailabilityRead, DayAvailability, DoctorSlot, Slot
from app.schemas.arguments import given_date, given_id, given_time, one_line, required_id
from app.schemas.hold import TTL_DEFAULT_SECONDS, HoldCreate
from app.services import availability_service, hold_service
from app.services.availability_service import DoctorAvailability
from app.services.context import Clinic
from app.services.doctor_filters import DoctorFilters


def _dates(
    clinic: Clinic, start_date: str | None, end_date: str | None, default_days: int = 1
) -> tuple[dt.date, dt.date]:
    """The range asked for, by the REST rules (default: from today, `default_days` long)."""
    return availability_service.resolve_range(
        clinic.today,
        None,
        given_date(start_date, "start_date"),
        given_date(end_date, "end_date"),
        default_days=default_days,
    )


async def find_earliest_slots(
    agent: AgentDep,
    specialization: Text = None,
    language: Text = None,
    consultation_type: Text = None,
    visit_type_id: VisitTypeId = None,
    doctor_id: Annotated[str | None, Field(description="Only this doctor.")] = None,
    start_date: FromDate = None,
    end_date: ToDate = None,
    limit: Annotated[int, Field(ge=1, le=50, description="How many slots (default 10).")] = 10,
    earliest_time: EarliestTime = None,
    latest_time: LatestTime = None,
) -> CallToolResult:
    """The earliest free slots across matching doctors (or one doctor), earliest first.
    Default range: today and the next 13 days. earliest_time and latest_time keep to a part
    of each day."""
    try:
        one_line(
            specialization=specialization,
            language=language,
            consultation_type=consultation_type,
        )
        times = availability_service.resolve_times(
            given_time(earliest_time, "earliest_time"), given_time(latest_time, "latest_time")
        )
        async with agent.change() as change:
            first, last = _dates(change.clinic, start_date, end_date, default_days=14)
            filters = DoctorFilters.bookable(
                specialization=specialization,
                language=language,
                consultation_type=consultation_type,
                visit_type_id=visit_type_id,
                doctor_id=doctor_id,
            )
            found = await availability_service.earliest_slots(
                change.session, filters, first, last, limit, change.clinic, agent.day_cache, times
            )
            items = listed(
                [
                    DoctorSlot(
                        doctor_id=f.doctor_id,
                        doctor_name=f.doctor_name,
                        date=f.date,
                        start_time=f.slot.start,
                        end_time=f.slot.end,
                    ).model_dump(mode="json")
                    for f in found
                ]
            )
            if not found:
                return answer(items, "There is no free slot in that range.")
            best, more = found[0], len(found) - 1
            sentence = f"{best.doctor_name} is free on {speech.when(best.date, best.slot.start)}"
            sentence += f"; {speech.count(more, 'more slot')} found." if more else "."
            return answer(items, sentence)
    except Exception as exc:
        return failure(exc, None)


# How far past the days asked `get_availability` looks for the doctor's next free slot.
NEXT_SLOT_DAYS = 56


async def get_availability(
    agent: AgentDep,
    doctor_id: DoctorId,
    start_date: FromDate = None,
    end_date: ToDate = None,
    visit_type_id: VisitTypeId = None,
) -> CallToolResult:
    """One doctor's free slots, day by day (default: today). With none free, the sentence
    says why and names the doctor's first free slot after those days."""
    try:
        async with agent.change() as change:
            doctor = required_id(doctor_id, "doctor_id")
            visit_type = given_id(visit_type_id, "visit_type_id")
            first, last = _dates(change.clinic, start_date, end_date)
            result = await availability_service.doctor_availability(
                change.session, doctor, first, last, change.clinic, agent.day_cache, visit_type
            )
            body = AvailabilityRead(
                doctor_id=result.doctor_id,
                timezone=agent.settings.clinic_timezone,
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
            name = await doctor_name(change.session, doctor)
            free = [(d.date, s.start) for d in result.days for s in d.slots]
            if not free:
                sentence = await _none_free(agent, change, name, result, visit_type)
                return answer(body, sentence)
            more = len(free) - 1
            sentence = f"{name} is free on {speech.when(*free[0])}"
            sentence += f", with {speech.count(more, 'more slot')} in the range." if more else "."
            return answer(body, sentence)
    except Exception as exc:
        return failure(exc, None)


async def _none_free(
    agent: Agent,
    change: Change,
    name: str,
    result: DoctorAvailability,
    visit_type: uuid.UUID | None,
) -> str:
    """Why the days asked offer nothing, and the doctor's first free slot after them."""
    first, last = result.days[0].date, result.days[-1].date
    why = speech.why_not([d.unavailable_reason for d in result.days])
    sentence = f"{name} has no free slot {speech.span(first, last)}: {why}."
    after = await availability_service.earliest_slots(
        change.session,
        DoctorFilters(doctor_id=result.doctor_id, is_active=True, visit_type_id=visit_type),
        last + dt.timedelta(days=1),
        last + dt.timedelta(days=NEXT_SLOT_DAYS),
        1,
        change.clinic,
        agent.day_cache,
    )
    if not after:
        return f"{sentence} There is none in the {NEXT_SLOT_DAYS // 7} weeks after that either."
    next_free = speech.when(after[0].date, after[0].slot.start)
    return f"{sentence} The first free slot after that is {next_free}."


async def hold_slot(
    agent: AgentDep,
    doctor_id: DoctorId,
    date: Date,
    start_time: StartTime,
    visit_type_id: VisitTypeId = None,
    ttl_seconds: Annotated[
        int, Field(description="How long to keep it, 30 to 900 seconds.")
    ] = TTL_DEFAULT_SECONDS,
    call_id: CallId = None,
) -> CallToolResult:
    """Keep a slot for this caller while you take their details (default 300 seconds, at most
    900); then book it with book_appointment(hold_id=...)."""
    try:
        one_line(call_id=call_id)
        async with agent.change(call_id) as change:
            data = HoldCreate.model_validate(
                {
                    "doctor_id": doctor_id,
                    "date": date,
                    "start_time": start_time,
                    "visit_type_id": visit_type_id,
                    "ttl_seconds": ttl_seconds,
                }
            )
            held = await hold_service.create(change.session, data, change.caller, change.clinic)
            name = await doctor_name(change.session, held.doctor_id)
            until = held.expires_at.astimezone(change.clinic.tz)
            sentence = f"{speech.when(held.date, held.start_time)} with {name} is held"
            return answer(held.model_dump(mode="json"), f"{sentence} until {until:%H:%M}.")
    except Exception as exc:
        return failure(exc, call_id)


async def release_hold(
    agent: AgentDep, hold_id: Annotated[str, Field(description="The hold's id.")]
) -> CallToolResult:
    """Let a held slot go at once, for a caller who does not book it."""
    try:
        async with agent.change() as change:
            hold = await hold_service.release(
                change.session, required_id(hold_id, "hold_id"), change.clinic
            )
            return answer(hold.model_dump(mode="json"), "The slot is released.")
    except Exception as exc:
        return failure(exc, None)
