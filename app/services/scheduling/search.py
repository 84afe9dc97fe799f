"""The earliest free slots across doctors (`availability_service.earliest_slots`).

Day by day, so a busy clinic stops as soon as the earliest `limit` are known, reading the days
in growing chunks (1, 4, 16 days...): the earliest slots are usually on the first day, and
reading two weeks of every matching doctor's bookings to use one day of them was most of the
search's cost. The versions of the first two chunks' days come with the doctors, so their
remembered doctor-days (`day_cache`) are not read again (BENCHMARKS.md).
"""

from __future__ import annotations

import datetime as dt
import heapq
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.services.context import Clinic
from app.services.doctor_filters import DoctorFilters
from app.services.scheduling.day_cache import (
    DayCache,
    DayContext,
    Offered,
    day_context,
    may_remember,
)
from app.services.scheduling.engine import Moment, SlotTime, date_range, day_availability
from app.services.scheduling.queries import DoctorCalendar, load_days, load_matching_doctors


@dataclass(frozen=True, slots=True)
class TimesOfDay:
    """The part of each day a caller asked about ("mornings", "after three"): slots starting
    at or after `earliest` and ending at or before `latest`; None leaves that end open."""

    earliest: dt.time | None = None
    latest: dt.time | None = None

    def admits(self, start: dt.time, end: dt.time) -> bool:
        return (self.earliest is None or start >= self.earliest) and (
            self.latest is None or end <= self.latest
        )


ANY_TIME = TimesOfDay()


@dataclass(frozen=True, slots=True)
class FoundSlot:
    doctor_id: uuid.UUID
    doctor_name: str
    date: dt.date
    slot: SlotTime


# The days whose versions the search reads with the doctors: its first two chunks (1 and 4
# days). A search that needs more than its first day (a Sunday, a day of long visits, a
# doctor's short Saturday) then still finds the next days remembered; reading versions is
# cheap next to reading a day's bookings.
_VERSIONED_DAYS = 5


async def earliest(
    session: AsyncSession,
    filters: DoctorFilters,
    first: dt.date,
    last: dt.date,
    limit: int,
    clinic: Clinic,
    cache: DayCache,
    visit_minutes: int | None,
    times: TimesOfDay = ANY_TIME,
) -> list[FoundSlot]:
    """The earliest `limit` free slots from `first` to `last` across the doctors matching
    `filters`, earliest first, ties by doctor name; slots `visit_minutes` long (None: each
    doctor's slot length), within `times` of each day."""
    versioned_until = min(last, first + dt.timedelta(days=_VERSIONED_DAYS - 1))
    calendars = await load_matching_doctors(session, filters, first, versioned_until)
    found: list[FoundSlot] = []
    moments = [
        Moment.of(clinic.now, clinic.tz, c.schedule.rules.min_notice_minutes) for c in calendars
    ]
    contexts = [day_context(c, visit_minutes, clinic.today) for c in calendars]
    loaded_until, chunk = first - dt.timedelta(days=1), 1
    for day in date_range(first, last):
        if day > loaded_until:
            loaded_until = min(last, day + dt.timedelta(days=chunk - 1))
            await _add_days(
                session,
                calendars,
                day,
                loaded_until,
                cache,
                versions_read=loaded_until <= versioned_until,
            )
            chunk *= 4
        todays: list[tuple[dt.time, str, uuid.UUID, dt.time]] = []
        for calendar, moment, context in zip(calendars, moments, contexts, strict=True):
            slots = _offered(calendar, day, moment, context, clinic, visit_minutes, cache)
            if times is not ANY_TIME:
                slots = tuple(slot for slot in slots if times.admits(*slot))
            todays.extend((start, calendar.name, calendar.doctor_id, end) for start, end in slots)
        for start, name, doctor_id, end in heapq.nsmallest(
            limit - len(found), todays, key=lambda item: (item[0], item[1], str(item[2]))
        ):
            found.append(FoundSlot(doctor_id, name, day, SlotTime(start, end)))
        if len(found) >= limit:
            break
    return found


def _offered(
    calendar: DoctorCalendar,
    day: dt.date,
    moment: Moment,
    context: DayContext,
    clinic: Clinic,
    visit_minutes: int | None,
    cache: DayCache,
) -> Offered:
    """A doctor's slots on `day`, remembered under the day's version on the terms a day's
    JSON is (`day_cache.may_remember`)."""
    version = calendar.day_versions.get(day, 0)
    if day > moment.earliest_date:  # only a day past the notice can be remembered
        slots = cache.offered(calendar.doctor_id, day, version, context)
        if slots is not None:
            return slots
    facts = calendar.day(day)
    offered = day_availability(calendar.schedule, day, facts, moment, clinic.tz, visit_minutes)
    slots = tuple((slot.start, slot.end) for slot in offered.slots)
    if may_remember(day, moment, facts):
        cache.remember_offered(calendar.doctor_id, day, version, context, slots)
    return slots


async def _add_days(
    session: AsyncSession,
    calendars: list[DoctorCalendar],
    first: dt.date,
    last: dt.date,
    cache: DayCache,
    *,
    versions_read: bool,
) -> None:
    """Add what the days from `first` to `last` bring to each calendar: remembered days at
    the versions read with the doctors (`versions_read`) as they are, the others read in one
    statement together with their versions, and remembered. Either way each calendar's
    `day_versions` then describe its facts for these days."""
    span = date_range(first, last)
    unread: list[DoctorCalendar] = []
    for calendar in calendars:
        remembered = (
            cache.lookup(calendar.doctor_id, span, calendar.day_versions)
            if versions_read and cache.capacity
            else None
        )
        if remembered is None:
            unread.append(calendar)
        else:
            calendar.facts.update(remembered)
    if not unread:
        return
    facts, versions = await load_days(session, [c.doctor_id for c in unread], first, last)
    for calendar in unread:
        read = versions[calendar.doctor_id]
        calendar.facts.update(facts[calendar.doctor_id])
        calendar.day_versions.update({day: read.get(day, 0) for day in span})
        cache.remember(calendar.doctor_id, span, read, facts[calendar.doctor_id])
