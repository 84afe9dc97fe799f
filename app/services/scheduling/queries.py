"""What the scheduling engine reads: a doctor's schedule, leaves and active appointments.

These are the service's hottest statements, so they are hand-written SQL run on the driver
under the caller's session (`app.database.driver`): the driver decodes the typed arrays
natively, and SQLAlchemy's statement layer, which cost more CPU here than the round trip, is
skipped. A read costs a fixed number of statements whatever the range or the doctor count.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app.database import Sql, fetch, fetchrow
from app.errors import NotFound
from app.models.enums import active_status_sql
from app.services.doctor_filters import DoctorFilters
from app.services.scheduling.engine import Schedule, Span

Blocks = dict[uuid.UUID, list[Span]]


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


_DOCTOR_COLUMNS = (
    "d.id, d.name, d.working_days, d.working_hours, d.slot_duration_minutes, d.is_active, "
    "d.schedule_version"
)
_DAY_VERSIONS = """
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(version) AS versions
             FROM doctor_days
            WHERE doctor_id = d.id AND date BETWEEN :first AND :last) v ON true
"""

# The first round trip of a single-doctor availability read, the service's hottest path: the
# doctor and the versions of the days asked for (see day_cache.py).
_DOCTOR_VERSIONS = Sql(
    f"""
    SELECT {_DOCTOR_COLUMNS}, v.days AS version_days, v.versions AS day_versions
      FROM doctors d {_DAY_VERSIONS}
     WHERE d.id = :doctor_id
    """,
    standalone=True,
)

# Everything for the range in one round trip, when some day is not remembered. Leaves and
# bookings come back as typed arrays, which the driver decodes natively (no JSON in between).
_DOCTOR_CALENDAR = Sql(
    f"""
    SELECT {_DOCTOR_COLUMNS}, v.days AS version_days, v.versions AS day_versions,
           l.days AS leave_days, l.starts AS leave_starts, l.ends AS leave_ends,
           a.days AS busy_days, a.starts AS busy_starts, a.ends AS busy_ends
      FROM doctors d {_DAY_VERSIONS}
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(start_time) AS starts,
                  array_agg(end_time) AS ends
             FROM doctor_leaves
            WHERE doctor_id = d.id AND date BETWEEN :first AND :last) l ON true
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(start_time) AS starts,
                  array_agg(end_time) AS ends
             FROM appointments
            WHERE doctor_id = d.id AND date BETWEEN :first AND :last
              AND {active_status_sql()}) a ON true
     WHERE d.id = :doctor_id
    """,
    standalone=True,
)

_BLOCKS = Sql(
    f"""
    SELECT 'leave' AS kind, doctor_id, date, start_time, end_time
      FROM doctor_leaves
     WHERE doctor_id = ANY(:doctor_ids::uuid[]) AND date BETWEEN :first AND :last
    UNION ALL
    SELECT 'busy', doctor_id, date, start_time, end_time
      FROM appointments
     WHERE doctor_id = ANY(:doctor_ids::uuid[]) AND date BETWEEN :first AND :last
       AND {active_status_sql()}
       AND id IS DISTINCT FROM :exclude::uuid
    """,
    standalone=True,
)


def _schedule(row: asyncpg.Record) -> Schedule:
    return Schedule.from_doctor_fields(
        row["working_days"], row["working_hours"], row["slot_duration_minutes"], row["is_active"]
    )


def _zipped(
    days: Sequence[dt.date] | None,
    starts: Sequence[dt.time | None] | None,
    ends: Sequence[dt.time | None] | None,
) -> list[Span]:
    if not days:
        return []
    return list(zip(days, starts or (), ends or (), strict=True))


def _versions(row: asyncpg.Record) -> dict[dt.date, int]:
    return dict(zip(row["version_days"] or (), row["day_versions"] or (), strict=True))


async def _load_doctor(
    session: AsyncSession, sql: Sql, doctor_id: uuid.UUID, first: dt.date, last: dt.date
) -> asyncpg.Record:
    row = await fetchrow(session, sql, doctor_id=doctor_id, first=first, last=last)
    if row is None:
        raise NotFound(f"Doctor {doctor_id} was not found.")
    return row


async def load_doctor_versions(
    session: AsyncSession, doctor_id: uuid.UUID, first: dt.date, last: dt.date
) -> DoctorCalendar:
    """The doctor and its day versions for the range, without leaves or bookings."""
    row = await _load_doctor(session, _DOCTOR_VERSIONS, doctor_id, first, last)
    return DoctorCalendar(
        row["id"],
        row["name"],
        _schedule(row),
        day_versions=_versions(row),
        schedule_version=row["schedule_version"],
    )


async def load_doctor_calendar(
    session: AsyncSession, doctor_id: uuid.UUID, first: dt.date, last: dt.date
) -> DoctorCalendar:
    """The doctor with its leaves, active appointments and versions for the range."""
    row = await _load_doctor(session, _DOCTOR_CALENDAR, doctor_id, first, last)
    return DoctorCalendar(
        row["id"],
        row["name"],
        _schedule(row),
        _zipped(row["leave_days"], row["leave_starts"], row["leave_ends"]),
        _zipped(row["busy_days"], row["busy_starts"], row["busy_ends"]),
        _versions(row),
        row["schedule_version"],
    )


async def load_blocks(
    session: AsyncSession,
    doctor_ids: Sequence[uuid.UUID],
    first: dt.date,
    last: dt.date,
    *,
    exclude_appointment: uuid.UUID | None = None,
) -> tuple[Blocks, Blocks]:
    """Leaves and active appointments of several doctors, keyed by doctor (a reschedule
    leaves out the appointment being moved)."""
    leaves: Blocks = defaultdict(list)
    busy: Blocks = defaultdict(list)
    rows = await fetch(
        session,
        _BLOCKS,
        doctor_ids=list(doctor_ids),
        first=first,
        last=last,
        exclude=exclude_appointment,
    )
    for kind, doctor_id, day, start_time, end_time in rows:
        target = leaves if kind == "leave" else busy
        target[doctor_id].append((day, start_time, end_time))
    return leaves, busy


@lru_cache(maxsize=64)
def _matching_doctors(where: str) -> Sql:
    # One statement per combination of filters given, compiled once.
    return Sql(
        "SELECT d.id, d.name, d.working_days, d.working_hours, d.slot_duration_minutes,"
        f" d.is_active FROM doctors d WHERE {where} ORDER BY d.name, d.id",
        standalone=True,
    )


async def load_matching_calendars(
    session: AsyncSession, filters: DoctorFilters, first: dt.date, last: dt.date
) -> list[DoctorCalendar]:
    """Doctors matching the filters, with their leaves and bookings: two statements."""
    where, params = filters.where("d")
    rows = await fetch(session, _matching_doctors(where), **params)
    calendars = [DoctorCalendar(row["id"], row["name"], _schedule(row)) for row in rows]
    if not calendars:
        return []
    leaves, busy = await load_blocks(session, [c.doctor_id for c in calendars], first, last)
    for calendar in calendars:
        calendar.leaves = leaves.get(calendar.doctor_id, [])
        calendar.busy = busy.get(calendar.doctor_id, [])
    return calendars
