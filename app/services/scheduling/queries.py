"""What the scheduling engine reads: a doctor's schedule and what each date adds to it
(leaves, active appointments, date overrides, clinic holidays, the holds that count).

These are the service's hottest statements, so they are hand-written SQL run on the driver
under the caller's session (`app.database.driver`): the driver decodes the typed arrays
natively, and SQLAlchemy's statement layer, which cost more CPU here than the round trip, is
skipped. A read costs a fixed number of statements whatever the range or the doctor count.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.models import Doctor
from app.services.doctor_filters import DoctorFilters
from app.services.scheduling.rows import (
    DAY_COLUMNS,
    DOCTOR_COLUMNS,
    RULE_COLUMNS,
    VERSION_COLUMNS,
    Facts,
    days_of,
    days_sql,
    schedule_of,
    versions_of,
    versions_sql,
)
from app.services.scheduling.schedule import NO_FACTS, DayFacts, Rules, Schedule
from app.sql import Sql, fetch, fetchrow, values_list, values_of


@dataclass(slots=True)
class DoctorCalendar:
    doctor_id: uuid.UUID
    name: str
    schedule: Schedule
    visit_type_ids: Sequence[uuid.UUID] = ()
    facts: Facts = field(default_factory=dict)
    # `doctor_days.version` of the days read (missing: 0) and `doctors.schedule_version`, in
    # the same snapshot as the rest (migration 0004; a booking writes only if both still hold).
    day_versions: dict[dt.date, int] = field(default_factory=dict)
    schedule_version: int = 0

    def day(self, date: dt.date) -> DayFacts:
        return self.facts.get(date, NO_FACTS)


# The first round trip of a single-doctor availability read, the service's hottest path: the
# doctor and the versions of the days asked for (see day_cache.py).
_DOCTOR_VERSIONS = Sql(
    f"""
    SELECT {DOCTOR_COLUMNS}, {VERSION_COLUMNS}
      FROM doctors d {versions_sql()}
     WHERE d.id = :doctor_id
    """,
    standalone=True,
)


def _calendar_text(doctors: str, first: str, last: str, exclude_hold: str) -> str:
    """Everything for a range in one round trip: the doctor (`d`, from `doctors`) and what its
    days add."""
    return f"""
    SELECT {DOCTOR_COLUMNS}, {DAY_COLUMNS}
      FROM {doctors} {days_sql(first, last, exclude_hold)}"""


# One doctor's range, when some day of it is not remembered.
_DOCTOR_CALENDAR = Sql(
    _calendar_text("doctors d", ":first", ":last", ":exclude_hold::uuid")
    + " WHERE d.id = :doctor_id",
    standalone=True,
)

# What `load_doctor_calendars` takes of each range, as a VALUES list (`database.values_list`).
_RANGE_COLUMNS = {"doctor_id": "uuid", "first": "date", "last": "date", "exclude_hold": "uuid"}


@cache
def _doctor_calendars(size: int) -> Sql:
    doctors = (
        f"(VALUES {values_list(_RANGE_COLUMNS, size)}) AS r({', '.join(_RANGE_COLUMNS)}, n)"
        " LEFT JOIN doctors d ON d.id = r.doctor_id"
    )
    text = _calendar_text(doctors, "r.first", "r.last", "r.exclude_hold")
    return Sql(text + " WHERE r.doctor_id IS NOT NULL ORDER BY r.n", standalone=True)


# Several doctors' days (the search, warming, alternatives, a reschedule, the desk): the same
# shape, a row per doctor id asked for, whether the doctor exists or not.
_DAYS = Sql(
    f"""
    SELECT d.id, {DAY_COLUMNS}
      FROM unnest(:doctor_ids::uuid[]) AS d(id)
           {days_sql(":first", ":last", ":exclude_hold::uuid", ":exclude::uuid")}""",
    standalone=True,
)


def doctor_schedule(doctor: Doctor) -> Schedule:
    """The schedule of a loaded doctor row (a change that holds the doctor's lock)."""
    rules = Rules(*(getattr(doctor, column) for column in RULE_COLUMNS))
    return Schedule.from_weekly_hours(
        doctor.weekly_hours, doctor.slot_duration_minutes, doctor.is_active, rules
    )


def _calendar(row: asyncpg.Record, facts: Facts | None = None) -> DoctorCalendar:
    return DoctorCalendar(
        row["id"],
        row["name"],
        schedule_of(row),
        row["visit_type_ids"],
        facts or {},
        versions_of(row),
        row["schedule_version"],
    )


async def load_doctor_versions(
    session: AsyncSession, doctor_id: uuid.UUID, first: dt.date, last: dt.date
) -> DoctorCalendar:
    """The doctor and its day versions for the range, without what the dates add."""
    row = await fetchrow(session, _DOCTOR_VERSIONS, doctor_id=doctor_id, first=first, last=last)
    if row is None:
        raise NotFound(f"Doctor {doctor_id} was not found.")
    return _calendar(row)


async def load_doctor_calendar(
    session: AsyncSession,
    doctor_id: uuid.UUID,
    first: dt.date,
    last: dt.date,
    *,
    exclude_hold: uuid.UUID | None = None,
) -> DoctorCalendar:
    """The doctor with its leaves, active appointments, overrides, the clinic's holidays,
    active holds (a booking through a hold leaves its own out) and the day versions for the
    range."""
    row = await fetchrow(
        session,
        _DOCTOR_CALENDAR,
        doctor_id=doctor_id,
        first=first,
        last=last,
        exclude_hold=exclude_hold,
    )
    if row is None:
        raise NotFound(f"Doctor {doctor_id} was not found.")
    return _calendar(row, days_of(row))


@dataclass(frozen=True, slots=True)
class CalendarWanted:
    """One range `load_doctor_calendars` reads."""

    doctor_id: uuid.UUID
    first: dt.date
    last: dt.date
    exclude_hold: uuid.UUID | None = None


async def load_doctor_calendars(
    session: AsyncSession, wanted: Sequence[CalendarWanted]
) -> list[DoctorCalendar | None]:
    """What `load_doctor_calendar` reads, for up to 16 ranges in one statement, in order; None
    for a doctor that does not exist."""
    size, values = values_of(
        _RANGE_COLUMNS, [{name: getattr(one, name) for name in _RANGE_COLUMNS} for one in wanted]
    )
    rows = await fetch(session, _doctor_calendars(size), **values)
    return [None if row["id"] is None else _calendar(row, days_of(row)) for row in rows]


async def _read_days(
    session: AsyncSession,
    doctor_ids: Sequence[uuid.UUID],
    first: dt.date,
    last: dt.date,
    exclude_appointment: uuid.UUID | None = None,
    exclude_hold: uuid.UUID | None = None,
) -> list[asyncpg.Record]:
    return await fetch(
        session,
        _DAYS,
        doctor_ids=list(doctor_ids),
        first=first,
        last=last,
        exclude=exclude_appointment,
        exclude_hold=exclude_hold,
    )


async def load_facts(
    session: AsyncSession,
    doctor_ids: Sequence[uuid.UUID],
    first: dt.date,
    last: dt.date,
    *,
    exclude_appointment: uuid.UUID | None = None,
    exclude_hold: uuid.UUID | None = None,
) -> dict[uuid.UUID, Facts]:
    """What each date adds for several doctors, keyed by doctor (a reschedule leaves out the
    appointment being moved, a booking through a hold that hold)."""
    rows = await _read_days(session, doctor_ids, first, last, exclude_appointment, exclude_hold)
    return {row["id"]: days_of(row) for row in rows}


async def load_days(
    session: AsyncSession, doctor_ids: Sequence[uuid.UUID], first: dt.date, last: dt.date
) -> tuple[dict[uuid.UUID, Facts], dict[uuid.UUID, dict[dt.date, int]]]:
    """What each date adds for several doctors, and each doctor-day's version, read in one
    statement (so together they may be remembered: `DayCache.remember`)."""
    rows = await _read_days(session, doctor_ids, first, last)
    return {row["id"]: days_of(row) for row in rows}, {row["id"]: versions_of(row) for row in rows}


_ACTIVE_DOCTORS = Sql("SELECT id FROM doctors WHERE is_active ORDER BY id", standalone=True)


async def active_doctor_ids(session: AsyncSession) -> list[uuid.UUID]:
    return [row["id"] for row in await fetch(session, _ACTIVE_DOCTORS)]


@lru_cache(maxsize=64)
def _matching_doctors(where: str) -> Sql:
    # One statement per combination of filters given, compiled once.
    return Sql(
        f"""
        SELECT {DOCTOR_COLUMNS}, {VERSION_COLUMNS}
          FROM doctors d {versions_sql()}
         WHERE {where}
         ORDER BY d.name, d.id
        """,
        standalone=True,
    )


async def load_matching_doctors(
    session: AsyncSession, filters: DoctorFilters, first: dt.date, last: dt.date
) -> list[DoctorCalendar]:
    """Doctors matching the filters, by name, with the versions of the days from `first` to
    `last` (so remembered days need no read) but without what any date adds."""
    where, params = filters.where("d")
    rows = await fetch(session, _matching_doctors(where), first=first, last=last, **params)
    return [_calendar(row) for row in rows]


async def load_matching_calendars(
    session: AsyncSession, filters: DoctorFilters, first: dt.date, last: dt.date
) -> list[DoctorCalendar]:
    """Doctors matching the filters, with what each date adds: two statements."""
    calendars = await load_matching_doctors(session, filters, first, last)
    facts = await load_facts(session, [c.doctor_id for c in calendars], first, last)
    for calendar in calendars:
        calendar.facts = facts[calendar.doctor_id]
    return calendars
