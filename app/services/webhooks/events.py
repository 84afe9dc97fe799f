"""The event types, and the outbox side of webhook messages: queue, hold back, wake, drop.

A message is one `webhook_deliveries` row per active endpoint subscribed to its type, and one
`webhook` outbox job per row, written in the caller's transaction by one statement: a change
that rolls back sends nothing, and the NOTIFY that wakes the dispatchers goes out only with
the commit. `queue_messages_sql` is that statement's core, for hand-written statements (the
booking statement) to embed; `queue_message` runs it for one message.
"""

from __future__ import annotations

import enum
import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.outbox import jobs


class WebhookEvent(enum.StrEnum):
    APPOINTMENT_BOOKED = "appointment.booked"
    APPOINTMENT_RESCHEDULED = "appointment.rescheduled"
    APPOINTMENT_CANCELLED = "appointment.cancelled"
    APPOINTMENT_CHECKED_IN = "appointment.checked_in"
    APPOINTMENT_COMPLETED = "appointment.completed"
    APPOINTMENT_NO_SHOW = "appointment.no_show"
    APPOINTMENT_CONFIRMED = "appointment.confirmed"
    APPOINTMENT_REMINDER_DUE = "appointment.reminder_due"
    WAITLIST_OFFERED = "waitlist.offered"
    WAITLIST_OFFER_EXPIRED = "waitlist.offer_expired"
    WEBHOOK_PING = "webhook.ping"


# The endpoints a message goes to: every active one subscribed to its type.
_SUBSCRIBED = "e.is_active AND m.event = ANY(e.events)"


def _messages_sql(event_sql: str, rows: str, endpoints: str, prefix: str) -> str:
    # Each message's job queues in its endpoint's lane: one endpoint, one job in flight.
    their_jobs = f"SELECT id, endpoint_id FROM {prefix}messages"
    return f"""
    {prefix}messages AS (
        INSERT INTO webhook_deliveries (endpoint_id, event, data, patient_id)
        SELECT e.id, m.event, m.data, m.patient_id
          FROM (SELECT {event_sql} AS event, r.data, r.patient_id FROM {rows} AS r) AS m
          JOIN webhook_endpoints e ON {endpoints}
        RETURNING id, endpoint_id
    ), {jobs.queue_jobs(jobs.WEBHOOK, their_jobs, prefix, laned=True)}"""


def queue_messages_sql(event_sql: str, rows: str, prefix: str = "webhook_") -> str:
    """CTEs that queue a message of type `event_sql` for each row of `rows`, to every active
    endpoint subscribed to that type, with their outbox jobs.

    `rows`: a CTE's or table's name, or a parenthesised SELECT, read as `r`, with the columns
    `data` (jsonb: the body's `data`) and `patient_id` (uuid or null: the patient the data
    carries, for the access log). `event_sql`: an SQL expression of type text that may read
    `r` (`'appointment.booked'`, or `r.event`). The CTEs are `{prefix}messages` (the delivery
    ids), `{prefix}queued` and `{prefix}woken`; as with `jobs.queue_jobs`, the statement must
    read `{prefix}woken`, or the dispatchers are not woken.
    """
    return _messages_sql(event_sql, rows, _SUBSCRIBED, prefix)


# Only the endpoint named, whatever its events (a ping); else every subscriber.
_NAMED_OR_SUBSCRIBED = (
    f"e.is_active AND CASE WHEN CAST(:endpoint_id AS uuid) IS NULL THEN {_SUBSCRIBED}"
    " ELSE e.id = CAST(:endpoint_id AS uuid) END"
)
_ONE_MESSAGE = _messages_sql("CAST(:event AS text)", "message", _NAMED_OR_SUBSCRIBED, "")
_QUEUE_ONE = text(
    f"""
    WITH message AS (
        SELECT CAST(:data AS jsonb) AS data, CAST(:patient_id AS uuid) AS patient_id
    ), {_ONE_MESSAGE}
    SELECT m.id, (SELECT count(*) FROM woken) AS woken FROM messages m
    """
)


async def queue_message(
    session: AsyncSession,
    event: WebhookEvent,
    data: dict[str, Any],
    patient_id: uuid.UUID | None = None,
    endpoint_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Queue `event` with `data`, in the caller's transaction, to every active endpoint
    subscribed to it (or to `endpoint_id` alone, whatever its events); the deliveries' ids.

    `patient_id`: the patient `data` carries, if any; each delivery is then written to that
    patient's access log when it is delivered.
    """
    rows = await session.execute(
        _QUEUE_ONE,
        {
            "event": event.value,
            "data": json.dumps(data, default=str),
            "patient_id": patient_id,
            "endpoint_id": endpoint_id,
        },
    )
    return [row.id for row in rows]


# An endpoint that is disabled keeps its messages `pending` with no job waiting: the
# dispatcher has nothing to claim for it (a job left waiting would be woken by any other
# endpoint's recovery, `jobs.wake_backlog`). Enabling it queues them again.
_HOLD_BACK = text(
    """
    DELETE FROM outbox_jobs j
     USING webhook_deliveries d
     WHERE d.endpoint_id = :endpoint_id AND d.status = 'pending'
       AND j.target = 'webhook' AND j.aggregate_id = d.id AND j.status = 'pending'
    """
)
_DUE_AGAIN = jobs.queue_jobs(
    jobs.WEBHOOK,
    "SELECT id, endpoint_id FROM webhook_deliveries"
    " WHERE endpoint_id = :endpoint_id AND status = 'pending' ORDER BY id",
    laned=True,
)
_WAKE = text(f"WITH {_DUE_AGAIN} SELECT count(*) FROM woken")
_DROP = text(
    """
    DELETE FROM outbox_jobs j
     USING webhook_deliveries d
     WHERE d.endpoint_id = :endpoint_id AND j.target = 'webhook' AND j.aggregate_id = d.id
    """
)


async def hold_back(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    """The endpoint was disabled: its pending messages wait, with no job, until it is enabled."""
    await session.execute(_HOLD_BACK, {"endpoint_id": endpoint_id})
    await session.execute(
        text(
            "UPDATE webhook_deliveries SET next_attempt_at = NULL"
            " WHERE endpoint_id = :endpoint_id AND status = 'pending'"
        ),
        {"endpoint_id": endpoint_id},
    )


async def wake(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    """The endpoint was enabled: every pending message of it is due now."""
    await session.execute(_WAKE, {"endpoint_id": endpoint_id})


async def drop(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    """The endpoint is being deleted: its messages' jobs go with their rows."""
    await session.execute(_DROP, {"endpoint_id": endpoint_id})
