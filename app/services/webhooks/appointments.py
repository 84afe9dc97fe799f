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

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.enums import AppointmentAction
from app.schemas.appointment import AppointmentRead
from app.schemas.reminder import ReminderDue
from app.services.webhooks.events import WebhookEvent, queue_messages_sql

EVENT_OF_ACTION: dict[AppointmentAction, WebhookEvent] = {
    AppointmentAction.CREATED: WebhookEvent.APPOINTMENT_BOOKED,
    AppointmentAction.RESCHEDULED: WebhookEvent.APPOINTMENT_RESCHEDULED,
    AppointmentAction.CANCELLED: WebhookEvent.APPOINTMENT_CANCELLED,
    AppointmentAction.CHECKED_IN: WebhookEvent.APPOINTMENT_CHECKED_IN,
    AppointmentAction.COMPLETED: WebhookEvent.APPOINTMENT_COMPLETED,
    AppointmentAction.NO_SHOW: WebhookEvent.APPOINTMENT_NO_SHOW,
    AppointmentAction.CONFIRMED: WebhookEvent.APPOINTMENT_CONFIRMED,
}


def _data_of(appointments: str, where: str = "TRUE") -> str:
    """A SELECT of each appointment's message `data` (and no patient: the appointment's
    messages carry none), for the rows of `appointments` (a table or CTE) that `where` keeps."""
    return f"""(SELECT jsonb_build_object(
                   'appointment_row', to_jsonb(a),
                   'doctor', jsonb_build_object('id', d.id, 'name', d.name)) AS data,
               CAST(NULL AS uuid) AS patient_id
          FROM {appointments} a JOIN doctors d ON d.id = a.doctor_id WHERE {where})"""


def reminders_due_sql(sent: str, tz: str) -> str:
    """CTEs that queue `appointment.reminder_due` for each reminder of `sent` (rows with its
    `appointment_id`, `offset_minutes` and `due_at`): the appointment's data, the patient to
    call and the reminder, whose instant `sent_data` shows in the clinic's zone `tz` (an SQL
    text expression). The messages carry the patient, so each delivery is access-logged."""
    rows = f"""(SELECT jsonb_build_object(
                   'appointment_row', to_jsonb(a),
                   'doctor', jsonb_build_object('id', d.id, 'name', d.name),
                   'patient', jsonb_build_object(
                       'id', p.id, 'name', p.name, 'mobile_number', p.mobile_number),
                   'reminder', jsonb_build_object(
                       'offset_minutes', s.offset_minutes, 'due_at', s.due_at,
                       'timezone', {tz})) AS data,
               p.id AS patient_id
          FROM {sent} s
          JOIN appointments a ON a.id = s.appointment_id
          JOIN doctors d ON d.id = a.doctor_id
          JOIN patients p ON p.id = a.patient_id)"""
    return queue_messages_sql(f"'{WebhookEvent.APPOINTMENT_REMINDER_DUE}'", rows)


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
    """A message's `data` as it is sent: an appointment's stored row in the REST shape (and a
    reminder's instant in the clinic's offset)."""
    if "appointment_row" not in data:
        return data
    sent = dict(data)
    row = sent.pop("appointment_row")
    if "reminder" in sent:
        reminder = dict(sent["reminder"])
        zone = ZoneInfo(reminder.pop("timezone"))
        due_at = dt.datetime.fromisoformat(reminder["due_at"]).astimezone(zone)
        sent["reminder"] = ReminderDue(
            offset_minutes=reminder["offset_minutes"], due_at=due_at
        ).model_dump(mode="json")
    return {"appointment": AppointmentRead.model_validate(row).model_dump(mode="json"), **sent}
