"""The clinic's reminder policy (spec: "Confirmations and reminders")."""

from __future__ import annotations

from fastapi import APIRouter

from app.database import ReadSessionDep, SessionDep
from app.routes.deps import error_responses
from app.schemas.reminder import ReminderPolicyRead, ReminderPolicyWrite
from app.security import Role, allow
from app.services import reminder_service

router = APIRouter(prefix="/reminder-policy", tags=["reminders"])


@router.get("", dependencies=[allow(*Role)], responses=error_responses())
async def get_reminder_policy(session: ReadSessionDep) -> ReminderPolicyRead:
    """When reminders come due: minutes before the start, moved before the quiet hours."""
    return await reminder_service.get_policy(session)


@router.put("", dependencies=[allow(Role.ADMIN)], responses=error_responses())
async def set_reminder_policy(data: ReminderPolicyWrite, session: SessionDep) -> ReminderPolicyRead:
    """Change the policy (a field left out stays as it is). New bookings follow it at once;
    the `scheduled` reminders of appointments already booked are planned anew within
    seconds, by the dispatcher; `sent`, `skipped` and `void` ones stay."""
    return await reminder_service.set_policy(session, data)
