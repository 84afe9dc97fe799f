"""The booking's write: one statement, applied only if the doctor's day is as it was read.

A booking reads the doctor's day (`schedule_queries.load_doctor_calendar`, which returns the
doctor's `schedule_version`), lets the availability engine decide, then sends this statement.
It locks the doctor's row only if the version is unchanged, so the engine's decision still
holds, and then writes everything at once: the patient (when new), the appointment, its audit
row and, when the calendar is mirrored, its outbox job and the dispatchers' wake-up.

Why the version check is enough: every change to a doctor's availability updates the doctor's
row through a trigger (migration 0004). A change committed after the read shows up as a new
version; one still in flight holds the row lock, so this statement waits for it and then sees
the new version (PostgreSQL re-checks a locked row's condition after the wait). Either way the
statement writes nothing and the caller re-reads. The partial unique index on active slots
stays as the last line of defence.

Two round trips and no explicit transaction: the statement commits on its own, durably,
before the caller answers.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
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
from app.services.availability_service import SlotTime

_LOCK_DOCTOR = "SELECT id FROM doctors WHERE id = $1 FOR UPDATE"


async def lock_doctor(driver: asyncpg.Connection, doctor_id: uuid.UUID) -> None:
    """Hold the doctor's row lock until the transaction ends: nothing else changes the day."""
    if await driver.fetchval(_LOCK_DOCTOR, doctor_id) is None:
        raise NotFound(f"Doctor {doctor_id} was not found.")


@dataclass(frozen=True, slots=True)
class NewPatient:
    """A caller not yet known by id: found by the normalised mobile, or created."""

    name: str
    mobile: str
    email: str | None
    gender: str | None
    date_of_birth: dt.date | None


# The partial index's predicate must be repeated literally for PostgreSQL to infer it.
_BOOK = f"""
    WITH doctor AS (
        SELECT id FROM doctors WHERE id = $2 AND schedule_version = $3 FOR UPDATE
    ), new_patient AS (
        INSERT INTO patients (id, name, mobile_number, email, gender, date_of_birth)
        SELECT $15::uuid, $16::varchar, $17::varchar, $18::varchar, $19::varchar, $20::date
          FROM doctor WHERE $17 IS NOT NULL
        ON CONFLICT (mobile_number) DO NOTHING
        RETURNING id
    ), patient AS (
        SELECT id FROM new_patient
        UNION ALL
        SELECT id FROM patients WHERE id = $4 OR mobile_number = $17
        LIMIT 1
    ), booked AS (
        INSERT INTO appointments (id, doctor_id, patient_id, date, start_time, end_time,
                                  status, source, calendar_sync_status)
        SELECT $1, doctor.id, patient.id, $5, $6, $7, $8, $9, $10 FROM doctor, patient
        ON CONFLICT (doctor_id, date, start_time) WHERE status IN ('BOOKED', 'RESCHEDULED')
        DO NOTHING
        RETURNING *
    ), audited AS (
        INSERT INTO appointment_events (appointment_id, action, after, actor, source,
                                        correlation_id)
        SELECT id, $11, $12::jsonb, $13, source, $14 FROM booked
        RETURNING 1
    ), queued AS (
        INSERT INTO outbox_jobs (target, aggregate_id)
        SELECT '{outbox.CALENDAR}', id FROM booked WHERE $21::boolean
        {outbox.ABSORB_PENDING}
        RETURNING 1
    ), woken AS (
        SELECT pg_notify('{outbox.NOTIFY_CHANNEL}', '{outbox.CALENDAR}') FROM queued
    )
    SELECT (SELECT count(*) FROM doctor) AS current, (SELECT id FROM patient) AS found_patient,
           (SELECT count(*) FROM audited) AS audited, (SELECT count(*) FROM woken) AS woken,
           booked.*
      FROM (SELECT 1) AS one LEFT JOIN booked ON true
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """`appointment` when booked. Otherwise `stale` (the day changed since it was read, or a
    first booking for the same new mobile raced this one): read again; `patient_missing`: no
    patient with that id; neither: an active appointment already starts in that slot."""

    appointment: dict[str, Any] | None
    stale: bool = False
    patient_missing: bool = False


async def book_if_current(
    driver: asyncpg.Connection,
    *,
    doctor_id: uuid.UUID,
    version: int,
    patient_id: uuid.UUID | None,
    new_patient: NewPatient | None,
    day: dt.date,
    slot: SlotTime,
    source: AppointmentSource,
    caller: Caller,
    mirror_to_calendar: bool,
) -> Outcome:
    status = AppointmentStatus.BOOKED
    row = await driver.fetchrow(
        _BOOK,
        uuid.uuid4(),
        doctor_id,
        version,
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
        uuid.uuid4(),
        new_patient.name if new_patient else None,
        new_patient.mobile if new_patient else None,
        new_patient.email if new_patient else None,
        new_patient.gender if new_patient else None,
        new_patient.date_of_birth if new_patient else None,
        mirror_to_calendar,
    )
    assert row is not None  # the statement always answers one row
    if row["id"] is not None:
        return Outcome(dict(row))
    if not row["current"]:
        return Outcome(None, stale=True)
    if row["found_patient"] is None:
        return Outcome(None, stale=new_patient is not None, patient_missing=new_patient is None)
    return Outcome(None)
