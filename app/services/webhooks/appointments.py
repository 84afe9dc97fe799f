"""The `appointment.*` messages: which change sends which, what their `data` holds, and how
one is queued in the change's own statement or transaction.

Their `data` is `{"appointment": <as GET /appointments/{id} answers just after the change>,
"doctor": {"id", "name"}}`. It is read from the database in the change's transaction (the
booking statement, or the unit of work that rescheduled, cancelled or took a desk step), so it
is the state that change committed, whatever comes after. It is stored as the appointment's row
(`to_jsonb`, under `appointment_row`) and turned into the REST shape when sent (`sent_data`):
the REST schema stays the one home of that shape, and the booking statement needs no second
copy of it in SQL.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.enums import AppointmentAction
from app.schemas.appointment import AppointmentRead
from app.services.webhooks.events import WebhookEvent, queue_messages_sql

EVENT_OF_ACTION: dict[AppointmentAction, WebhookEvent] = {
    AppointmentAction.CREATED: WebhookEvent.APPOINTMENT_BOOKED,
    AppointmentAction.RESCHEDULED: WebhookEvent.APPOINTMENT_RESCHEDULED,
    AppointmentAction.CANCELLED: WebhookEvent.APPOINTMENT_CANCELLED,
    AppointmentAction.CHECKED_IN: WebhookEvent.APPOINTMENT_CHECKED_IN,
    AppointmentAction.COMPLETED: WebhookEvent.APPOINTMENT_COMPLETED,
    AppointmentAction.NO_SHOW: WebhookEvent.APPOINTMENT_NO_SHOW,
}


def _data_of(appointments: str, where: str = "TRUE") -> str:
    """A SELECT of each appointment's message `data` (and no patient: the appointment's
    messages carry none), for the rows of `appointments` (a table or CTE) that `where` keeps."""
    return f"""(SELECT jsonb_build_object(
                   'appointment_row', to_jsonb(a),
                   'doctor', jsonb_build_object('id', d.id, 'name', d.name)) AS data,
               CAST(NULL AS uuid) AS patient_id
          FROM {appointments} a JOIN doctors d ON d.id = a.doctor_id WHERE {where})"""


def booked_sql(booked: str) -> str:
    """CTEs that queue `appointment.booked` for each appointment the CTE `booked` inserted
    (`queue_messages_sql`: the statement must read `webhook_woken`)."""
    return queue_messages_sql(f"'{WebhookEvent.APPOINTMENT_BOOKED}'", _data_of(booked))


_CHANGED = text(
    f"""
    WITH {
        queue_messages_sql(
            "CAST(:event AS text)", _data_of("appointments", "a.id = :appointment_id")
        )
    }
    SELECT count(*) FROM webhook_woken
    """
)


async def appointment_changed(
    session: AsyncSession, appointment_id: uuid.UUID, action: AppointmentAction
) -> None:
    """Queue the message of `action`, just flushed to the appointment, in the caller's
    transaction: a change that rolls back sends nothing."""
    await session.execute(
        _CHANGED, {"event": str(EVENT_OF_ACTION[action]), "appointment_id": appointment_id}
    )


def sent_data(data: dict[str, Any]) -> dict[str, Any]:
    """A message's `data` as it is sent: an appointment's stored row in the REST shape."""
    if "appointment_row" not in data:
        return data
    sent = dict(data)
    row = sent.pop("appointment_row")
    return {"appointment": AppointmentRead.model_validate(row).model_dump(mode="json"), **sent}
