"""The clinic: its clock and visit types, and its doctors."""

from __future__ import annotations

from typing import Annotated

from mcp.types import CallToolResult
from pydantic import Field

from app.agent import speech
from app.agent.answers import AgentDep, answer, failure, listed
from app.agent.arguments import Text, VisitTypeId
from app.schemas.arguments import one_line
from app.schemas.doctor import DoctorRead
from app.schemas.visit_type import VisitTypeRead
from app.services import doctor_service, visit_type_service
from app.services.doctor_filters import DoctorFilters


async def clinic_info(agent: AgentDep) -> CallToolResult:
    """The clinic's time zone, today's date, the time now and the visit types it offers (with
    their ids and lengths). Call it first."""
    try:
        async with agent.change() as change:
            clinic = change.clinic
            types = await visit_type_service.list_all(
                change.session, is_active=True, limit=500, offset=0
            )
            now = clinic.now.astimezone(clinic.tz)
            body = {
                "timezone": agent.settings.clinic_timezone,
                "today": clinic.today.isoformat(),
                "now": now.isoformat(timespec="seconds"),
                "visit_types": [
                    VisitTypeRead.model_validate(t).model_dump(mode="json") for t in types
                ],
            }
            return answer(body, f"It is {now:%H:%M} on {speech.day(clinic.today)} at the clinic.")
    except Exception as exc:
        return failure(exc, None)


async def find_doctors(
    agent: AgentDep,
    specialization: Text = None,
    language: Text = None,
    name: Annotated[str | None, Field(description="Part of the doctor's name.")] = None,
    consultation_type: Text = None,
    visit_type_id: VisitTypeId = None,
) -> CallToolResult:
    """Doctors taking appointments, filtered by any of the arguments."""
    try:
        one_line(
            specialization=specialization,
            language=language,
            name=name,
            consultation_type=consultation_type,
        )
        async with agent.change() as change:
            filters = DoctorFilters.bookable(
                specialization=specialization,
                language=language,
                consultation_type=consultation_type,
                visit_type_id=visit_type_id,
                name=name,
            )
            found = await doctor_service.list_doctors(change.session, filters, limit=50, offset=0)
            items = listed([DoctorRead.model_validate(d).model_dump(mode="json") for d in found])
            if not found:
                return answer(items, "No doctor matches that.")
            names = ", ".join(f"{d.name} ({d.specialization})" for d in found[:5])
            return answer(items, f"Found {speech.count(len(found), 'doctor')}: {names}.")
    except Exception as exc:
        return failure(exc, None)
