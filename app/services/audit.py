"""The append-only trail of appointment changes: who, when, from where, before and after."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Appointment, AppointmentEvent
from app.models.enums import AppointmentAction, AppointmentSource, AppointmentStatus
from app.schemas.common import format_clock


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked for a change: the API key's name and the phone call's correlation id."""

    actor: str
    correlation_id: str | None = None


def snapshot_of(
    day: dt.date, start: dt.time, end: dt.time, status: AppointmentStatus
) -> dict[str, Any]:
    """What the trail records of an appointment's state, before or after a change."""
    return {
        "date": day.isoformat(),
        "start_time": format_clock(start),
        "end_time": format_clock(end),
        "status": str(status),
    }


def snapshot(appointment: Appointment) -> dict[str, Any]:
    return snapshot_of(
        appointment.date, appointment.start_time, appointment.end_time, appointment.status
    )


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
