"""Load what the availability engine needs, in a fixed number of queries whatever the range.

These are the service's hottest statements, so they run on the bare asyncpg driver
(`app.database.driver_connection`): the driver decodes the typed arrays natively and
SQLAlchemy's statement layer, which cost more CPU here than the round trip, is skipped.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from app.errors import NotFound
from app.services.availability_service import Schedule, Span


@dataclass(slots=True)
class DoctorCalendar:
    doctor_id: uuid.UUID
    name: str
    schedule: Schedule
    leaves: list[Span] = field(default_factory=list)
    busy: list[Span] = field(default_factory=list)
    # `doctor_days.version` of the days read (missing: 0) and `doctors.schedule_version`, in
    # the same snapshot as the rest (migration 0004; a booking writes only if both still hold).
    day_versions: dict[dt.date, int] = field(default_factory=dict)
    schedule_version: int = 0


def schedule_of(row: asyncpg.Record) -> Schedule:
    return Schedule.from_doctor_fields(
        row["working_days"], row["working_hours"], row["slot_duration_minutes"], row["is_active"]
    )


_DOCTOR_COLUMNS = (
    "d.id, d.name, d.working_days, d.working_hours, d.slot_duration_minutes, d.is_active, "
    "d.schedule_version"
)
_DAY_VERSIONS = """
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(version) AS versions
             FROM doctor_days
            WHERE doctor_id = d.id AND date BETWEEN $2 AND $3) v ON true
"""

# The first round trip of a single-doctor availability read, the service's hottest path: the
# doctor and the versions of the days asked for (see app/services/day_cache.py).
_ONE_DOCTOR_VERSIONS = f"""
    SELECT {_DOCTOR_COLUMNS}, v.days AS version_days, v.versions AS day_versions
      FROM doctors d {_DAY_VERSIONS}
     WHERE d.id = $1
"""

# Everything for the range in one round trip, when some day is not remembered. Leaves and
# bookings come back as typed arrays, which the driver decodes natively (no JSON in between).
_ONE_DOCTOR = f"""
    SELECT {_DOCTOR_COLUMNS}, v.days AS version_days, v.versions AS day_versions,
           l.days AS leave_days, l.starts AS leave_starts, l.ends AS leave_ends,
           a.days AS busy_days, a.starts AS busy_starts, a.ends AS busy_ends
      FROM doctors d {_DAY_VERSIONS}
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(start_time) AS starts,
                  array_agg(end_time) AS ends
             FROM doctor_leaves
            WHERE doctor_id = d.id AND date BETWEEN $2 AND $3) l ON true
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(start_time) AS starts,
                  array_agg(end_time) AS ends
             FROM appointments
            WHERE doctor_id = d.id AND date BETWEEN $2 AND $3
              AND status IN ('BOOKED', 'RESCHEDULED')) a ON true
     WHERE d.id = $1
"""


def _zipped(
    days: list[dt.date] | None, starts: list[Any] | None, ends: list[Any] | None
) -> list[Span]:
    if not days:
        return []
    return list(zip(days, starts or (), ends or (), strict=True))


def _versions(row: asyncpg.Record) -> dict[dt.date, int]:
    return dict(zip(row["version_days"] or (), row["day_versions"] or (), strict=True))


async def load_doctor_versions(
    driver: asyncpg.Connection, doctor_id: uuid.UUID, start: dt.date, end: dt.date
) -> DoctorCalendar:
    """The doctor and its day versions for the range, without leaves or bookings."""
    row = await driver.fetchrow(_ONE_DOCTOR_VERSIONS, doctor_id, start, end)
    if row is None:
        raise NotFound(f"Doctor {doctor_id} was not found.")
    return DoctorCalendar(
        row["id"],
        row["name"],
        schedule_of(row),
        day_versions=_versions(row),
        schedule_version=row["schedule_version"],
    )


async def load_doctor_calendar(
    driver: asyncpg.Connection, doctor_id: uuid.UUID, start: dt.date, end: dt.date
) -> DoctorCalendar:
    row = await driver.fetchrow(_ONE_DOCTOR, doctor_id, start, end)
    if row is None:
        raise NotFound(f"Doctor {doctor_id} was not found.")
    return DoctorCalendar(
        row["id"],
        row["name"],
        schedule_of(row),
        _zipped(row["leave_days"], row["leave_starts"], row["leave_ends"]),
        _zipped(row["busy_days"], row["busy_starts"], row["busy_ends"]),
        _versions(row),
        row["schedule_version"],
    )


_BLOCKS = """
    SELECT 'leave' AS kind, doctor_id, date, start_time, end_time
      FROM doctor_leaves
     WHERE doctor_id = ANY($1::uuid[]) AND date BETWEEN $2 AND $3
    UNION ALL
    SELECT 'busy', doctor_id, date, start_time, end_time
      FROM appointments
     WHERE doctor_id = ANY($1::uuid[]) AND date BETWEEN $2 AND $3
       AND status IN ('BOOKED', 'RESCHEDULED')
       AND id IS DISTINCT FROM $4::uuid
"""


async def load_blocks(
    driver: asyncpg.Connection,
    doctor_ids: Sequence[uuid.UUID],
    start: dt.date,
    end: dt.date,
    *,
    exclude_appointment: uuid.UUID | None = None,
) -> tuple[dict[uuid.UUID, list[Span]], dict[uuid.UUID, list[Span]]]:
    """Leaves and active appointments of several doctors, keyed by doctor.

    Run as its own statement after the doctor's row lock, so it sees every booking committed
    before the lock was granted.
    """
    leaves: dict[uuid.UUID, list[Span]] = defaultdict(list)
    busy: dict[uuid.UUID, list[Span]] = defaultdict(list)
    rows = await driver.fetch(_BLOCKS, list(doctor_ids), start, end, exclude_appointment)
    for kind, doctor_id, day, start_time, end_time in rows:
        target = leaves if kind == "leave" else busy
        target[doctor_id].append((day, start_time, end_time))
    return leaves, busy


_MATCHING_DOCTORS = """
    SELECT d.id, d.name, d.working_days, d.working_hours, d.slot_duration_minutes, d.is_active
      FROM doctors d
     WHERE d.is_active
"""


async def load_matching_calendars(
    driver: asyncpg.Connection,
    start: dt.date,
    end: dt.date,
    *,
    specialization: str | None,
    language: str | None,
    consultation_type: str | None,
) -> list[DoctorCalendar]:
    """Active doctors matching the filters, with their leaves and bookings: two queries."""
    sql = _MATCHING_DOCTORS
    params: list[Any] = []
    if specialization:
        params.append(specialization.strip().lower())
        sql += f" AND lower(d.specialization) = ${len(params)}"
    if consultation_type:
        params.append(consultation_type.strip().lower())
        sql += f" AND lower(d.consultation_type) = ${len(params)}"
    if language:
        params.append(language.strip().lower())
        sql += (
            f" AND EXISTS (SELECT 1 FROM unnest(d.languages) AS l WHERE lower(l) = ${len(params)})"
        )
    rows = await driver.fetch(sql + " ORDER BY d.name, d.id", *params)
    calendars = [DoctorCalendar(row["id"], row["name"], schedule_of(row)) for row in rows]
    if not calendars:
        return []
    leaves, busy = await load_blocks(driver, [c.doctor_id for c in calendars], start, end)
    for calendar in calendars:
        calendar.leaves = leaves.get(calendar.doctor_id, [])
        calendar.busy = busy.get(calendar.doctor_id, [])
    return calendars
