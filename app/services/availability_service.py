"""Availability: one doctor's free slots by day, or the earliest slots across doctors.

The door to the scheduling area: the engine (`scheduling.engine`) decides, `scheduling.queries`
loads what it needs, `scheduling.day_cache` remembers doctor-days between reads.
"""

from __future__ import annotations

import datetime as dt
import heapq
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.database import Sessions, unit_of_work
from app.errors import InvalidInput
from app.schemas.common import clock_text
from app.services import visit_type_service
from app.services.context import Clinic
from app.services.doctor_filters import DoctorFilters
from app.services.scheduling.day_cache import DayCache, Offered
from app.services.scheduling.engine import (
    MAX_RANGE_DAYS,
    Day,
    Moment,
    SlotTime,
    availability,
    date_range,
    day_availability,
)
from app.services.scheduling.queries import (
    DoctorCalendar,
    active_doctor_ids,
    load_days,
    load_doctor_calendar,
    load_doctor_versions,
    load_matching_doctors,
)
from app.services.scheduling.schedule import NO_FACTS, DayFacts


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
    slot: SlotTime


def resolve_range(
    today: dt.date,
    day: dt.date | None,
    start: dt.date | None,
    end: dt.date | None,
    *,
    default_days: int = 1,
    max_days: int = MAX_RANGE_DAYS,
) -> tuple[dt.date, dt.date]:
    """The dates asked for: `day`, or `start`..`end` (from today, `default_days` long)."""
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
    session: AsyncSession,
    doctor_id: uuid.UUID,
    first: dt.date,
    last: dt.date,
    clinic: Clinic,
    cache: DayCache,
    visit_type_id: uuid.UUID | None = None,
) -> DoctorAvailability:
    """One doctor's days: one small statement when every day is remembered in `cache` at its
    current version, else one more that reads the whole range (and is remembered); with a
    visit type, one more for its length."""
    read = await _read(session, doctor_id, date_range(first, last), clinic, cache, visit_type_id)
    return read.availability(clinic)


async def availability_json(
    session: AsyncSession,
    doctor_id: uuid.UUID,
    first: dt.date,
    last: dt.date,
    clinic: Clinic,
    cache: DayCache,
    visit_type_id: uuid.UUID | None = None,
) -> bytes:
    """`doctor_availability` as the API answers it (the JSON of `AvailabilityRead`).

    A range that starts after the doctor's minimum notice ends has slots that depend on the
    versions read and the clinic's date alone, not on the time of day: its answer is
    remembered under a stamp of exactly those, and the engine runs only for a new stamp. It is
    remembered as its JSON alone, bytes the garbage collector does not walk: kept as objects
    (days, their slot tuples), the answers a clinic group's reads remember were hundreds of
    thousands of objects, and every full collection walked them all (BENCHMARKS.md, Scale).
    Each day's JSON is remembered too, so a range not remembered whole is put together from
    its days' (`DayCache.rendered`)."""
    span = date_range(first, last)
    read = await _read(session, doctor_id, span, clinic, cache, visit_type_id, answers=True)
    if read.answer is not None:
        return read.answer
    body = _render(read, clinic, cache)
    # `read.calendar` is the read whose versions describe the facts the answer was made of.
    stamp = _stamp(read.calendar, span, clinic, read.visit_minutes)
    if stamp is not None:
        expiries = [
            hold[3] for day in span for hold in read.facts.get(day, NO_FACTS).holding(clinic.now)
        ]
        cache.remember_answer(stamp, body, len(span), min(expiries, default=None))
    return body


def _render(read: _Read, clinic: Clinic, cache: DayCache) -> bytes:
    """The JSON of `read`'s range: each day's remembered JSON, or the engine's answer (then
    remembered, unless it depends on the time of day: inside the notice, or holding a hold)."""
    calendar = read.calendar
    schedule = calendar.schedule
    moment = Moment.of(clinic.now, clinic.tz, schedule.rules.min_notice_minutes)
    context = _day_context(calendar, clinic, read.visit_minutes)
    days: list[bytes] = []
    for date in read.span:
        body = read.rendered.get(date)
        if body is None:
            facts = read.facts.get(date, NO_FACTS)
            day = day_availability(schedule, date, facts, moment, clinic.tz, read.visit_minutes)
            body = to_json(
                {
                    "date": date.isoformat(),
                    "unavailable_reason": day.unavailable_reason,
                    "slots": [slot_json(slot) for slot in day.slots],
                }
            )
            if date > moment.earliest_date and not facts.holding(clinic.now):
                version = calendar.day_versions.get(date, 0)
                cache.remember_rendered(calendar.doctor_id, date, version, context, body)
        days.append(body)
    head = to_json(
        {
            "doctor_id": str(calendar.doctor_id),
            "timezone": clinic.tz.key,
            "slot_duration_minutes": schedule.slot_minutes,
        }
    )
    # The same bytes as encoding the whole answer at once, with "days" as its last key.
    return head[:-1] + b',"days":[' + b",".join(days) + b"]}"


