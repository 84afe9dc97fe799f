"""The callers the clinic knows, and their appointments. Showing a patient's record is written
to the access log, as REST does."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from mcp.types import CallToolResult
from pydantic import Field

from app.agent import speech
from app.agent.answers import AgentDep, answer, doctor_name, failure, listed
from app.agent.arguments import CallId, Mobile
from app.errors import InvalidInput
from app.schemas.appointment import AppointmentRead
from app.schemas.arguments import one_line, required_id
from app.schemas.patient import PatientRead, PatientUpdate
from app.services import access_log_service, appointment_service, patient_service
from app.services.appointment_service import AppointmentFilters


async def find_patient(agent: AgentDep, mobile_number: Mobile) -> CallToolResult:
    """The patient with this mobile number, if the clinic knows them."""
    try:
        one_line(mobile_number=mobile_number)
        async with agent.change() as change:
            found = await patient_service.get_patient_by_mobile(
                change.session, mobile_number, change.clinic.default_region
            )
            await access_log_service.record(
                change.session, change.caller, found.id, "record", "mcp find_patient"
            )
            body = PatientRead.model_validate(found).model_dump(mode="json")
            return answer(body, f"Found {found.name}.")
    except Exception as exc:
        return failure(exc, None)


async def list_patient_appointments(
    agent: AgentDep,
    mobile_number: Annotated[str | None, Field(description="The patient's mobile.")] = None,
    patient_id: Annotated[str | None, Field(description="The patient's id.")] = None,
    include_past: Annotated[bool, Field(description="Also those already begun.")] = False,
) -> CallToolResult:
    """A patient's appointments starting after now (any status); include_past adds the earlier
    ones. Give mobile_number or patient_id."""
    try:
        one_line(mobile_number=mobile_number)
        async with agent.change() as change:
            session, clinic = change.session, change.clinic
            if (mobile_number is None) == (patient_id is None):
                raise InvalidInput("mobile_number", "give either mobile_number or patient_id")
            if mobile_number is not None:
                patient = await patient_service.get_patient_by_mobile(
                    session, mobile_number, clinic.default_region
                )
            else:
                patient = await patient_service.get_patient(
                    session, required_id(patient_id or "", "patient_id")
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
            body = listed([a.model_dump(mode="json") for a in items])
            if not items:
                return answer(body, f"{patient.name} has no appointment coming up.")
            first = items[0]
            name = await doctor_name(session, first.doctor_id)
            sentence = f"{patient.name} has {speech.count(len(items), 'appointment')}; the "
            sentence += f"first is {speech.when(first.date, first.start_time)} with {name}."
            return answer(body, sentence)
    except Exception as exc:
        return failure(exc, None)


async def update_patient(
    agent: AgentDep,
    patient_id: Annotated[str, Field(description="The patient's id (from find_patient).")],
    name: Annotated[str | None, Field(description="The name, as the caller spells it.")] = None,
    email: Annotated[str | None, Field(description="An e-mail address.")] = None,
    gender: Annotated[str | None, Field(description="As the caller says it.")] = None,
    date_of_birth: Annotated[str | None, Field(description="YYYY-MM-DD.")] = None,
    mobile_number: Annotated[
        str | None, Field(description="A new mobile number, with its country code.")
    ] = None,
    call_id: CallId = None,
) -> CallToolResult:
    """Correct a known patient's details: only the arguments given change."""
    try:
        one_line(call_id=call_id)
        async with agent.change(call_id) as change:
            sent = {
                "name": name,
                "email": email,
                "gender": gender,
                "date_of_birth": date_of_birth,
                "mobile_number": mobile_number,
            }
            data = PatientUpdate.model_validate({k: v for k, v in sent.items() if v is not None})
            patient = await patient_service.update_patient(
                change.session,
                required_id(patient_id, "patient_id"),
                data,
                change.clinic.default_region,
            )
            await access_log_service.record(
                change.session, change.caller, patient.id, "record", "mcp update_patient"
            )
            body = PatientRead.model_validate(patient).model_dump(mode="json")
            return answer(body, f"{patient.name}'s details are updated.")
    except Exception as exc:
        return failure(exc, call_id)
