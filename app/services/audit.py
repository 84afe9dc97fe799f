"""The append-only trail of appointment changes: who, when, from where, before and after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Appointment, AppointmentEvent
from app.models.enums import AppointmentAction, AppointmentSource
from app.schemas.common import format_clock


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked for a change: the API key's name and the phone call's correlation id."""

    actor: str
    correlation_id: str | None = None


def snapshot(appointment: Appointment) -> dict[str, Any]:
    return {
        "date": appointment.date.isoformat(),
        "start_time": format_clock(appointment.start_time),
        "end_time": format_clock(appointment.end_time),
        "status": str(appointment.status),
    }


def record(
    session: AsyncSession,
    appointment: Appointment,
    action: AppointmentAction,
    caller: Caller,
    before: dict[str, Any] | None,
    source: AppointmentSource | None = None,
) -> None:
    session.add(
        AppointmentEvent(
            appointment_id=appointment.id,
            action=action,
            before=before,
            after=snapshot(appointment),
            actor=caller.actor,
            source=source or appointment.source,
            correlation_id=caller.correlation_id,
        )
    )
