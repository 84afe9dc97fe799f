"""A booking in two statements: read the doctor's day, then write only if it is unchanged.

The read is the availability read for that one day (`schedule_queries.load_doctor_calendar`),
which returns the day's leaves and bookings with two versions (migration 0004): the doctor's
schedule version and the day's version. The availability engine decides on what was
read, then `book_if_current` claims the day by bumping its version, on the condition that
both versions are still the ones read, and writes everything at once: the patient (when new),
the appointment, its audit row and, when the calendar is mirrored, its outbox job and the
dispatchers' wake-up.

Why that is enough: every change to a doctor's day bumps that day's version through a
trigger. A change committed after the read shows up as a new version. One still in flight
holds the day's row lock, so the claim waits for it, and PostgreSQL then re-checks the
condition against the committed row: the claim fails and the caller reads again. Bookings for
one doctor on different days touch different rows and never wait for each other. The partial
unique index on active slots stays as the last line of defence.

No explicit transaction: the write commits on its own, durably, before the caller answers.
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
from app.services.schedule_queries import DoctorCalendar

# NO KEY UPDATE, like every explicit doctor lock: it serialises changes for one doctor but not
# the foreign-key checks of bookings being written, which would otherwise deadlock against it.
_LOCK_DOCTOR = "SELECT id FROM doctors WHERE id = $1 FOR NO KEY UPDATE"


async def lock_doctor(driver: asyncpg.Connection, doctor_id: uuid.UUID) -> None:
    """Hold the doctor's row lock until the transaction ends: reschedules, cancellations,
    leaves and schedule edits take it too, so only other bookings can still change the day."""
    if await driver.fetchval(_LOCK_DOCTOR, doctor_id) is None:
        raise NotFound(f"Doctor {doctor_id} was not found.")


_CLAIM_DAYS = """
    INSERT INTO doctor_days AS v (doctor_id, date, version)
    SELECT $1, day, 1 FROM unnest($2::date[]) AS day ORDER BY day
    ON CONFLICT (doctor_id, date) DO UPDATE SET version = v.version + 1
"""


async def claim_days(driver: asyncpg.Connection, doctor_id: uuid.UUID, days: set[dt.date]) -> None:
    """Take these days of the doctor for this transaction, before reading them.

    A booking claims its day as it writes; a change that reads the day first (a reschedule,
    the booking's locked retry) claims it up front, so a booking in flight either finished
    before the read or waits for this transaction and then finds its claim stale. Days are
    claimed in date order, so two claimers never wait on each other in a cycle.
    """
    await driver.execute(_CLAIM_DAYS, doctor_id, sorted(days))


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
        SELECT id FROM doctors WHERE id = $2 AND schedule_version = $3
    ), day AS (
        INSERT INTO doctor_days AS v (doctor_id, date, version)
        SELECT id, $5, 1 FROM doctor
        ON CONFLICT (doctor_id, date) DO UPDATE SET version = v.version + 1
        WHERE v.version = $22
        RETURNING doctor_id
    ), new_patient AS (
        INSERT INTO patients (id, name, mobile_number, email, gender, date_of_birth)
        SELECT $15::uuid, $16::varchar, $17::varchar, $18::varchar, $19::varchar, $20::date
          FROM day WHERE $17 IS NOT NULL
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
        SELECT $1, day.doctor_id, patient.id, $5, $6, $7, $8, $9, $10 FROM day, patient
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
    SELECT (SELECT count(*) FROM day) AS current, (SELECT id FROM patient) AS found_patient,
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
    read: DoctorCalendar,
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
        read.schedule_version,
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
        read.day_versions.get(day, 0),
    )
    assert row is not None  # the statement always answers one row
    if row["id"] is not None:
        return Outcome(dict(row))
    if not row["current"]:
        return Outcome(None, stale=True)
    if row["found_patient"] is None:
        return Outcome(None, stale=new_patient is not None, patient_missing=new_patient is None)
    return Outcome(None)
