"""Availability: one doctor's free slots by day, or the earliest slots across doctors.

The door to the scheduling area: the engine (`scheduling.engine`) decides, `scheduling.queries`
loads what it needs, `scheduling.day_cache` remembers doctor-days between reads, and
`scheduling.search` finds the earliest slots across doctors.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.database import Sessions, unit_of_work
from app.errors import InvalidInput
from app.schemas.common import clock_text
from app.services import visit_type_service
from app.services.context import Clinic
from app.services.doctor_filters import DoctorFilters
from app.services.scheduling import search
from app.services.scheduling.day_cache import (
    AnswerStamp,
    DayCache,
    answer_stamp,
    day_context,
    may_remember,
)
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
)
from app.services.scheduling.schedule import NO_FACTS, DayFacts
from app.services.scheduling.search import ANY_TIME, FoundSlot, TimesOfDay


@dataclass(frozen=True, slots=True)
class DoctorAvailability:
    doctor_id: uuid.UUID
    slot_duration_minutes: int
    days: list[Day]


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


def resolve_times(earliest: dt.time | None, latest: dt.time | None) -> TimesOfDay:
    """The part of each day asked for (`earliest_time`, `latest_time`)."""
    if earliest is not None and latest is not None and earliest > latest:
        raise InvalidInput("earliest_time", "earliest_time must not be after latest_time")
    return ANY_TIME if earliest is None and latest is None else TimesOfDay(earliest, latest)


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
    context = day_context(calendar, read.visit_minutes, clinic.today)
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
            if may_remember(date, moment, facts):
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
                return _Read(calendar, span, {}, visit_minutes, answer)
            context = day_context(calendar, visit_minutes, clinic.today)
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
    its version and `day_cache.day_context` alone, not on the time of day, so what is worked
    out for it may be remembered and answered again."""
    notice = calendar.schedule.rules.min_notice_minutes
    return Moment.of(clinic.now, clinic.tz, notice).earliest_date


def _stamp(
    calendar: DoctorCalendar, span: list[dt.date], clinic: Clinic, visit_minutes: int | None
) -> AnswerStamp | None:
    """Everything an answer for `span` depends on, or None when it also depends on the time
    of day (the range reaches into the minimum notice, or today)."""
    if span[0] <= _notice_ends(calendar, clinic):
        return None
    return answer_stamp(calendar, span, visit_minutes, clinic.today)


async def visit_length(
    session: AsyncSession, calendar: DoctorCalendar, visit_type_id: uuid.UUID | None
) -> int | None:
    """Minutes of a visit of this type with this doctor (None: the doctor's slot length);
    a type the doctor does not offer, or an inactive one, is a 400."""
    if visit_type_id is None:
        return None
    visit_type_service.require_offered(calendar.visit_type_ids, visit_type_id)
    return await visit_type_service.active_duration(session, visit_type_id)


async def earliest_slots(
    session: AsyncSession,
    filters: DoctorFilters,
    first: dt.date,
    last: dt.date,
    limit: int,
    clinic: Clinic,
    cache: DayCache,
    times: TimesOfDay = ANY_TIME,
) -> list[FoundSlot]:
    """The earliest free slots across the doctors matching `filters` (the search asks for
    active ones), earliest first, ties by doctor name, within `times` of each day. With
    `filters.visit_type_id`, only doctors offering it, with slots of its length. Reads the
    days in growing chunks, and stops as soon as the earliest `limit` are known
    (`scheduling.search`)."""
    visit_minutes = None
    if filters.visit_type_id is not None:
        visit_minutes = await visit_type_service.active_duration(session, filters.visit_type_id)
    return await search.earliest(
        session, filters, first, last, limit, clinic, cache, visit_minutes, times
    )


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
