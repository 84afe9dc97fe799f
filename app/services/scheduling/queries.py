"""What the scheduling engine reads: a doctor's schedule and what each date adds to it
(leaves, active appointments, date overrides, clinic holidays).

These are the service's hottest statements, so they are hand-written SQL run on the driver
under the caller's session (`app.database.driver`): the driver decodes the typed arrays
natively, and SQLAlchemy's statement layer, which cost more CPU here than the round trip, is
skipped. A read costs a fixed number of statements whatever the range or the doctor count.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app.database import Sql, fetch, fetchrow, values_list, values_of
from app.errors import NotFound
from app.models import Doctor
from app.models.enums import active_status_sql, hold_counts_sql
from app.services.doctor_filters import DoctorFilters
from app.services.scheduling.schedule import (
    NO_FACTS,
    DayFacts,
    HeldSpan,
    Rules,
    Schedule,
    Span,
    Window,
    facts_by_day,
    parse_windows,
)

Facts = dict[dt.date, DayFacts]


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


# The doctor columns that hold the booking rules, in `Rules`' order.
RULE_COLUMNS = (
    "min_notice_minutes",
    "booking_horizon_days",
    "buffer_minutes",
    "max_appointments_per_day",
)
_DOCTOR_COLUMNS = (
    "d.id, d.name, d.weekly_hours::text AS week, d.slot_duration_minutes, d.is_active, "
    + "".join(f"d.{column}, " for column in RULE_COLUMNS)
    + "d.visit_type_ids, d.schedule_version"
)


def _day_versions(first: str = ":first", last: str = ":last") -> str:
    """The versions (`v`) of the doctor `d`'s days from `first` to `last`."""
    return f"""
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(version) AS versions
             FROM doctor_days
            WHERE doctor_id = d.id AND date BETWEEN {first} AND {last}) v ON true
"""


# The first round trip of a single-doctor availability read, the service's hottest path: the
# doctor and the versions of the days asked for (see day_cache.py).
_DOCTOR_VERSIONS = Sql(
    f"""
    SELECT {_DOCTOR_COLUMNS}, v.days AS version_days, v.versions AS day_versions
      FROM doctors d {_day_versions()}
     WHERE d.id = :doctor_id
    """,
    standalone=True,
)


def _calendar_text(doctors: str, first: str, last: str, exclude_hold: str) -> str:
    """Everything for a range in one round trip: the doctor (`d`, from `doctors`) with its
    leaves, active appointments, overrides, the clinic's holidays, active holds and day
    versions from `first` to `last`. Leaves and bookings come back as typed arrays, which the
    driver decodes natively (no JSON in between)."""
    return f"""
    SELECT {_DOCTOR_COLUMNS}, v.days AS version_days, v.versions AS day_versions,
           l.days AS leave_days, l.starts AS leave_starts, l.ends AS leave_ends,
           a.days AS busy_days, a.starts AS busy_starts, a.ends AS busy_ends,
           o.days AS override_days, o.windows AS override_windows, h.days AS holidays,
           k.days AS hold_days, k.starts AS hold_starts, k.ends AS hold_ends,
           k.expiries AS hold_expiries
      FROM {doctors} {_day_versions(first, last)}
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(start_time) AS starts,
                  array_agg(end_time) AS ends
             FROM doctor_leaves
            WHERE doctor_id = d.id AND date BETWEEN {first} AND {last}) l ON true
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(start_time) AS starts,
                  array_agg(end_time) AS ends
             FROM appointments
            WHERE doctor_id = d.id AND date BETWEEN {first} AND {last}
              AND {active_status_sql()}) a ON true
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(windows::text) AS windows
             FROM doctor_date_overrides
            WHERE doctor_id = d.id AND date BETWEEN {first} AND {last}) o ON true
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days
             FROM clinic_holidays
            WHERE date BETWEEN {first} AND {last}) h ON true
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(start_time) AS starts,
                  array_agg(end_time) AS ends, array_agg(expires_at) AS expiries
             FROM holds
            WHERE doctor_id = d.id AND date BETWEEN {first} AND {last}
              AND {hold_counts_sql()} AND id IS DISTINCT FROM {exclude_hold}) k ON true
    """


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


