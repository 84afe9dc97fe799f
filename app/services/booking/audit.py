"""The append-only trail of appointment changes: who, when, from where, before and after.

One row per change, written in the change's own transaction by one statement shape
(`insert_events`), whether the change is the booking statement or an ORM update.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Appointment
from app.models.enums import AppointmentAction, AppointmentStatus
from app.schemas.common import format_clock
from app.services.context import Caller


def snapshot_of(
    doctor_id: uuid.UUID, day: dt.date, start: dt.time, end: dt.time, status: AppointmentStatus
) -> dict[str, Any]:
    """What the trail records of an appointment's state, before or after a change: whose
    visit it is (a move may change the doctor), when, and its status."""
    return {
        "doctor_id": str(doctor_id),
        "date": day.isoformat(),
        "start_time": format_clock(start),
        "end_time": format_clock(end),
        "status": str(status),
    }


def snapshot(appointment: Appointment) -> dict[str, Any]:
    return snapshot_of(
        appointment.doctor_id,
        appointment.date,
        appointment.start_time,
        appointment.end_time,
        appointment.status,
    )


def insert_events(changes: str) -> str:
    """An INSERT of one trail row for each row of `changes`: a FROM clause whose rows have the
    appointment's `id` and `source` and the event's `action`, `before`, `after`, `actor` and
    `correlation_id` as `event_values` gives them (the JSON as text)."""
    return f"""
        INSERT INTO appointment_events (appointment_id, action, before, after, actor, source,
                                        correlation_id)
        SELECT id, CAST(action AS appointment_action), CAST(before AS jsonb),
               CAST(after AS jsonb), actor, source, correlation_id
          FROM {changes}"""


def event_values(
    action: AppointmentAction,
    caller: Caller,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> dict[str, object]:
    return {
        "action": str(action),
        "before": None if before is None else json.dumps(before),
        "after": json.dumps(after),
        "actor": caller.actor,
        "correlation_id": caller.correlation_id,
    }


_RECORD = text(
    insert_events(
        """(SELECT id, source, CAST(:action AS text) AS action, CAST(:before AS text) AS before,
                   CAST(:after AS text) AS after, CAST(:actor AS text) AS actor,
                   CAST(:correlation_id AS text) AS correlation_id
              FROM appointments WHERE id = :appointment_id) AS changed"""
    )
)


async def record(
    session: AsyncSession,
    appointment: Appointment,
    action: AppointmentAction,
    caller: Caller,
    before: dict[str, Any] | None,
) -> None:
    """Add the trail row for a change just flushed to `appointment`."""
    await session.execute(
        _RECORD,
        {
            "appointment_id": appointment.id,
            **event_values(action, caller, before, snapshot(appointment)),
        },
    )
