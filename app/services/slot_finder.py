"""Availability answers: one doctor's days, or the earliest slots across matching doctors."""

from __future__ import annotations

import datetime as dt
import heapq
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from app import metrics
from app.database import driver_connection
from app.errors import InvalidInput
from app.services.availability_service import (
    MAX_RANGE_DAYS,
    Day,
    SlotTime,
    Span,
    availability_by_day,
    date_range,
    day_availability,
    group_by_day,
)
from app.services.day_cache import DayCache
from app.services.schedule_queries import (
    load_doctor_calendar,
    load_doctor_versions,
    load_matching_calendars,
)


@dataclass(frozen=True, slots=True)
class DoctorAvailability:
    doctor_id: uuid.UUID
    slot_duration_minutes: int
    days: list[Day]


@dataclass(frozen=True, slots=True)
class FoundSlot:
    doctor_id: uuid.UUID
    doctor_name: str
    date: dt.date
    start_time: dt.time
    end_time: dt.time


def resolve_range(
    today: dt.date,
    day: dt.date | None,
    start: dt.date | None,
    end: dt.date | None,
    *,
    default_days: int = 1,
    max_days: int = MAX_RANGE_DAYS,
) -> tuple[dt.date, dt.date]:
    if day is not None:
        if start is not None or end is not None:
            raise InvalidInput("date", "give either date or start_date/end_date, not both")
        return day, day
    first = start or today
    last = end or first + dt.timedelta(days=default_days - 1)
    if last < first:
        raise InvalidInput("end_date", "end_date must not be before start_date")
    if (last - first).days + 1 > max_days:
        raise InvalidInput("end_date", f"the range may span at most {max_days} days")
    return first, last


async def doctor_availability(
    engine: AsyncEngine,
    doctor_id: uuid.UUID,
    start: dt.date,
    end: dt.date,
    now: dt.datetime,
    tz: ZoneInfo,
    cache: DayCache,
) -> DoctorAvailability:
    """One doctor's days: one small statement when every day is remembered in `cache` at its
    current version, else one more that reads the whole range (and is remembered)."""
    span = date_range(start, end)
    leaves: Mapping[dt.date, Sequence[Span]]
    busy: Mapping[dt.date, Sequence[Span]]
    async with driver_connection(engine) as driver:
        remembered = None
        if cache.capacity:
            calendar = await load_doctor_versions(driver, doctor_id, start, end)
            remembered = cache.lookup(doctor_id, span, calendar.day_versions)
        metrics.AVAILABILITY_READS.labels("read" if remembered is None else "remembered").inc()
        if remembered is not None:
            leaves, busy = remembered
        else:
            calendar = await load_doctor_calendar(driver, doctor_id, start, end)
            leaves, busy = group_by_day(calendar.leaves), group_by_day(calendar.busy)
            cache.remember(doctor_id, span, calendar.day_versions, leaves, busy)
    days = availability_by_day(calendar.schedule, start, end, leaves, busy, now, tz)
    return DoctorAvailability(doctor_id, calendar.schedule.slot_minutes, days)


async def earliest_slots(
    engine: AsyncEngine,
    start: dt.date,
    end: dt.date,
    limit: int,
    now: dt.datetime,
    tz: ZoneInfo,
    *,
    specialization: str | None,
    language: str | None,
    consultation_type: str | None,
) -> list[FoundSlot]:
    async with driver_connection(engine) as driver:
        calendars = await load_matching_calendars(
            driver,
            start,
            end,
            specialization=specialization,
            language=language,
            consultation_type=consultation_type,
        )
    found: list[FoundSlot] = []
    # Grouped once per doctor, so each day only looks at that day's leaves and bookings.
    grouped = [(c, group_by_day(c.leaves), group_by_day(c.busy)) for c in calendars]
    # Day by day, so a busy clinic stops computing as soon as the earliest `limit` are known.
    for day in date_range(start, end):
        todays: list[tuple[dt.time, str, uuid.UUID, SlotTime]] = []
        for calendar, leaves, busy in grouped:
            offered = day_availability(
                calendar.schedule, day, leaves.get(day, ()), busy.get(day, ()), now, tz
            )
            todays.extend(
                (slot.start, calendar.name, calendar.doctor_id, slot) for slot in offered.slots
            )
        for start_time, name, doctor_id, slot in heapq.nsmallest(
            limit - len(found), todays, key=lambda item: (item[0], item[1], str(item[2]))
        ):
            found.append(FoundSlot(doctor_id, name, day, start_time, slot.end))
        if len(found) >= limit:
            break
    return found