# Several doctors' dates at once; holidays come once, for every doctor (no doctor id).
_FACTS_TEXT = f"""
    SELECT 'leave' AS kind, doctor_id, date, start_time, end_time, NULL AS windows,
           NULL::timestamptz AS expires_at
      FROM doctor_leaves
     WHERE doctor_id = ANY(:doctor_ids::uuid[]) AND date BETWEEN :first AND :last
    UNION ALL
    SELECT 'busy', doctor_id, date, start_time, end_time, NULL, NULL
      FROM appointments
     WHERE doctor_id = ANY(:doctor_ids::uuid[]) AND date BETWEEN :first AND :last
       AND {active_status_sql()}
       AND id IS DISTINCT FROM :exclude::uuid
    UNION ALL
    SELECT 'hold', doctor_id, date, start_time, end_time, NULL, expires_at
      FROM holds
     WHERE doctor_id = ANY(:doctor_ids::uuid[]) AND date BETWEEN :first AND :last
       AND {hold_counts_sql()} AND id IS DISTINCT FROM :exclude_hold::uuid
    UNION ALL
    SELECT 'override', doctor_id, date, NULL, NULL, windows::text, NULL
      FROM doctor_date_overrides
     WHERE doctor_id = ANY(:doctor_ids::uuid[]) AND date BETWEEN :first AND :last
    UNION ALL
    SELECT 'holiday', NULL, date, NULL, NULL, NULL, NULL
      FROM clinic_holidays
     WHERE date BETWEEN :first AND :last
"""
_FACTS = Sql(_FACTS_TEXT, standalone=True)
# The same with each day's version, read in the same snapshot, for the day cache (the search).
_FACTS_AND_VERSIONS = Sql(
    _FACTS_TEXT
    + """
    UNION ALL
    SELECT 'version', doctor_id, date, NULL, NULL, version::text, NULL
      FROM doctor_days
     WHERE doctor_id = ANY(:doctor_ids::uuid[]) AND date BETWEEN :first AND :last
    """,
    standalone=True,
)


@lru_cache(maxsize=4096)
def _schedule_of(
    week: str,
    slot_minutes: int,
    is_active: bool,
    rules: Rules,
) -> Schedule:
    # Keyed by the week's JSON text: parsed once per distinct schedule, not per request.
    return Schedule.from_weekly_hours(json.loads(week), slot_minutes, is_active, rules)


def doctor_schedule(doctor: Doctor) -> Schedule:
    """The schedule of a loaded doctor row (a change that holds the doctor's lock)."""
    rules = Rules(*(getattr(doctor, column) for column in RULE_COLUMNS))
    return Schedule.from_weekly_hours(
        doctor.weekly_hours, doctor.slot_duration_minutes, doctor.is_active, rules
    )


def _schedule(row: asyncpg.Record) -> Schedule:
    rules = Rules(*(row[column] for column in RULE_COLUMNS))
    return _schedule_of(row["week"], row["slot_duration_minutes"], row["is_active"], rules)


@lru_cache(maxsize=4096)
def windows_of(text: str) -> tuple[Window, ...]:
    """An override's windows from their JSON text."""
    return parse_windows(json.loads(text))


def _zipped(
    days: Sequence[dt.date] | None,
    starts: Sequence[dt.time | None] | None,
    ends: Sequence[dt.time | None] | None,
) -> list[Span]:
    if not days:
        return []
    return list(zip(days, starts or (), ends or (), strict=True))


def _held(
    days: Sequence[dt.date] | None,
    starts: Sequence[dt.time] | None,
    ends: Sequence[dt.time] | None,
    expiries: Sequence[dt.datetime] | None,
) -> list[HeldSpan]:
    if not days:
        return []
    return list(zip(days, starts or (), ends or (), expiries or (), strict=True))


def _versions(row: asyncpg.Record) -> dict[dt.date, int]:
    return dict(zip(row["version_days"] or (), row["day_versions"] or (), strict=True))


