"""The statements of a booking, on the bare asyncpg driver inside the booking's transaction.

Booking is the hottest write. Each step is one round trip with no ORM in between (see
BENCHMARKS.md): lock the doctor, find or create the patient, read the day's blocks
(`schedule_queries.load_blocks`), then one statement that inserts the appointment, its audit
row and, when the calendar is mirrored, its outbox job and the dispatchers' wake-up.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import asyncpg

from app.errors import NotFound
from app.models.enums import (
    AppointmentAction,
    AppointmentSource,
    AppointmentStatus,
    CalendarSyncStatus,
)
from app.services import outbox
from app.services.audit import Caller, snapshot_of
from app.services.availability_service import Schedule, SlotTime

_LOCK_DOCTOR = """
    SELECT working_days, working_hours, slot_duration_minutes, is_active
      FROM doctors WHERE id = $1 FOR UPDATE
"""


async def lock_doctor(driver: asyncpg.Connection, doctor_id: uuid.UUID) -> Schedule:
    """Take the doctor's row lock (changes for one doctor run one at a time); its schedule."""
    row = await driver.fetchrow(_LOCK_DOCTOR, doctor_id)
    if row is None:
        raise NotFound(f"Doctor {doctor_id} was not found.")
    return Schedule.from_doctor_fields(
        row["working_days"], row["working_hours"], row["slot_duration_minutes"], row["is_active"]
    )


# The partial index's predicate must be repeated literally for PostgreSQL to infer it.
_INSERT_BOOKING = f"""
    WITH booked AS (
        INSERT INTO appointments (id, doctor_id, patient_id, date, start_time, end_time,
                                  status, source, calendar_sync_status)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (doctor_id, date, start_time) WHERE status IN ('BOOKED', 'RESCHEDULED')
        DO NOTHING
        RETURNING *
    ), audited AS (
        INSERT INTO appointment_events (appointment_id, action, after, actor, source,
                                        correlation_id)
        SELECT id, $10, $11::jsonb, $12, source, $13 FROM booked
        RETURNING 1
    ), queued AS (
        INSERT INTO outbox_jobs (target, aggregate_id)
        SELECT '{outbox.CALENDAR}', id FROM booked WHERE $14::boolean
        {outbox.ABSORB_PENDING}
        RETURNING 1
    ), woken AS (
        SELECT pg_notify('{outbox.NOTIFY_CHANNEL}', '{outbox.CALENDAR}') FROM queued
    )
    SELECT b.*, (SELECT count(*) FROM audited) AS audited, (SELECT count(*) FROM woken) AS woken
      FROM booked b
"""


async def insert_booking(
    driver: asyncpg.Connection,
    *,
    doctor_id: uuid.UUID,
    patient_id: uuid.UUID,
    day: dt.date,
    slot: SlotTime,
    source: AppointmentSource,
    caller: Caller,
    mirror_to_calendar: bool,
) -> dict[str, Any] | None:
    """The new appointment's row, or None when an active one already starts in that slot.

    Its audit row and outbox job are written by the same statement, so all three commit or
    roll back together; NOTIFY is delivered at commit only.
    """
    status = AppointmentStatus.BOOKED
    row = await driver.fetchrow(
        _INSERT_BOOKING,
        uuid.uuid4(),
        doctor_id,
        patient_id,
        day,
        slot.start,
        slot.end,
        status,
        source,
        CalendarSyncStatus.PENDING if mirror_to_calendar else CalendarSyncStatus.DISABLED,
        AppointmentAction.CREATED,
        json.dumps(snapshot_of(day, slot.start, slot.end, status)),
        caller.actor,
        caller.correlation_id,
        mirror_to_calendar,
    )
    return None if row is None else dict(row)