@lru_cache(maxsize=8192)
def slot_json(slot: SlotTime) -> dict[str, str]:
    """A slot as the API shows it. Slots are shared immutable objects (one per grid cell), so
    their JSON form is too."""
    return {"start_time": clock_text(slot.start), "end_time": clock_text(slot.end)}


def _day_context(
    calendar: DoctorCalendar, clinic: Clinic, visit_minutes: int | None
) -> tuple[object, ...]:
    """What a day's JSON past the notice depends on besides the day's version."""
    return (calendar.schedule_version, visit_minutes, clinic.today)


@dataclass(frozen=True, slots=True)
class _Read:
    """What a doctor's range was decided on: the read (whose versions describe `facts`), the
    days' facts, the visit's length; or, instead, the answer remembered for it. `rendered`:
    days whose JSON is remembered at those versions (their facts are then not needed)."""

    calendar: DoctorCalendar
    span: list[dt.date]
    facts: Mapping[dt.date, DayFacts]
    visit_minutes: int | None
    answer: bytes | None = None
    rendered: Mapping[dt.date, bytes] = field(default_factory=dict)

    def availability(self, clinic: Clinic) -> DoctorAvailability:
        schedule = self.calendar.schedule
        days = availability(
            schedule,
            self.span[0],
            self.span[-1],
            self.facts,
            clinic.now,
            clinic.tz,
            self.visit_minutes,
        )
        return DoctorAvailability(self.calendar.doctor_id, schedule.slot_minutes, days)


async def _read(
    session: AsyncSession,
    doctor_id: uuid.UUID,
    span: list[dt.date],
    clinic: Clinic,
    cache: DayCache,
    visit_type_id: uuid.UUID | None,
    *,
    answers: bool = False,
) -> _Read:
    """The days' facts from `cache` when every day is remembered at its current version, else
    from one read of the whole range (then remembered); with `answers`, the answer remembered
    for the range instead when there is one, and the JSON remembered for its days (whose
    facts are then not looked up)."""
    first, last = span[0], span[-1]
    remembered = None
    visit_minutes = None
    rendered: dict[dt.date, bytes] = {}
    if cache.capacity:
        calendar = await load_doctor_versions(session, doctor_id, first, last)
        visit_minutes = await visit_length(session, calendar, visit_type_id)
        if answers:
            stamp = _stamp(calendar, span, clinic, visit_minutes)
            if stamp is not None and (answer := cache.answer(stamp, clinic.now)) is not None:
                metrics.AVAILABILITY_READS.labels("answer").inc()
                return _Read(calendar, span, {}, visit_minutes, cast(bytes, answer))
            context = _day_context(calendar, clinic, visit_minutes)
            # Days inside the notice are worked out anew: the notice may have reached a day
            # since its JSON was remembered, within the same clinic date.
            notice_ends = _notice_ends(calendar, clinic)
            past = [day for day in span if day > notice_ends]
            rendered = cache.rendered(doctor_id, past, calendar.day_versions, context)
        rest = [day for day in span if day not in rendered]
        remembered = cache.lookup(doctor_id, rest, calendar.day_versions)
    metrics.AVAILABILITY_READS.labels("read" if remembered is None else "remembered").inc()
    if remembered is not None:
        return _Read(calendar, span, remembered, visit_minutes, rendered=rendered)
    calendar = await load_doctor_calendar(session, doctor_id, first, last)
    cache.remember(doctor_id, span, calendar.day_versions, calendar.facts)
    if not cache.capacity:
        visit_minutes = await visit_length(session, calendar, visit_type_id)
    return _Read(calendar, span, calendar.facts, visit_minutes)


def _notice_ends(calendar: DoctorCalendar, clinic: Clinic) -> dt.date:
    """The date the doctor's minimum notice reaches from now. A later day's slots depend on
    its version and `_day_context` alone, not on the time of day, so what is worked out for
    it may be remembered and answered again."""
    notice = calendar.schedule.rules.min_notice_minutes
    return Moment.of(clinic.now, clinic.tz, notice).earliest_date