def _calendar(row: asyncpg.Record, facts: Facts | None = None) -> DoctorCalendar:
    return DoctorCalendar(
        row["id"],
        row["name"],
        _schedule(row),
        row["visit_type_ids"],
        facts or {},
        _versions(row) if "version_days" in row else {},
        row["schedule_version"],
    )


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
    """The doctor and its day versions for the range, without what the dates add."""
    return _calendar(await _load_doctor(session, _DOCTOR_VERSIONS, doctor_id, first, last))


def _calendar_with_facts(row: asyncpg.Record) -> DoctorCalendar:
    overrides = {
        day: windows_of(text)
        for day, text in zip(row["override_days"] or (), row["override_windows"] or (), strict=True)
    }
    facts = facts_by_day(
        _zipped(row["leave_days"], row["leave_starts"], row["leave_ends"]),
        _zipped(row["busy_days"], row["busy_starts"], row["busy_ends"]),
        overrides,
        frozenset(row["holidays"] or ()),
        _held(row["hold_days"], row["hold_starts"], row["hold_ends"], row["hold_expiries"]),
    )
    return _calendar(row, facts)


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
    return _calendar_with_facts(row)


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
    return [None if row["id"] is None else _calendar_with_facts(row) for row in rows]


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
    rows = await fetch(
        session,
        _FACTS,
        doctor_ids=list(doctor_ids),
        first=first,
        last=last,
        exclude=exclude_appointment,
        exclude_hold=exclude_hold,
    )
    return _facts_of(rows, doctor_ids, {})


_ACTIVE_DOCTORS = Sql("SELECT id FROM doctors WHERE is_active ORDER BY id", standalone=True)


async def active_doctor_ids(session: AsyncSession) -> list[uuid.UUID]:
    return [row["id"] for row in await fetch(session, _ACTIVE_DOCTORS)]


async def load_days(
    session: AsyncSession, doctor_ids: Sequence[uuid.UUID], first: dt.date, last: dt.date
) -> tuple[dict[uuid.UUID, Facts], dict[uuid.UUID, dict[dt.date, int]]]:
    """What each date adds for several doctors, and each doctor-day's version, read in one
    statement (so together they may be remembered: `DayCache.remember`)."""
    rows = await fetch(
        session,
        _FACTS_AND_VERSIONS,
        doctor_ids=list(doctor_ids),
        first=first,
        last=last,
        exclude=None,
        exclude_hold=None,
    )
    versions: defaultdict[uuid.UUID, dict[dt.date, int]] = defaultdict(dict)
    return _facts_of(rows, doctor_ids, versions), versions


def _facts_of(
    rows: Sequence[asyncpg.Record],
    doctor_ids: Sequence[uuid.UUID],
    versions: MutableMapping[uuid.UUID, dict[dt.date, int]],
) -> dict[uuid.UUID, Facts]:
    leaves: defaultdict[uuid.UUID, list[Span]] = defaultdict(list)
    busy: defaultdict[uuid.UUID, list[Span]] = defaultdict(list)
    holds: defaultdict[uuid.UUID, list[HeldSpan]] = defaultdict(list)
    overrides: defaultdict[uuid.UUID, dict[dt.date, tuple[Window, ...]]] = defaultdict(dict)
    holidays: set[dt.date] = set()
    for kind, doctor_id, day, start_time, end_time, windows, expires_at in rows:
        if kind == "leave":
            leaves[doctor_id].append((day, start_time, end_time))
        elif kind == "busy":
            busy[doctor_id].append((day, start_time, end_time))
        elif kind == "hold":
            holds[doctor_id].append((day, start_time, end_time, expires_at))
        elif kind == "override":
            overrides[doctor_id][day] = windows_of(windows)
        elif kind == "version":
            versions[doctor_id][day] = int(windows)
        else:
            holidays.add(day)
    return {
        doctor_id: facts_by_day(
            leaves.get(doctor_id, ()),
            busy.get(doctor_id, ()),
            overrides.get(doctor_id),
            holidays,
            holds.get(doctor_id, ()),
        )
        for doctor_id in doctor_ids
    }


@lru_cache(maxsize=64)
def _matching_doctors(where: str) -> Sql:
    # One statement per combination of filters given, compiled once.
    return Sql(
        f"""
        SELECT {_DOCTOR_COLUMNS}, v.days AS version_days, v.versions AS day_versions
          FROM doctors d {_day_versions()}
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