def _stamp(
    calendar: DoctorCalendar, span: list[dt.date], clinic: Clinic, visit_minutes: int | None
) -> tuple[object, ...] | None:
    """Everything an answer for `span` depends on, or None when it also depends on the time
    of day (the range reaches into the minimum notice, or today)."""
    if span[0] <= _notice_ends(calendar, clinic):
        return None
    versions = calendar.day_versions
    return (
        calendar.doctor_id.int,  # plain values only: see day_cache
        span[0],
        span[-1],
        visit_minutes,
        calendar.schedule_version,
        clinic.today,
        tuple(versions.get(day, 0) for day in span),
    )


async def visit_length(
    session: AsyncSession, calendar: DoctorCalendar, visit_type_id: uuid.UUID | None
) -> int | None:
    """Minutes of a visit of this type with this doctor (None: the doctor's slot length);
    a type the doctor does not offer, or an inactive one, is a 400."""
    if visit_type_id is None:
        return None
    visit_type_service.require_offered(calendar.visit_type_ids, visit_type_id)
    return await visit_type_service.active_duration(session, visit_type_id)


# The days whose versions the search reads with the doctors: its first two chunks (1 and 4
# days). A search that needs more than its first day (a Sunday, a day of long visits, a
# doctor's short Saturday) then still finds the next days remembered; reading versions is
# cheap next to reading a day's bookings.
_VERSIONED_DAYS = 5


async def earliest_slots(
    session: AsyncSession,
    filters: DoctorFilters,
    first: dt.date,
    last: dt.date,
    limit: int,
    clinic: Clinic,
    cache: DayCache,
) -> list[FoundSlot]:
    """The earliest free slots across the doctors matching `filters` (the search asks for
    active ones), earliest first, ties by doctor name. With `filters.visit_type_id`, only
    doctors offering it, with slots of its length.

    Day by day, so a busy clinic stops as soon as the earliest `limit` are known, reading the
    days in growing chunks (1, 4, 16 days...): the earliest slots are usually on the first day,
    and reading two weeks of every matching doctor's bookings to use one day of them was most
    of the search's cost. The versions of the first two chunks' days come with the doctors,
    so their remembered doctor-days (`cache`) are not read again (BENCHMARKS.md)."""
    visit_minutes = None
    if filters.visit_type_id is not None:
        visit_minutes = await visit_type_service.active_duration(session, filters.visit_type_id)
    versioned_until = min(last, first + dt.timedelta(days=_VERSIONED_DAYS - 1))
    calendars = await load_matching_doctors(session, filters, first, versioned_until)
    found: list[FoundSlot] = []
    moments = [
        Moment.of(clinic.now, clinic.tz, c.schedule.rules.min_notice_minutes) for c in calendars
    ]
    contexts = [_day_context(c, clinic, visit_minutes) for c in calendars]
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
    context: tuple[object, ...],
    clinic: Clinic,
    visit_minutes: int | None,
    cache: DayCache,
) -> Offered:
    """A doctor's slots on `day`, remembered under the day's version on the terms a day's
    JSON is (`_render`): past the notice, and holding no hold."""
    keep = day > moment.earliest_date
    version = calendar.day_versions.get(day, 0)
    if keep and (slots := cache.offered(calendar.doctor_id, day, version, context)) is not None:
        return slots
    facts = calendar.day(day)
    offered = day_availability(calendar.schedule, day, facts, moment, clinic.tz, visit_minutes)
    slots = tuple((slot.start, slot.end) for slot in offered.slots)
    if keep and not facts.holding(clinic.now):
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


# Doctors read per statement while warming: each statement's rows stay a few thousand.
_WARM_BATCH = 25


async def warm_day_cache(sessions: Sessions, cache: DayCache, today: dt.date, days: int) -> int:
    """Read the next `days` days of every active doctor into `cache`, before the worker
    serves: otherwise each worker answers its first reads of a large clinic from the
    database, one doctor's range at a time, for minutes (BENCHMARKS.md, Scale). Fewer days
    when the cache does not hold that many for every doctor. Answers the doctor-days
    remembered; a caller that stops it early keeps those remembered so far."""
    if not cache.capacity:
        return 0
    async with unit_of_work(sessions) as session:
        doctor_ids = await active_doctor_ids(session)
        if not doctor_ids:
            return 0
        days = min(days, cache.capacity // len(doctor_ids))
        if days <= 0:
            return 0
        first, last = today, today + dt.timedelta(days=days - 1)
        span = date_range(first, last)
        warmed = 0
        for at in range(0, len(doctor_ids), _WARM_BATCH):
            batch = doctor_ids[at : at + _WARM_BATCH]
            facts, versions = await load_days(session, batch, first, last)
            for doctor_id in batch:
                cache.remember(doctor_id, span, versions[doctor_id], facts[doctor_id])
            warmed += len(batch) * len(span)
    return warmed
